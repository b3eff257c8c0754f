"""Human-in-the-loop benchmark on BANKING77: does deferring the right items to humans pay off?

    python -m evaluation.benchmark_hitl [--initial-fraction 0.2] [--work-dir .switchboard/bench/hitl]

1. Train model A on a stratified 20 % of train.csv (its validation split calibrates it and picks the
   deferral thresholds for owner accuracy 98 % / category accuracy 95 %).
2. Route the other 80 % through A and the real review queue (SQLite): deferred items and a 2 % QA sample
   become tasks; a simulated annotator answers every task with the gold label.
3. Retrain model B on the 20 % + the routed 80 % (human labels where a human looked, A's labels elsewhere).
4. Report on test.csv: accuracy before/after, the share of items a human touched, auto-routed owner accuracy
   on the stream and, for B, the owner auto-route rate and accuracy on test under B's own policy.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

from evaluation.benchmarks import banking77_dir, banking77_taxonomy, run_benchmark
from evaluation.report import evaluate_bundle
from labeling import queue
from models.classifier import Classifier
from switchboard.corpus import LabelledData, read_labelled, stratified_split
from switchboard.settings import load_settings
from switchboard.storage import Database
from switchboard.text import CleanText
from training.config import TrainingConfig
from training.pipeline import run_training


def _write_csv(path: Path, data: LabelledData) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "category"])
        w.writerows(zip(data.texts, data.labels, strict=True))
    return path


def _config(name: str, train: Path, work: Path, taxonomy: Path, epochs: int, alias: str) -> TrainingConfig:
    return TrainingConfig.from_dict(
        {
            "experiment": "benchmark-hitl",
            "model_name": f"hitl-{name}",
            "taxonomy": str(taxonomy),
            "data": {"train": str(train), "validation_fraction": 0.1, "label_column": "category"},
            "hyperparameters": {"epochs": epochs, "threads": os.cpu_count() or 1},
            "output_dir": str(work / name),
            "alias": alias,
        }
    )


def run(args: argparse.Namespace) -> dict[str, object]:
    folder = banking77_dir()
    work: Path = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    taxonomy = banking77_taxonomy(folder)
    taxonomy.write(work / "taxonomy.yaml")
    settings = load_settings(home=work / "home")
    full = read_labelled(folder / "train.csv", "text", "category", taxonomy)
    test = read_labelled(folder / "test.csv", "text", "category", taxonomy)
    initial, stream = stratified_split(full, 1 - args.initial_fraction, seed=7)

    started = time.perf_counter()
    model_a = run_training(
        _config(
            "a",
            _write_csv(work / "initial.csv", initial),
            work,
            work / "taxonomy.yaml",
            args.epochs_initial,
            "champion",
        ),
        settings,
    )
    clf = Classifier(model_a.bundle, intra_op_threads=0)
    predictions = clf.predict_cleaned([CleanText(t, False) for t in stream.texts])

    db = Database(settings.database)
    db.upgrade()
    ingested = queue.ingest(
        db,
        clf.info,
        [(CleanText(t, False), str(i), None) for i, t in enumerate(stream.texts)],
        predictions,
        queue.QueuePolicy(qa_rate=args.qa_rate, agreement_rate=0.0, seed=7),
    )
    gold_of = {str(i): lab for i, lab in enumerate(stream.labels)}
    feedback_gold = {ing.feedback_id: gold_of[str(i)] for i, ing in enumerate(ingested)}
    touched = 0
    while (task := queue.next_task(db, "oracle", taxonomy)) is not None:
        queue.submit(db, task.id, "oracle", "label", taxonomy, category=feedback_gold[task.feedback_id])
        touched += 1
    human = {fid: cat for fid, _, cat in queue.accepted_labels(db, taxonomy)}
    routed_labels = [human.get(ing.feedback_id, p.category.id) for ing, p in zip(ingested, predictions, strict=True)]
    auto = [p.routing.auto_routed for p in predictions]
    auto_owner_ok = [
        p.owner.id == taxonomy.owner_of(g) for p, g, a in zip(predictions, stream.labels, auto, strict=True) if a
    ]

    merged = LabelledData(initial.texts + stream.texts, initial.labels + routed_labels)
    model_b = run_training(
        _config(
            "b", _write_csv(work / "merged.csv", merged), work, work / "taxonomy.yaml", args.epochs_full, "champion"
        ),
        settings,
    )
    before = evaluate_bundle(model_a.bundle, test, split="banking77-test", threads=0)
    after = evaluate_bundle(model_b.bundle, test, split="banking77-test", threads=0)
    label_noise = sum(a != b for a, b in zip(routed_labels, stream.labels, strict=True)) / len(stream)
    return {
        "data": "BANKING77 (PolyAI, CC-BY-4.0)",
        "initial_items": len(initial),
        "stream_items": len(stream),
        "model_a": {
            "accuracy": round(before.scores.accuracy, 4),
            "owner_accuracy": round(before.owner_accuracy, 4),
            "ece": round(before.calibration.ece, 4),
            "ece_uncalibrated": round(before.calibration.ece_uncalibrated, 4),
            "temperature": before.calibration.temperature,
            "owner_policy": model_a.bundle.metadata.deferral.owner.model_dump(),
        },
        "stream": {
            "human_touched": touched,
            "human_share": round(touched / len(stream), 4),
            "auto_routed_share": round(sum(auto) / len(stream), 4),
            "auto_routed_owner_accuracy": round(sum(auto_owner_ok) / max(len(auto_owner_ok), 1), 4),
            "training_label_error_rate_after_review": round(label_noise, 4),
        },
        "model_b": {
            "accuracy": round(after.scores.accuracy, 4),
            "owner_accuracy": round(after.owner_accuracy, 4),
            "ece": round(after.calibration.ece, 4),
            "ece_uncalibrated": round(after.calibration.ece_uncalibrated, 4),
            "owner_policy": model_b.bundle.metadata.deferral.owner.model_dump(),
            "test_owner_auto_rate": round(after.deferral.owner_auto_rate, 4),
            "test_owner_auto_accuracy": round(after.deferral.owner_auto_accuracy, 4),
            "mlflow_run": model_b.run_id,
        },
        "accuracy_gain_points": round(100 * (after.scores.accuracy - before.scores.accuracy), 2),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--initial-fraction", type=float, default=0.2)
    parser.add_argument("--epochs-initial", type=int, default=8)
    parser.add_argument("--epochs-full", type=int, default=5)
    parser.add_argument("--qa-rate", type=float, default=0.02)
    parser.add_argument("--work-dir", type=Path, default=Path(".switchboard/bench/hitl"))
    return run_benchmark(run, parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
