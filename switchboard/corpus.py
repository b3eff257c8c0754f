"""Labelled feedback corpora, read with the ``datasets`` library and checked against the taxonomy."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from switchboard.errors import DataError, InputError
from switchboard.taxonomy import Taxonomy
from switchboard.text import clean_text

_FORMATS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}


@dataclass(frozen=True)
class LabelledData:
    """Cleaned texts with their category ids."""

    texts: list[str]
    labels: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def fingerprint(self) -> str:
        """A content hash of the (text, label) rows: the data version recorded with each run."""
        digest = hashlib.sha256()
        for text, label in zip(self.texts, self.labels, strict=True):
            digest.update(text.encode())
            digest.update(b"\x1f")
            digest.update(label.encode())
            digest.update(b"\x1e")
        return digest.hexdigest()[:16]

    def subset(self, indices: list[int] | np.ndarray) -> LabelledData:
        return LabelledData([self.texts[i] for i in indices], [self.labels[i] for i in indices])


def read_labelled(path: Path, text_column: str, label_column: str, taxonomy: Taxonomy) -> LabelledData:
    """Read a CSV/JSONL/Parquet file; every label must be a leaf category of ``taxonomy``."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from datasets import load_dataset  # heavy import, only when data is read

    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unsupported format '{path.suffix}' (use .csv, .jsonl, .json or .parquet)")
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        table = load_dataset(fmt, data_files={"data": str(path)}, split="data")
    except Exception as exc:  # datasets wraps parser errors in many types
        raise DataError(f"cannot read {path}: {exc}") from exc
    missing = [c for c in (text_column, label_column) if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(table.column_names)}")
    texts, labels = [], []
    leaves = set(taxonomy.leaf_ids)
    unknown: dict[str, int] = {}
    for row_no, (raw_text, raw_label) in enumerate(zip(table[text_column], table[label_column], strict=True)):
        label = "" if raw_label is None else str(raw_label).strip()
        if label not in leaves:
            unknown.setdefault(label, row_no + 1)
            continue
        try:
            texts.append(clean_text(raw_text if isinstance(raw_text, str) else "").text)
        except InputError as exc:
            raise DataError(f"{path}: row {row_no + 1}: {exc}") from exc
        labels.append(label)
    if unknown:
        shown = ", ".join(f"'{lab}' (first at row {row})" for lab, row in list(unknown.items())[:10])
        raise DataError(
            f"{path}: {len(unknown)} label(s) are not leaf categories of taxonomy {taxonomy.version}: {shown}"
        )
    if not texts:
        raise DataError(f"{path}: no rows")
    return LabelledData(texts, labels)


def stratified_split(data: LabelledData, fraction: float, seed: int) -> tuple[LabelledData, LabelledData]:
    """Hold out ``fraction`` of each label (at least one item when the label has two or more)."""
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(data.labels):
        by_label.setdefault(label, []).append(i)
    train_idx: list[int] = []
    held_idx: list[int] = []
    for idx in by_label.values():
        perm = rng.permutation(idx).tolist()
        n_held = round(len(perm) * fraction)
        if fraction > 0 and len(perm) >= 2:
            n_held = max(1, n_held)
        held_idx.extend(perm[:n_held])
        train_idx.extend(perm[n_held:])
    return data.subset(sorted(train_idx)), data.subset(sorted(held_idx))
