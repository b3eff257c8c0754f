"""Taxonomy-refresh benchmark on BANKING77: a scripted refresh from taxonomy banking77-2025.1 to 2026.1.

    python -m evaluation.benchmark_refresh [--epochs 4] [--work-dir .switchboard/bench/refresh]

banking77-2025.1 is BANKING77 with card_arrival and card_delivery_estimate kept as one category,
card_delivery (so the refresh's split has a real ground truth: the original labels). The refresh:
  * splits card_delivery back into card_arrival and card_delivery_estimate,
  * merges the three identity-verification categories into identity_verification, and top_up_failed +
    top_up_reverted into top_up_problem,
  * renames Refund_not_showing_up, lost_or_stolen_card and reverted_card_payment?,
  * moves transaction_charged_twice (accounts → payments) and apple_pay_or_google_pay (payments → cards).

Steps: train the champion under 2025.1 → store train.csv as labelled history (SQLite, spread over 12 months)
→ `taxonomy migrate` (report) → a simulated annotator answers the relabel queue with the original labels →
export labels under 2026.1 → train the challenger → gate on test.csv mapped to 2026.1 → promote → backfill the
history under 2026.1 and check the trend lines stay continuous.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select, update

from evaluation.benchmarks import banking77_dir, banking77_taxonomy, run_benchmark
from evaluation.report import evaluate_bundle
from labeling import queue, refresh
from labeling.export import export_labels
from models.classifier import Classifier
from serving.backfill import backfill
from switchboard.corpus import LabelledData, read_labelled, stratified_split
from switchboard.migration import TaxonomyMigration
from switchboard.settings import load_settings
from switchboard.storage import Database
from switchboard.storage.tables import FeedbackRow, LabelRow, PredictionRow
from switchboard.taxonomy import Taxonomy
from switchboard.text import CleanText
from training.config import TrainingConfig
from training.pipeline import run_training
from training.promotion import CHALLENGER, compare, promote

SPLIT = ("card_arrival", "card_delivery_estimate")
MERGES = {
    "identity_verification": ["why_verify_identity", "unable_to_verify_identity", "verify_my_identity"],
    "top_up_problem": ["top_up_failed", "top_up_reverted"],
}
RENAMES = {
    "Refund_not_showing_up": "refund_not_received",
    "lost_or_stolen_card": "card_lost_or_stolen",
    "reverted_card_payment?": "reverted_card_payment",
}
REASSIGN = {"transaction_charged_twice": "payments", "apple_pay_or_google_pay": "cards"}


def taxonomies(original: Taxonomy) -> tuple[Taxonomy, Taxonomy]:
    """(2025.1 with the pre-merged card_delivery, 2026.1 after the refresh)."""
    owner = original.leaf_owner
    old = {c: owner[c] for c in original.leaf_ids if c not in SPLIT}
    old = {"card_delivery": owner[SPLIT[0]], **old}
    new: dict[str, str] = {}
    merged = {src: dst for dst, srcs in MERGES.items() for src in srcs}
    for c in original.leaf_ids:
        target = merged.get(c) or RENAMES.get(c) or c
        new[target] = REASSIGN.get(c, owner[c])
    return (
        Taxonomy.flat("banking77-2025.1", old, owners=[o.id for o in original.owners]),
        Taxonomy.flat("banking77-2026.1", new, owners=[o.id for o in original.owners]),
    )


def migration_file(work: Path) -> Path:
    ops: list[dict[str, Any]] = [{"split": "card_delivery", "into": list(SPLIT)}]
    ops += [{"merge": srcs, "into": dst} for dst, srcs in MERGES.items()]
    ops += [{"rename": a, "to": b} for a, b in RENAMES.items()]
    ops += [{"reassign": c, "owner": o} for c, o in REASSIGN.items()]
    path = work / "migration.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "from_taxonomy": "taxonomy-2025.yaml",
                "to_taxonomy": "taxonomy-2026.yaml",
                "description": "BANKING77 scripted refresh",
                "operations": ops,
            },
            sort_keys=False,
        ),
        encoding="utf-8",
    )
    return path


def _write_csv(path: Path, texts: list[str], labels: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "category"])
        w.writerows(zip(texts, labels, strict=True))
    return path


def _config(name: str, train: Path, taxonomy: Path, work: Path, epochs: int, alias: str) -> TrainingConfig:
    return TrainingConfig.from_dict(
        {
            "experiment": "benchmark-refresh",
            "model_name": "refresh-classifier",
            "taxonomy": str(taxonomy),
            "data": {"train": str(train), "validation_fraction": 0.1, "label_column": "category"},
            "hyperparameters": {"epochs": epochs, "threads": os.cpu_count() or 1},
            "output_dir": str(work / name),
            "alias": alias,
        }
    )


def run(args: argparse.Namespace) -> dict[str, object]:
    started = time.perf_counter()
    folder = banking77_dir()
    work: Path = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    original = banking77_taxonomy(folder)
    old, new = taxonomies(original)
    old.write(work / "taxonomy-2025.yaml")
    new.write(work / "taxonomy-2026.yaml")
    migration = TaxonomyMigration.load(migration_file(work))
    settings = load_settings(home=work / "home", registry_model_name="refresh-classifier")

    train = read_labelled(folder / "train.csv", "text", "category", original)
    if args.train_limit:  # a quick smoke run of the whole flow
        train, _ = stratified_split(train, 1 - args.train_limit / len(train), seed=7)
    test = read_labelled(folder / "test.csv", "text", "category", original)
    to_old = {c: ("card_delivery" if c in SPLIT else c) for c in original.leaf_ids}
    merged = {src: dst for dst, srcs in MERGES.items() for src in srcs}
    to_new = {c: merged.get(c) or RENAMES.get(c) or c for c in original.leaf_ids}

    # 1. champion under 2025.1
    champion = run_training(
        _config(
            "champion",
            _write_csv(work / "train-2025.csv", train.texts, [to_old[c] for c in train.labels]),
            work / "taxonomy-2025.yaml",
            work,
            args.epochs,
            "champion",
        ),
        settings,
    )

    # 2. labelled history in the database, spread over twelve months
    db = Database(settings.database)
    db.upgrade()
    clf = Classifier(champion.bundle, intra_op_threads=0)
    predictions = clf.predict_cleaned([CleanText(t, False) for t in train.texts])
    ingested = queue.ingest(
        db,
        clf.info,
        [(CleanText(t, False), str(i), None) for i, t in enumerate(train.texts)],
        predictions,
        queue.QueuePolicy(qa_rate=0.0, agreement_rate=0.0, seed=7),
    )
    gold = {ing.feedback_id: lab for ing, lab in zip(ingested, train.labels, strict=True)}
    with db.session() as s:
        for i, ing in enumerate(ingested):
            month = datetime(2026, 1 + i % 12, 15, tzinfo=UTC)
            s.execute(update(FeedbackRow).where(FeedbackRow.id == ing.feedback_id).values(received_at=month))
            s.add(
                LabelRow(
                    feedback_id=ing.feedback_id,
                    annotator="history",
                    action="label",
                    category=to_old[gold[ing.feedback_id]],
                    owner=old.leaf_owner[to_old[gold[ing.feedback_id]]],
                    taxonomy_version=old.version,
                    created_at=month,
                )
            )

    # 3. migrate stored labels; the simulated annotator answers the relabel queue with the original labels
    t0 = time.perf_counter()
    dry = refresh.plan(db, migration, clf.category_scores)
    plan = refresh.apply(db, migration, clf.category_scores)
    migrate_seconds = time.perf_counter() - t0
    answered = 0
    while (task := queue.next_task(db, "oracle", old)) is not None:
        if task.reason == "relabel":
            queue.submit(db, task.id, "oracle", "label", old, category=gold[task.feedback_id])
            answered += 1
        else:  # pragma: no cover - the champion's review tasks stay under 2025.1
            queue.submit(db, task.id, "oracle", "skip", old)
    n_labels = export_labels(db, new, work / "train-2026.csv", label_column="category")

    # 4. challenger under 2026.1
    challenger = run_training(
        _config("challenger", work / "train-2026.csv", work / "taxonomy-2026.yaml", work, args.epochs, CHALLENGER),
        settings,
    )
    heldout = LabelledData(test.texts, [to_new[c] for c in test.labels])
    gate = compare(champion.bundle, challenger.bundle, heldout, migration, tolerance=args.tolerance)
    promoted = promote(settings, heldout, migration, tolerance=args.tolerance)
    after = evaluate_bundle(challenger.bundle, heldout, split="banking77-test@2026.1", threads=0)

    # 5. backfill the history under 2026.1 and compare trend lines
    t0 = time.perf_counter()
    filled = backfill(db, Classifier(challenger.bundle, intra_op_threads=0), batch_size=256)
    backfill_seconds = time.perf_counter() - t0
    with db.session() as s:
        rows = s.execute(
            select(
                PredictionRow.feedback_id, PredictionRow.taxonomy_version, PredictionRow.category, PredictionRow.owner
            )
        ).all()
        month_of = dict(s.execute(select(FeedbackRow.id, FeedbackRow.received_at)).all())
    by_item: dict[str, dict[str, tuple[str, str]]] = {}
    for fid, version, category, owner in rows:
        by_item.setdefault(fid, {})[version] = (category, owner)
    comparable = [v for v in by_item.values() if migration.map_label(v[old.version][0]) is not None]
    same = sum(migration.map_label(v[old.version][0]) == v[new.version][0] for v in comparable)
    same_owner = sum(
        new.leaf_owner[migration.map_label(v[old.version][0]) or ""] == v[new.version][1] for v in comparable
    )
    trend: dict[str, Counter[str]] = {
        "identity_verification@2025.1 mapped": Counter(),
        "identity_verification@2026.1": Counter(),
    }
    for fid, v in by_item.items():
        label = f"{month_of[fid]:%Y-%m}"
        if migration.map_label(v[old.version][0]) == "identity_verification":
            trend["identity_verification@2025.1 mapped"][label] += 1
        if v[new.version][0] == "identity_verification":
            trend["identity_verification@2026.1"][label] += 1

    return {
        "data": "BANKING77 (PolyAI, CC-BY-4.0)",
        "taxonomies": {"from": old.version, "to": new.version, "leaves": [len(old.leaf_ids), len(new.leaf_ids)]},
        "migration_report": {
            **plan.summary(),
            "dry_run_equals_apply": dry.summary() == plan.summary(),
            "diff": migration.diff.as_dict(),
            "seconds": round(migrate_seconds, 2),
        },
        "relabel": {"answered_by_simulated_annotator": answered, "labels_exported_under_2026": n_labels},
        "champion": {"model": champion.bundle.metadata.model_version, "mlflow_run": champion.run_id},
        "challenger": {
            "model": challenger.bundle.metadata.model_version,
            "mlflow_run": challenger.run_id,
            "registered_version": challenger.registered.version if challenger.registered else None,
        },
        "gate": {
            "passed": gate.passed,
            "tolerance": gate.tolerance,
            "n": gate.n,
            "champion_mapped": gate.champion.model_dump(),
            "challenger": gate.challenger.model_dump(),
            "regressions": gate.regressions,
            "challenger_only": {c.category: round(c.challenger_f1, 4) for c in gate.per_class if c.champion_f1 is None},
            "largest_drops": {
                c.category: round(c.delta or 0.0, 4)
                for c in sorted((c for c in gate.per_class if c.delta is not None), key=lambda c: c.delta or 0.0)[:5]
            },
            "promoted": promoted.passed,
        },
        "accuracy_under_2026": {
            "accuracy": round(after.scores.accuracy, 4),
            "macro_f1": round(after.scores.macro_f1, 4),
            "owner_accuracy": round(after.owner_accuracy, 4),
        },
        "backfill": {
            "items": filled.classified,
            "remaining": filled.remaining,
            "batches": filled.batches,
            "seconds": round(backfill_seconds, 1),
            "items_per_second": round(filled.classified / backfill_seconds, 1),
            "category_continuity": round(same / len(comparable), 4),
            "owner_continuity": round(same_owner / len(comparable), 4),
            "comparable_items": len(comparable),
            "monthly_identity_verification": {k: dict(sorted(v.items())) for k, v in trend.items()},
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--tolerance", type=float, default=0.02)
    parser.add_argument("--train-limit", type=int, default=0, help="Use a stratified subset of train (smoke run).")
    parser.add_argument("--work-dir", type=Path, default=Path(".switchboard/bench/refresh"))
    return run_benchmark(run, parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
