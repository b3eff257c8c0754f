"""Calibration (temperature scaling, ECE), the deferral policy and the threshold sweep."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evaluation.thresholds import coverage_table, sweep_field, wilson_lower_bound
from models.calibration import expected_calibration_error, fit_temperature, nll
from models.classifier import softmax
from switchboard.deferral import DeferralPolicy, FieldPolicy, route


def _synthetic(n: int = 4000, k: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z): z is calibrated by construction."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2.0, size=(n, k)).astype(np.float32)
    p = softmax(z)
    y = np.array([rng.choice(k, p=row / row.sum()) for row in p], dtype=np.int64)
    return z, y


def test_temperature_scaling_recovers_an_overconfident_model() -> None:
    z, y = _synthetic()
    overconfident = z * 3.0
    t = fit_temperature(overconfident, y)
    assert t == pytest.approx(3.0, rel=0.1)
    assert nll(overconfident, y, t) < nll(overconfident, y, 1.0)
    before = expected_calibration_error(softmax(overconfident), y)
    after = expected_calibration_error(softmax(overconfident / t), y)
    assert after < before / 3
    assert expected_calibration_error(softmax(z), y) < 0.03


def test_policy_sends_low_confidence_and_near_ties_to_review() -> None:
    policy = DeferralPolicy(category=FieldPolicy(threshold=0.8, min_margin=0.2), owner=FieldPolicy(threshold=0.9))
    sure = route(policy, (0.95, 0.02), (0.97, 0.02))
    assert (sure.category, sure.owner, sure.auto_routed, sure.reasons) == ("auto", "auto", True, [])
    tie = route(policy, (0.85, 0.7), (0.99, 0.01))
    assert tie.category == "review" and tie.owner == "auto"
    assert tie.reasons == ["category margin 0.150 < 0.200"]
    low = route(policy, (0.5, 0.3), (0.6, 0.3))
    assert not low.auto_routed
    assert "owner confidence 0.600 < 0.900" in low.reasons


def test_sweep_picks_the_widest_coverage_that_meets_the_target() -> None:
    # 10 items: confidences 0.55..1.0; the four least confident are wrong
    conf = np.linspace(0.55, 1.0, 10).astype(np.float32)
    probs = np.stack([conf, 1 - conf], axis=1)
    gold = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=np.int64)
    fs = sweep_field("owner", probs, gold, target=1.0, margins=(0.0,), z=0.0)
    assert fs.chosen is not None
    assert fs.chosen.coverage == pytest.approx(0.6)
    assert fs.chosen.accuracy == 1.0
    assert 0.70 < fs.chosen.threshold <= 0.75  # the strictest threshold with that coverage
    assert "← chosen" in coverage_table(fs)
    impossible = sweep_field("owner", probs, 1 - gold, target=1.0, margins=(0.0,), z=0.0)
    # with the lower bound, six correct items are not enough evidence for a 95 % target
    assert sweep_field("owner", probs, gold, target=0.95, margins=(0.0,)).chosen is None
    assert wilson_lower_bound(0.99, 1000, 1.645) == pytest.approx(0.9830, abs=5e-4)
    assert impossible.chosen is None
    assert impossible.policy() == FieldPolicy(threshold=1.0, min_margin=1.0)


def test_training_calibrates_and_stores_the_policy(trained, bundle_path: Path) -> None:  # type: ignore[no-untyped-def]
    meta = json.loads((bundle_path / "metadata.json").read_text())
    assert meta["temperature"] > 0 and meta["temperature"] != 1.0
    assert meta["deferral"]["chosen_for"] == {"category": 0.95, "owner": 0.98}
    report = trained.report
    assert report.calibration.temperature == meta["temperature"]
    assert report.calibration.ece <= report.calibration.ece_uncalibrated + 1e-9
    # on the split the thresholds were chosen on, auto-routed owners meet the target (or nothing is auto-routed)
    assert report.deferral.owner_auto_accuracy >= 0.98 or report.deferral.owner_auto_rate == 0.0
    sweep_file = Path(trained.bundle.path).parent / "report" / "thresholds.json"
    assert json.loads(sweep_file.read_text())["owner"]["target"] == 0.98
