"""The fine-tuning loop: a plain function over a validated config (CPU, torch)."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import get_linear_schedule_with_warmup

from evaluation.scorer import score
from switchboard.corpus import LabelledData
from switchboard.tokenization import Encoder
from training.config import HyperParameters
from training.network import FeedbackClassifier

log = logging.getLogger(__name__)

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class FitResult:
    model: FeedbackClassifier
    labels: list[str]
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_tensors(encoder: Encoder, texts: list[str]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in encoder.encode(texts).as_feed().items()}


def length_bucketed_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar-length items (less padding), in shuffled order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 32
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


@torch.no_grad()
def predict_logits(model: FeedbackClassifier, encoder: Encoder, texts: list[str], batch_size: int = 128) -> np.ndarray:
    """Logits for cleaned texts in input order (length-sorted internally)."""
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.head.out_features), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        out[idx] = model(**to_tensors(encoder, [texts[i] for i in idx])).numpy()
    return out


def fit(
    base_dir: Path,
    train: LabelledData,
    validation: LabelledData | None,
    labels: list[str],
    hp: HyperParameters,
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Fine-tune encoder + head on ``train``; score ``validation`` after every epoch."""
    seed_everything(hp.seed)
    if hp.threads:
        torch.set_num_threads(hp.threads)
    encoder = Encoder.from_file(base_dir / "tokenizer.json", hp.max_length)
    model = FeedbackClassifier.from_base(base_dir, len(labels), hp.dropout)
    label_index = {lab: i for i, lab in enumerate(labels)}
    targets = torch.tensor([label_index[lab] for lab in train.labels], dtype=torch.long)
    lengths = [int(n) for n in encoder.encode(train.texts).attention_mask.sum(axis=1)]
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.encoder.named_parameters():
        (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "lr": hp.learning_rate, "weight_decay": hp.weight_decay},
            {"params": no_decay, "lr": hp.learning_rate, "weight_decay": 0.0},
            {"params": list(model.head.parameters()), "lr": hp.head_learning_rate, "weight_decay": 0.0},
        ]
    )
    steps_per_epoch = math.ceil(len(train) / hp.batch_size)
    total = steps_per_epoch * hp.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(hp.warmup_ratio * total), total)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=hp.label_smoothing)
    rng = random.Random(hp.seed)
    result = FitResult(model=model, labels=labels)
    started = time.perf_counter()
    for epoch in range(1, hp.epochs + 1):
        model.train()
        running, seen = 0.0, 0
        for batch in length_bucketed_batches(lengths, hp.batch_size, rng):
            inputs = to_tensors(encoder, [train.texts[i] for i in batch])
            loss = loss_fn(model(**inputs), targets[batch])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            running += float(loss.detach()) * len(batch)
            seen += len(batch)
        metrics = {"train_loss": running / max(seen, 1), "epoch_seconds": time.perf_counter() - started}
        if validation is not None and len(validation):
            logits = predict_logits(model, encoder, validation.texts)
            scores = score(validation.labels, [labels[i] for i in logits.argmax(axis=1)], labels)
            metrics.update(val_accuracy=scores.accuracy, val_macro_f1=scores.macro_f1)
        log.info("epoch %d/%d %s", epoch, hp.epochs, {k: round(v, 4) for k, v in metrics.items()})
        result.history.append(metrics)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    result.seconds = time.perf_counter() - started
    model.eval()
    return result
