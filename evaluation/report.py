"""Evaluate a model bundle on labelled data and write the report as JSON + Markdown."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from evaluation.scorer import Scores, score
from models.bundle import Bundle
from models.classifier import Classifier
from switchboard.corpus import LabelledData
from switchboard.schemas import ModelInfo


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
    seconds: float


def evaluate_classifier(classifier: Classifier, data: LabelledData, split: str = "test") -> EvaluationReport:
    """Score a loaded classifier on already-cleaned, labelled texts."""
    started = time.perf_counter()
    probs = classifier.score_clean(data.texts).probabilities
    labels = classifier.labels
    predicted = [labels[i] for i in probs.argmax(axis=1)]
    owners = classifier.owners
    predicted_owner = [owners[i] for i in classifier.owner_probabilities(probs).argmax(axis=1)]
    taxonomy = classifier.bundle.taxonomy
    gold_owner = [taxonomy.owner_of(lab) for lab in data.labels]
    owner_scores = score(gold_owner, predicted_owner, [o.id for o in taxonomy.owners])
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
