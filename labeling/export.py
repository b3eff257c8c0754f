"""Accepted human labels as a training data set (``datasets``), the input of a retrain."""

from __future__ import annotations

from pathlib import Path

from labeling.queue import accepted_labels
from switchboard.errors import DataError
from switchboard.storage import Database
from switchboard.taxonomy import Taxonomy


def export_labels(
    db: Database, taxonomy: Taxonomy, out: Path, text_column: str = "text", label_column: str = "label"
) -> int:
    """Write the newest accepted label per item (under ``taxonomy``) to CSV, JSONL or Parquet; returns rows."""
    from datasets import Dataset

    rows = accepted_labels(db, taxonomy)
    if not rows:
        raise DataError(f"no accepted labels under taxonomy {taxonomy.version} to export")
    ds = Dataset.from_dict(
        {
            "feedback_id": [r[0] for r in rows],
            text_column: [r[1] for r in rows],
            label_column: [r[2] for r in rows],
        }
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        ds.to_parquet(str(out))
    elif suffix == ".csv":
        ds.to_csv(str(out), index=False)
    elif suffix in (".jsonl", ".json"):
        ds.to_json(str(out), lines=True)
    else:
        raise DataError(f"{out}: unsupported format '{out.suffix}' (use .parquet, .csv or .jsonl)")
    return len(rows)
