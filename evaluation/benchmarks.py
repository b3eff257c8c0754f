"""Shared pieces of the benchmarks: locating ../shared/data, latency measurement, the TF-IDF baseline."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.classifier import Classifier
from switchboard.errors import DataError, SwitchboardError
from switchboard.taxonomy import Taxonomy

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def banking77_dir(root: Path = SHARED_DATA) -> Path:
    folder = root / "banking77"
    needed = ["train.csv", "test.csv", "categories.json", "owners.csv"]
    missing = [n for n in needed if not (folder / n).is_file()]
    if missing:
        raise DataError(
            f"BANKING77 benchmark data not found in {folder} (missing {', '.join(missing)}); "
            "it lives in ../shared/data beside the repository"
        )
    return folder


def banking77_taxonomy(folder: Path) -> Taxonomy:
    """A one-level taxonomy: the 77 categories, routed by owners.csv to the 8 operating areas."""
    categories = json.loads((folder / "categories.json").read_text(encoding="utf-8"))
    with (folder / "owners.csv").open(encoding="utf-8") as fh:
        owner_of = {row["category"]: row["owner"] for row in csv.DictReader(fh)}
    missing = [c for c in categories if c not in owner_of]
    if missing:
        raise DataError(f"owners.csv routes no owner for: {', '.join(missing)}")
    return Taxonomy.flat("banking77-v1", {c: owner_of[c] for c in categories}, name="BANKING77 (PolyAI, CC-BY-4.0)")


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p90_ms: float
    p99_ms: float
    n: int


def single_item_latency(classifier: Classifier, texts: list[str], warmup: int = 50) -> Latency:
    """In-process latency of ``predict([text])``: cleaning, tokenization, inference, routing."""
    for text in texts[:warmup]:
        classifier.predict([text])
    timings = []
    for text in texts:
        start = time.perf_counter()
        classifier.predict([text])
        timings.append((time.perf_counter() - start) * 1000)
    q = statistics.quantiles(timings, n=100, method="inclusive")
    return Latency(p50_ms=statistics.median(timings), p90_ms=q[89], p99_ms=q[98], n=len(timings))


def tfidf_svm_baseline(train_texts: list[str], train_labels: list[str], test_texts: list[str]) -> list[str]:
    """Word (1-2) + character (2-5, word-bounded) TF-IDF features and a linear SVM."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    model = make_pipeline(
        make_union(
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, lowercase=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True),
        ),
        LinearSVC(C=0.5),
    )
    model.fit(train_texts, train_labels)
    return [str(p) for p in model.predict(test_texts)]


def run_benchmark(run: Callable[[argparse.Namespace], dict[str, object]], args: argparse.Namespace) -> int:
    """Offline, quiet but for our progress lines; prints the figures and writes ``<work_dir>/benchmark.json``."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(var, "1")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    for ours in ("training", "models", "evaluation"):
        logging.getLogger(ours).setLevel(logging.INFO)
    try:
        results = run(args)
    except SwitchboardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(results, indent=2))
    args.work_dir.mkdir(parents=True, exist_ok=True)
    (args.work_dir / "benchmark.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0
