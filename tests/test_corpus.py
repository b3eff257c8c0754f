from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from switchboard.corpus import read_labelled, stratified_split
from switchboard.errors import DataError
from switchboard.taxonomy import Taxonomy
from tests.conftest import DEMO_DATA


def test_reads_the_demo_csv(demo_taxonomy: Taxonomy) -> None:
    data = read_labelled(DEMO_DATA, "text", "category", demo_taxonomy)
    assert len(data) >= 300
    assert set(data.labels) == set(demo_taxonomy.leaf_ids)
    assert len(data.fingerprint) == 16


def test_reads_jsonl_and_parquet(tmp_path: Path, demo_taxonomy: Taxonomy) -> None:
    rows = [{"body": "App crashed  at checkout", "y": "app_crash"}, {"body": "charged twice", "y": "double_charge"}]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    data = read_labelled(jsonl, "body", "y", demo_taxonomy)
    assert data.texts == ["App crashed at checkout", "charged twice"]
    import pandas as pd

    pq = tmp_path / "d.parquet"
    pd.DataFrame(rows).to_parquet(pq)
    assert read_labelled(pq, "body", "y", demo_taxonomy).labels == ["app_crash", "double_charge"]


def test_unknown_labels_are_listed_with_their_row(tmp_path: Path, demo_taxonomy: Taxonomy) -> None:
    f = tmp_path / "d.csv"
    f.write_text("text,label\nfine,app_crash\nhmm,teleportation\nagain,delivery\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"'teleportation' \(first at row 2\).*'delivery' \(first at row 3\)"):
        read_labelled(f, "text", "label", demo_taxonomy)


def test_missing_column_and_bad_format(tmp_path: Path, demo_taxonomy: Taxonomy) -> None:
    f = tmp_path / "d.csv"
    f.write_text("message,label\nhello,app_crash\n", encoding="utf-8")
    with pytest.raises(DataError, match="missing column"):
        read_labelled(f, "text", "label", demo_taxonomy)
    with pytest.raises(DataError, match="unsupported format"):
        read_labelled(tmp_path / "d.xlsx", "text", "label", demo_taxonomy)
    with pytest.raises(DataError, match="not found"):
        read_labelled(tmp_path / "nope.csv", "text", "label", demo_taxonomy)


def test_empty_text_row_is_reported(tmp_path: Path, demo_taxonomy: Taxonomy) -> None:
    f = tmp_path / "d.csv"
    f.write_text('text,label\nok,app_crash\n"   ",app_crash\n', encoding="utf-8")
    with pytest.raises(DataError, match="row 2"):
        read_labelled(f, "text", "label", demo_taxonomy)


def test_stratified_split_keeps_every_label_on_both_sides(demo_taxonomy: Taxonomy) -> None:
    data = read_labelled(DEMO_DATA, "text", "category", demo_taxonomy)
    train, held = stratified_split(data, 0.2, seed=1)
    assert len(train) + len(held) == len(data)
    assert set(held.labels) == set(train.labels) == set(data.labels)
    total = Counter(data.labels)
    assert all(abs(n - 0.2 * total[label]) <= 1 for label, n in Counter(held.labels).items())  # 20 % of each
    assert stratified_split(data, 0.2, seed=1)[1].texts == held.texts  # deterministic
