"""Inference over a model bundle with onnxruntime + tokenizers (no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from models.bundle import Bundle, load_bundle
from switchboard.deferral import route
from switchboard.errors import BundleError
from switchboard.schemas import Alternative, ModelInfo, Prediction, ScoredCategory, ScoredOwner
from switchboard.settings import Settings
from switchboard.text import DEFAULT_MAX_CHARS, CleanText, clean_text
from switchboard.tokenization import Encoder

TOP_K = 3


def softmax(logits: NDArray[np.float32]) -> NDArray[np.float32]:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class ScoredBatch:
    """Raw logits and calibrated category probabilities for a batch of already-cleaned texts."""

    logits: NDArray[np.float32]
    probabilities: NDArray[np.float32]
    truncated: list[bool]


class Classifier:
    """Classifies feedback into a category and routes it to an owner.

    Owner confidence is the sum of the probabilities of the categories that route to that owner,
    and the owner returned is the one with the highest such sum.
    """

    def __init__(
        self,
        bundle: Bundle,
        intra_op_threads: int = 1,
        batch_size: int = 64,
        max_chars: int = DEFAULT_MAX_CHARS,
        allow_spinning: bool = True,
        small_batch_max: int = 0,
    ) -> None:
        """``small_batch_max`` > 0 adds a single-threaded session for inference calls of at most that many
        texts: small inputs gain nothing from intra-op parallelism, and the caller's thread runs them
        without waking (or spinning) a thread pool."""
        self.bundle = bundle
        self.batch_size = batch_size
        self.max_chars = max_chars
        self.small_batch_max = small_batch_max
        meta = bundle.metadata
        self.encoder = Encoder.from_file(bundle.tokenizer_file, meta.max_length)
        self.session = self._session(intra_op_threads, allow_spinning)
        self._small_session = self._session(1, True) if small_batch_max > 0 else self.session
        names = [i.name for i in self.session.get_inputs()]
        if sorted(names) != sorted(meta.input_names):
            raise BundleError(f"model.onnx inputs {names} differ from metadata {meta.input_names}")
        self._input_names = names
        self._check_output()
        taxonomy = bundle.taxonomy
        self._categories = bundle.categories
        # (model labels, categories) 0/1 matrix: sums the labels a taxonomy migration merged (identity if none)
        category_index = {c: i for i, c in enumerate(self._categories)}
        self._projection: NDArray[np.float32] | None = None
        if self._categories != bundle.labels:
            self._projection = np.zeros((len(bundle.labels), len(self._categories)), dtype=np.float32)
            for i, lab in enumerate(bundle.labels):
                self._projection[i, category_index[meta.output_map.get(lab, lab)]] = 1.0
        self._owners = tuple(dict.fromkeys(taxonomy.leaf_owner[c] for c in self._categories))
        owner_index = {o: i for i, o in enumerate(self._owners)}
        # (categories, owners) 0/1 matrix: probabilities @ routing = owner probabilities
        self._routing = np.zeros((len(self._categories), len(self._owners)), dtype=np.float32)
        for i, cat in enumerate(self._categories):
            self._routing[i, owner_index[taxonomy.leaf_owner[cat]]] = 1.0

    @classmethod
    def from_settings(cls, path: str | Path, settings: Settings) -> Classifier:
        """Load and check a bundle with the serving settings' threads, batch size and limits."""
        return cls(
            load_bundle(path),
            intra_op_threads=settings.ort_intra_op_threads,
            batch_size=settings.inference_batch_size,
            max_chars=settings.max_text_chars,
            allow_spinning=settings.ort_allow_spinning,
            small_batch_max=settings.ort_small_batch_max,
        )

    def _session(self, threads: int, allow_spinning: bool) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not allow_spinning:  # idle intra-op threads sleep: a server's event loop shares these cores
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(
                str(self.bundle.model_file), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BundleError(f"onnxruntime cannot load {self.bundle.model_file}: {exc}") from exc

    @property
    def info(self) -> ModelInfo:
        return self.bundle.info

    @property
    def labels(self) -> tuple[str, ...]:
        """The categories predicted (the model's labels after the bundle's ``output_map``)."""
        return self._categories

    def _check_output(self) -> None:
        probe = self.encoder.encode(["probe"])
        out = self._run(probe.as_feed())
        expected = (1, self.bundle.metadata.num_labels)
        if out.shape != expected:
            raise BundleError(f"model.onnx returns shape {out.shape}; labels.json implies {expected}")

    def _run(self, feed: dict[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        rows = len(feed["input_ids"])
        session = self._small_session if rows <= self.small_batch_max else self.session
        result = session.run([self.bundle.metadata.output_name], {n: feed[n] for n in self._input_names})
        return np.asarray(result[0], dtype=np.float32)

    def score_clean(self, texts: list[str]) -> ScoredBatch:
        """Raw model logits, and category probabilities (softmax of logits / the bundle's temperature, summed
        over labels a taxonomy migration merged) for cleaned texts."""
        logits: list[NDArray[np.float32]] = []
        truncated: list[bool] = []
        # sort by length so each inference batch pads little, then restore the order
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            enc = self.encoder.encode([texts[i] for i in chunk])
            logits.append(self._run(enc.as_feed()))
            truncated.extend(enc.truncated)
        if not texts:
            return ScoredBatch(
                np.zeros((0, len(self.bundle.labels)), dtype=np.float32),
                np.zeros((0, len(self.labels)), dtype=np.float32),
                [],
            )
        inverse = np.empty(len(order), dtype=np.int64)
        inverse[np.asarray(order)] = np.arange(len(order))
        raw = np.concatenate(logits)[inverse]
        probs = softmax(raw / self.temperature)
        if self._projection is not None:
            probs = np.asarray(probs @ self._projection, dtype=np.float32)
        return ScoredBatch(raw, probs, [truncated[j] for j in inverse])

    def category_scores(self, texts: list[str]) -> list[dict[str, float]]:
        """Each cleaned text's probability per category, as a mapping (e.g. to pre-sort a relabel queue)."""
        probs = self.score_clean(texts).probabilities
        return [dict(zip(self.labels, map(float, row), strict=True)) for row in probs]

    @property
    def temperature(self) -> float:
        return self.bundle.metadata.temperature

    def owner_probabilities(self, probabilities: NDArray[np.float32]) -> NDArray[np.float32]:
        return np.asarray(probabilities @ self._routing, dtype=np.float32)

    @property
    def owners(self) -> tuple[str, ...]:
        return self._owners

    def predict(self, texts: list[str]) -> list[Prediction]:
        """Clean, encode and classify raw texts. Raises ``InputError`` on the first unusable text."""
        return self.predict_cleaned([clean_text(t, self.max_chars) for t in texts])

    def predict_cleaned(self, cleaned: list[CleanText]) -> list[Prediction]:
        """Classify texts that went through ``clean_text`` (their truncation flags are kept)."""
        scored = self.score_clean([c.text for c in cleaned])
        return [
            self._prediction(scored.probabilities[i], c.truncated or scored.truncated[i]) for i, c in enumerate(cleaned)
        ]

    def _prediction(self, probs: NDArray[np.float32], truncated: bool) -> Prediction:
        taxonomy = self.bundle.taxonomy
        owner_probs = self.owner_probabilities(probs[None, :])[0]
        top = np.argsort(-probs, kind="stable")[:TOP_K]
        owner_order = np.argsort(-owner_probs, kind="stable")[:2]
        best, best_owner = int(top[0]), int(owner_order[0])
        cat_id, owner_id = self.labels[best], self._owners[best_owner]
        routing = route(
            self.bundle.metadata.deferral,
            (float(probs[best]), float(probs[top[1]]) if len(top) > 1 else 0.0),
            (float(owner_probs[best_owner]), float(owner_probs[owner_order[1]]) if len(owner_order) > 1 else 0.0),
        )
        return Prediction(
            category=ScoredCategory(
                id=cat_id, name=taxonomy.category_by_id[cat_id].name, confidence=_unit(probs[best])
            ),
            owner=ScoredOwner(
                id=owner_id, name=taxonomy.owner_by_id[owner_id].name, confidence=_unit(owner_probs[best_owner])
            ),
            alternatives=[
                Alternative(
                    category=self.labels[int(i)],
                    owner=taxonomy.leaf_owner[self.labels[int(i)]],
                    confidence=_unit(probs[int(i)]),
                )
                for i in top
            ],
            truncated=truncated,
            routing=routing,
        )


def _unit(x: float | np.floating) -> float:
    return float(min(1.0, max(0.0, round(float(x), 6))))
