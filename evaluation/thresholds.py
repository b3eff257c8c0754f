"""Threshold sweep for the deferral policy (like spaCy's find_threshold): coverage vs accuracy per field,
and the most permissive policy that still meets a target accuracy on the auto-applied items."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

from models.classifier import Classifier
from switchboard.deferral import DeferralPolicy, FieldPolicy

THRESHOLDS = tuple(round(x, 2) for x in np.arange(0.0, 1.0001, 0.01))
MARGINS = (0.0, 0.05, 0.1, 0.2, 0.3)
DEFAULT_Z = 1.645  # one-sided 95 %


class SweepPoint(BaseModel):
    threshold: float
    min_margin: float
    coverage: float
    accuracy: float
    accuracy_lower_bound: float
    auto_items: int


class FieldSweep(BaseModel):
    field: str
    target: float
    points: list[SweepPoint]
    chosen: SweepPoint | None

    def policy(self) -> FieldPolicy:
        """The chosen policy; if no setting meets the target, nothing is auto-applied."""
        if self.chosen is None:
            return FieldPolicy(threshold=1.0, min_margin=1.0)
        return FieldPolicy(threshold=self.chosen.threshold, min_margin=self.chosen.min_margin)


class ThresholdReport(BaseModel):
    n: int
    category: FieldSweep
    owner: FieldSweep

    def policy(self) -> DeferralPolicy:
        return DeferralPolicy(
            category=self.category.policy(),
            owner=self.owner.policy(),
            chosen_for={"category": self.category.target, "owner": self.owner.target},
        )


def gold_indices(classifier: Classifier, labels: list[str]) -> tuple[list[int], NDArray[np.int64], NDArray[np.int64]]:
    """The rows whose label the model can predict, with their category and owner indices in the model's order."""
    index = {lab: i for i, lab in enumerate(classifier.labels)}
    owner_index = {o: i for i, o in enumerate(classifier.owners)}
    leaf_owner = classifier.bundle.taxonomy.leaf_owner
    known = [i for i, lab in enumerate(labels) if lab in index]
    gold = np.array([index[labels[i]] for i in known], dtype=np.int64)
    owner_gold = np.array([owner_index[leaf_owner[labels[i]]] for i in known], dtype=np.int64)
    return known, gold, owner_gold


def top2(probabilities: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int64]]:
    """Top probability, its lead over the runner-up, and the argmax, per row."""
    order = np.argsort(-probabilities, axis=1, kind="stable")
    rows = np.arange(len(probabilities))
    first = probabilities[rows, order[:, 0]]
    second = probabilities[rows, order[:, 1]] if probabilities.shape[1] > 1 else np.zeros_like(first)
    return first, first - second, order[:, 0]


def wilson_lower_bound(p: float, n: int, z: float) -> float:
    """One-sided Wilson score lower bound of a proportion ``p`` observed on ``n`` items."""
    if n == 0 or z <= 0:
        return p
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return (centre - spread) / (1 + z2 / n)


def sweep_field(
    field: str,
    probabilities: NDArray[np.float32],
    gold: NDArray[np.int64],
    target: float,
    thresholds: tuple[float, ...] = THRESHOLDS,
    margins: tuple[float, ...] = MARGINS,
    z: float = DEFAULT_Z,
) -> FieldSweep:
    """Coverage and accuracy at every (threshold, margin); the chosen point has the widest coverage whose
    accuracy's one-sided Wilson lower bound (``z`` standard errors; 0 = the point estimate) meets ``target``,
    so a policy picked on a few hundred held-out items does not fall short on new data."""
    confidence, margin, predicted = top2(probabilities)
    correct = predicted == gold
    n = len(gold)
    points = []
    for m in margins:
        for t in thresholds:
            auto = (confidence >= t) & (margin >= m)
            k = int(auto.sum())
            accuracy = float(correct[auto].mean()) if k else 1.0
            points.append(
                SweepPoint(
                    threshold=t,
                    min_margin=m,
                    coverage=k / n if n else 0.0,
                    accuracy=accuracy,
                    accuracy_lower_bound=wilson_lower_bound(accuracy, k, z),
                    auto_items=k,
                )
            )
    eligible = [p for p in points if p.auto_items > 0 and p.accuracy_lower_bound >= target]
    chosen = max(eligible, key=lambda p: (p.coverage, p.threshold), default=None)
    return FieldSweep(field=field, target=target, points=points, chosen=chosen)


def sweep(
    category_probs: NDArray[np.float32],
    category_gold: NDArray[np.int64],
    owner_probs: NDArray[np.float32],
    owner_gold: NDArray[np.int64],
    category_target: float,
    owner_target: float,
    z: float = DEFAULT_Z,
) -> ThresholdReport:
    return ThresholdReport(
        n=len(category_gold),
        category=sweep_field("category", category_probs, category_gold, category_target, z=z),
        owner=sweep_field("owner", owner_probs, owner_gold, owner_target, z=z),
    )


def coverage_table(field_sweep: FieldSweep, margin: float | None = None, step: float = 0.1) -> str:
    """A Markdown table of coverage and accuracy at a few thresholds (for the chosen margin)."""
    if margin is None:
        margin = field_sweep.chosen.min_margin if field_sweep.chosen else 0.0
    wanted = {round(x, 2) for x in np.arange(0.0, 1.0001, step)}
    if field_sweep.chosen:
        wanted.add(field_sweep.chosen.threshold)
    lines = [
        f"| {field_sweep.field} threshold (margin ≥ {margin}) | coverage | accuracy of auto items |",
        "|---:|---:|---:|",
    ]
    for p in field_sweep.points:
        if p.min_margin == margin and p.threshold in wanted:
            mark = " ← chosen" if field_sweep.chosen == p else ""
            lines.append(
                f"| {p.threshold:.2f}{mark} | {p.coverage:.3f} | {p.accuracy:.4f} | {p.accuracy_lower_bound:.4f} |"
            )
    return "\n".join(lines)
