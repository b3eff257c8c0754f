"""Evaluate a model bundle on labelled data and write the report as JSON + Markdown."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from evaluation.scorer import Scores, score
from evaluation.thresholds import top2
from models.bundle import Bundle
from models.calibration import expected_calibration_error
from models.classifier import Classifier, softmax
from switchboard.corpus import LabelledData
from switchboard.schemas import ModelInfo


class Calibration(BaseModel):
    temperature: float
    ece: float = Field(description="Expected calibration error with the bundle's temperature.")
    ece_uncalibrated: float = Field(description="ECE at temperature 1.")


class DeferralOutcome(BaseModel):
    """What the bundle's deferral policy does on this split."""

    category_auto_rate: float
    category_auto_accuracy: float
    owner_auto_rate: float
    owner_auto_accuracy: float


class EvaluationReport(BaseModel):
    """Category and owner metrics of one bundle on one labelled split."""

    model_config = ConfigDict(protected_namespaces=())

    model: ModelInfo
    quantization: str
    split: str
    created_at: datetime
    n: int
    scores: Scores
    owner_accuracy: float
    owner_scores: Scores
    labels_not_in_model: list[str]
    calibration: Calibration
    deferral: DeferralOutcome
    seconds: float


def evaluate_classifier(classifier: Classifier, data: LabelledData, split: str = "test") -> EvaluationReport:
    """Score a loaded classifier on already-cleaned, labelled texts."""
    started = time.perf_counter()
    scored = classifier.score_clean(data.texts)
    probs = scored.probabilities
    labels = classifier.labels
    predicted = [labels[i] for i in probs.argmax(axis=1)]
    owners = classifier.owners
    owner_probs = classifier.owner_probabilities(probs)
    predicted_owner = [owners[i] for i in owner_probs.argmax(axis=1)]
    taxonomy = classifier.bundle.taxonomy
    gold_owner = [taxonomy.owner_of(lab) for lab in data.labels]
    owner_scores = score(gold_owner, predicted_owner, [o.id for o in taxonomy.owners])
    label_index = {lab: i for i, lab in enumerate(labels)}
    gold_idx = np.array([label_index.get(lab, -1) for lab in data.labels], dtype=np.int64)
    policy = classifier.bundle.metadata.deferral
    cat_conf, cat_margin, _ = top2(probs)
    own_conf, own_margin, _ = top2(owner_probs)
    cat_auto = (cat_conf >= policy.category.threshold) & (cat_margin >= policy.category.min_margin)
    own_auto = (own_conf >= policy.owner.threshold) & (own_margin >= policy.owner.min_margin)
    cat_ok = np.array([p == g for p, g in zip(predicted, data.labels, strict=True)], dtype=bool)
    own_ok = np.array([p == g for p, g in zip(predicted_owner, gold_owner, strict=True)], dtype=bool)
    return EvaluationReport(
        model=classifier.info,
        quantization=classifier.bundle.metadata.quantization,
        split=split,
        created_at=datetime.now(UTC),
        n=len(data),
        scores=score(data.labels, predicted, list(labels)),
        owner_accuracy=owner_scores.accuracy,
        owner_scores=owner_scores,
        labels_not_in_model=sorted(set(data.labels) - set(labels)),
        calibration=Calibration(
            temperature=classifier.temperature,
            ece=expected_calibration_error(probs, gold_idx),
            ece_uncalibrated=expected_calibration_error(softmax(scored.logits), gold_idx),
        ),
        deferral=DeferralOutcome(
            category_auto_rate=float(cat_auto.mean()) if len(cat_auto) else 0.0,
            category_auto_accuracy=float(cat_ok[cat_auto].mean()) if cat_auto.any() else 1.0,
            owner_auto_rate=float(own_auto.mean()) if len(own_auto) else 0.0,
            owner_auto_accuracy=float(own_ok[own_auto].mean()) if own_auto.any() else 1.0,
        ),
        seconds=time.perf_counter() - started,
    )


def evaluate_bundle(bundle: Bundle, data: LabelledData, split: str = "test", threads: int = 0) -> EvaluationReport:
    return evaluate_classifier(Classifier(bundle, intra_op_threads=threads), data, split)


def to_markdown(report: EvaluationReport) -> str:
    s = report.scores
    lines = [
        f"# Evaluation: {report.model.name} {report.model.version}",
        "",
        f"- split: `{report.split}` ({report.n} items), taxonomy {report.model.taxonomy_version}, "
        f"quantization {report.quantization}",
        f"- accuracy: **{s.accuracy:.4f}**, macro-F1: **{s.macro_f1:.4f}** "
        f"(macro-P {s.macro_precision:.4f}, macro-R {s.macro_recall:.4f})",
        f"- owner accuracy: **{report.owner_accuracy:.4f}**, owner macro-F1: {report.owner_scores.macro_f1:.4f}",
    ]
    c, d = report.calibration, report.deferral
    lines.append(
        f"- calibration: temperature {c.temperature:.3f}, ECE {c.ece:.4f} (uncalibrated {c.ece_uncalibrated:.4f})"
    )
    lines.append(
        f"- deferral policy: owner auto-routed {d.owner_auto_rate:.3f} of items at accuracy "
        f"{d.owner_auto_accuracy:.4f}; category auto-applied {d.category_auto_rate:.3f} "
        f"at {d.category_auto_accuracy:.4f}"
    )
    if report.labels_not_in_model:
        lines.append(f"- labels the model cannot predict (no training data): {', '.join(report.labels_not_in_model)}")
    lines += [
        "",
        "## Per category",
        "",
        "| category | precision | recall | F1 | support |",
        "|---|---:|---:|---:|---:|",
    ]
    for lab, ls in sorted(s.per_label.items(), key=lambda kv: kv[1].f1):
        lines.append(f"| {lab} | {ls.precision:.3f} | {ls.recall:.3f} | {ls.f1:.3f} | {ls.support} |")
    lines += ["", "## Per owner", "", "| owner | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    for lab, ls in report.owner_scores.per_label.items():
        lines.append(f"| {lab} | {ls.precision:.3f} | {ls.recall:.3f} | {ls.f1:.3f} | {ls.support} |")
    lines += ["", "## Most frequent confusions", "", "| gold | predicted | count |", "|---|---|---:|"]
    pairs = [
        (count, s.labels[g], s.labels[p])
        for g, row in enumerate(s.confusion)
        for p, count in enumerate(row)
        if g != p and count
    ]
    for count, gold, pred in sorted(pairs, reverse=True)[:15]:
        lines.append(f"| {gold} | {pred} | {count} |")
    lines.append("")
    lines.append("The full confusion matrix (rows gold, columns predicted) is in report.json.")
    return "\n".join(lines) + "\n"


def write_report(report: EvaluationReport, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    json_path.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    md_path.write_text(to_markdown(report), encoding="utf-8")
    return json_path, md_path
