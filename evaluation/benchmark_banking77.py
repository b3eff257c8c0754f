"""BANKING77 benchmark: fine-tune all-MiniLM-L6-v2 on the train split, evaluate the exported int8 ONNX
bundle (and its fp32 twin) on the test split, against a TF-IDF + linear SVM baseline; print the figures.

    python -m evaluation.benchmark_banking77 [--epochs 5] [--work-dir .switchboard/bench/banking77]

Data: ../shared/data/banking77 (PolyAI, CC-BY-4.0). Nothing is copied into the repository.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from evaluation.benchmarks import (
    banking77_dir,
    banking77_taxonomy,
    run_benchmark,
    single_item_latency,
    tfidf_svm_baseline,
)
from evaluation.report import evaluate_classifier, write_report
from evaluation.scorer import score
from models.classifier import Classifier
from models.export import export_bundle
from switchboard.corpus import read_labelled
from switchboard.settings import load_settings
from training.config import TrainingConfig
from training.network import load_checkpoint
from training.pipeline import run_training


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--head-learning-rate", type=float, default=2e-3)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--latency-items", type=int, default=1000)
    parser.add_argument("--work-dir", type=Path, default=Path(".switchboard/bench/banking77"))
    parser.add_argument("--data-root", type=Path, default=None, help="default: ../shared/data")
    return run_benchmark(run, parser.parse_args(argv))


def run(args: argparse.Namespace) -> dict[str, object]:
    folder = banking77_dir(args.data_root) if args.data_root else banking77_dir()
    work: Path = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    taxonomy = banking77_taxonomy(folder)
    taxonomy.write(work / "taxonomy.yaml")
    config = TrainingConfig.from_dict(
        {
            "experiment": "benchmark-banking77",
            "model_name": "banking77-classifier",
            "taxonomy": str(work / "taxonomy.yaml"),
            "data": {"train": str(folder / "train.csv"), "validation_fraction": 0.0, "label_column": "category"},
            "hyperparameters": {
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "learning_rate": args.learning_rate,
                "head_learning_rate": args.head_learning_rate,
                "max_length": args.max_length,
                "threads": os.cpu_count() or 1,
            },
            "output_dir": str(work / "run"),
            "alias": None,
        }
    )
    settings = load_settings()
    outcome = run_training(config, settings)
    test = read_labelled(folder / "test.csv", "text", "category", taxonomy)

    int8 = Classifier(outcome.bundle, intra_op_threads=0)
    int8_report = evaluate_classifier(int8, test, split="banking77-test")
    write_report(int8_report, work / "report-int8")

    checkpoint = load_checkpoint(work / "run" / "checkpoint")
    fp32_bundle, _ = export_bundle(
        checkpoint, work / "bundle-fp32", checkpoint.parity_texts, model_name="banking77-classifier", quantize=False
    )
    fp32_report = evaluate_classifier(Classifier(fp32_bundle, intra_op_threads=0), test, split="banking77-test")
    write_report(fp32_report, work / "report-fp32")

    train = read_labelled(folder / "train.csv", "text", "category", taxonomy)
    started = time.perf_counter()
    baseline = score(test.labels, tfidf_svm_baseline(train.texts, train.labels, test.texts), list(taxonomy.leaf_ids))
    baseline_seconds = time.perf_counter() - started

    one_thread = Classifier(outcome.bundle, intra_op_threads=1)
    latency = single_item_latency(one_thread, test.texts[: args.latency_items])
    results: dict[str, object] = {
        "data": "BANKING77 (PolyAI, CC-BY-4.0): train 10,003 / test 3,080, 77 categories, 8 owners",
        "model": {
            "int8_accuracy": round(int8_report.scores.accuracy, 4),
            "int8_macro_f1": round(int8_report.scores.macro_f1, 4),
            "int8_owner_accuracy": round(int8_report.owner_accuracy, 4),
            "fp32_accuracy": round(fp32_report.scores.accuracy, 4),
            "fp32_macro_f1": round(fp32_report.scores.macro_f1, 4),
            "fp32_owner_accuracy": round(fp32_report.owner_accuracy, 4),
            "fine_tune_seconds": round(outcome.fit_seconds, 1),
            "train_export_register_seconds": round(outcome.total_seconds, 1),
            "single_item_latency_ms_1_thread": {
                "p50": round(latency.p50_ms, 3),
                "p90": round(latency.p90_ms, 3),
                "p99": round(latency.p99_ms, 3),
                "n": latency.n,
            },
            "bundle_mb": round((outcome.bundle.model_file.stat().st_size) / 1e6, 1),
            "mlflow_run": outcome.run_id,
            "registered_version": outcome.registered.version if outcome.registered else None,
        },
        "tfidf_svm_baseline": {
            "accuracy": round(baseline.accuracy, 4),
            "macro_f1": round(baseline.macro_f1, 4),
            "fit_predict_seconds": round(baseline_seconds, 1),
        },
        "model_minus_baseline_accuracy_points": round(100 * (int8_report.scores.accuracy - baseline.accuracy), 2),
        "int8_minus_fp32_accuracy_points": round(100 * (int8_report.scores.accuracy - fp32_report.scores.accuracy), 2),
        "machine": f"{os.cpu_count()} CPU cores",
    }
    return results


if __name__ == "__main__":
    raise SystemExit(main())
