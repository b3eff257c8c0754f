from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.report import evaluate_bundle, write_report
from evaluation.scorer import score
from models.bundle import load_bundle
from switchboard.corpus import read_labelled
from tests.conftest import DEMO_DATA


def test_scorer_against_hand_computed_values() -> None:
    gold = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "b", "c", "c"]
    s = score(gold, pred, ["a", "b", "c"])
    assert s.accuracy == pytest.approx(4 / 6)
    assert s.per_label["a"].precision == 1.0 and s.per_label["a"].recall == pytest.approx(2 / 3)
    assert s.per_label["b"].precision == 0.5 and s.per_label["b"].recall == 0.5
    assert s.per_label["c"].precision == 0.5 and s.per_label["c"].recall == 1.0
    f1 = [0.8, 0.5, 2 / 3]
    assert s.macro_f1 == pytest.approx(sum(f1) / 3)
    assert s.confusion == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_scorer_ignores_absent_labels_in_macro_average_and_checks_lengths() -> None:
    s = score(["a", "b"], ["a", "b"], ["a", "b", "never"])
    assert s.macro_f1 == 1.0
    assert s.per_label["never"].support == 0
    with pytest.raises(ValueError, match="2 gold labels but 1 predictions"):
        score(["a", "b"], ["a"])


def test_report_json_and_markdown(bundle_path: Path, tmp_path: Path) -> None:
    bundle = load_bundle(bundle_path)
    data = read_labelled(DEMO_DATA, "text", "category", bundle.taxonomy)
    report = evaluate_bundle(bundle, data, split="demo")
    assert report.n == len(data)
    assert 0.0 <= report.scores.macro_f1 <= 1.0
    assert sum(map(sum, report.scores.confusion)) == len(data)
    assert set(report.owner_scores.per_label) == {o.id for o in bundle.taxonomy.owners}
    json_path, md_path = write_report(report, tmp_path)
    loaded = json.loads(json_path.read_text())
    assert loaded["scores"]["accuracy"] == pytest.approx(report.scores.accuracy)
    assert set(loaded["scores"]["per_label"]) == set(bundle.labels)
    md = md_path.read_text()
    assert "| late_delivery |" in md and "owner accuracy" in md
