"""Export a trained checkpoint to an ONNX model bundle, with a parity check against torch.

Like optimum's exporters: the exported graph is run on real texts and compared with the original
within explicit tolerances; a mismatch raises ``ParityError`` and no bundle is written.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as pkg_metadata
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic

from models.bundle import (
    MODEL_FILE,
    TOKENIZER_FILE,
    Bundle,
    BundleMetadata,
    load_bundle,
    sha256_file,
    staged_bundle,
    write_manifest,
)
from models.classifier import softmax
from switchboard.errors import ExportError, ParityError
from switchboard.tokenization import INPUT_NAMES, Encoder
from training.config import ParityTolerance
from training.network import Checkpoint, FeedbackClassifier
from training.trainer import predict_logits

log = logging.getLogger(__name__)
OPSET = 17
FP32_FILE = "model.fp32.onnx"


@dataclass(frozen=True)
class ParityReport:
    """How closely an exported graph reproduces the torch model on the same texts."""

    samples: int
    top1_agreement: float
    max_prob_diff: float
    mean_prob_diff: float

    def as_dict(self, prefix: str) -> dict[str, float]:
        return {
            f"{prefix}_top1_agreement": self.top1_agreement,
            f"{prefix}_max_prob_diff": self.max_prob_diff,
            f"{prefix}_mean_prob_diff": self.mean_prob_diff,
        }


def compare(reference: np.ndarray, candidate: np.ndarray) -> ParityReport:
    ref_p, cand_p = softmax(reference), softmax(candidate)
    diff = np.abs(ref_p - cand_p)
    return ParityReport(
        samples=len(reference),
        top1_agreement=float((ref_p.argmax(1) == cand_p.argmax(1)).mean()),
        max_prob_diff=float(diff.max()),
        mean_prob_diff=float(diff.mean()),
    )


def onnx_logits(model_file: Path, encoder: Encoder, texts: list[str], batch_size: int = 64) -> np.ndarray:
    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    chunks = []
    for start in range(0, len(texts), batch_size):
        feed = encoder.encode(texts[start : start + batch_size]).as_feed()
        chunks.append(session.run(["logits"], feed)[0])
    return np.concatenate(chunks).astype(np.float32)


def export_onnx(model: FeedbackClassifier, encoder: Encoder, path: Path) -> None:
    """Trace the network to ONNX with dynamic batch and sequence axes."""
    model.eval()
    sample = encoder.encode(["an example of customer feedback", "short"]).as_feed()
    args = tuple(torch.from_numpy(sample[n]) for n in INPUT_NAMES)
    dynamic = {n: {0: "batch", 1: "sequence"} for n in INPUT_NAMES}
    dynamic["logits"] = {0: "batch"}
    # The tracer warns about Python-level branches in transformers' masking code; those branches are
    # constant for an encoder, and the parity check is what proves the graph right.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model,
                args,
                str(path),
                input_names=list(INPUT_NAMES),
                output_names=["logits"],
                dynamic_axes=dynamic,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        except Exception as exc:  # torch.onnx raises many unrelated types
            raise ExportError(f"torch.onnx.export failed: {exc}") from exc


def export_bundle(
    checkpoint: Checkpoint,
    out_dir: Path,
    parity_texts: list[str],
    model_name: str,
    quantize: bool = True,
    tolerance: ParityTolerance | None = None,
    metrics: dict[str, float] | None = None,
    training_info: dict[str, Any] | None = None,
    keep_fp32: bool = False,
) -> tuple[Bundle, dict[str, float]]:
    """Export ``checkpoint`` to a bundle in ``out_dir`` (replaced atomically); return it and parity figures."""
    tolerance = tolerance or ParityTolerance()
    if not parity_texts:
        raise ExportError("export needs at least one text for the parity check")
    encoder = Encoder.from_file(checkpoint.tokenizer_file, checkpoint.max_length)
    reference = predict_logits(checkpoint.model, encoder, parity_texts)
    with staged_bundle(out_dir, ".export-") as staging:
        fp32 = staging / FP32_FILE
        export_onnx(checkpoint.model, encoder, fp32)
        fp32_parity = compare(reference, onnx_logits(fp32, encoder, parity_texts))
        parity = fp32_parity.as_dict("fp32")
        log.info("fp32 parity %s", parity)
        if fp32_parity.max_prob_diff > tolerance.fp32_max_prob_diff:
            raise ParityError(
                f"fp32 ONNX differs from torch by up to {fp32_parity.max_prob_diff:.2e} in probability "
                f"(tolerance {tolerance.fp32_max_prob_diff:.2e})"
            )
        if quantize:
            quantize_dynamic(str(fp32), str(staging / MODEL_FILE), weight_type=QuantType.QInt8, per_channel=True)
            int8_parity = compare(reference, onnx_logits(staging / MODEL_FILE, encoder, parity_texts))
            parity.update(int8_parity.as_dict("int8"))
            log.info("int8 parity %s", int8_parity)
            if (
                int8_parity.top1_agreement < tolerance.int8_min_top1_agreement
                or int8_parity.mean_prob_diff > tolerance.int8_max_mean_prob_diff
                or int8_parity.max_prob_diff > tolerance.int8_max_prob_diff
            ):
                raise ParityError(
                    f"int8 ONNX breaks parity: top-1 agreement {int8_parity.top1_agreement:.4f} "
                    f"(min {tolerance.int8_min_top1_agreement}), mean prob diff {int8_parity.mean_prob_diff:.5f} "
                    f"(max {tolerance.int8_max_mean_prob_diff}), max prob diff {int8_parity.max_prob_diff:.4f} "
                    f"(max {tolerance.int8_max_prob_diff})"
                )
            if not keep_fp32:
                fp32.unlink()
        else:
            fp32.rename(staging / MODEL_FILE)
        shutil.copyfile(checkpoint.tokenizer_file, staging / TOKENIZER_FILE)
        created = datetime.now(UTC)
        meta = BundleMetadata(
            model_name=model_name,
            model_version=f"{created:%Y%m%d.%H%M%S}-{sha256_file(staging / MODEL_FILE)[:8]}",
            created_at=created,
            base_model=str(checkpoint.info.get("base_model", "unknown")),
            max_length=checkpoint.max_length,
            quantization="int8-dynamic" if quantize else "none",
            taxonomy_version=checkpoint.taxonomy.version,
            num_labels=len(checkpoint.labels),
            input_names=list(INPUT_NAMES),
            metrics=metrics or {},
            parity={**parity, "samples": float(len(parity_texts))},
            training=training_info or {},
            versions=_versions(),
        )
        write_manifest(staging, checkpoint.labels, checkpoint.taxonomy, meta)

    return load_bundle(out_dir), parity


def _versions() -> dict[str, str]:
    names = ("switchboard", "torch", "transformers", "onnx", "onnxruntime", "tokenizers")
    found = {}
    for name in names:
        try:
            found[name] = pkg_metadata.version(name)
        except pkg_metadata.PackageNotFoundError:
            continue
    return found
