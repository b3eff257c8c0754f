"""Classification metrics: accuracy, macro-F1, per-label precision/recall/F1, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field


class LabelScore(BaseModel):
    precision: float
    recall: float
    f1: float
    support: int


class Scores(BaseModel):
    """Scores of predictions against gold labels over a fixed label order."""

    accuracy: float
    macro_f1: float
    macro_precision: float
    macro_recall: float
    n: int
    labels: list[str]
    per_label: dict[str, LabelScore]
    confusion: list[list[int]] = Field(description="rows: gold label, columns: predicted label")


def score(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None) -> Scores:
    """Score ``predicted`` against ``gold``; macro averages are over labels that occur in either."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    order = list(labels) if labels is not None else sorted(set(gold) | set(predicted))
    extra = sorted((set(gold) | set(predicted)) - set(order))
    order.extend(extra)
    index = {lab: i for i, lab in enumerate(order)}
    k = len(order)
    confusion = np.zeros((k, k), dtype=np.int64)
    if gold:
        np.add.at(confusion, ([index[g] for g in gold], [index[p] for p in predicted]), 1)
    tp = np.diag(confusion).astype(float)
    pred_tot = confusion.sum(axis=0).astype(float)
    gold_tot = confusion.sum(axis=1).astype(float)
    precision = np.divide(tp, pred_tot, out=np.zeros(k), where=pred_tot > 0)
    recall = np.divide(tp, gold_tot, out=np.zeros(k), where=gold_tot > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    present = (pred_tot + gold_tot) > 0
    n = len(gold)
    return Scores(
        accuracy=float(tp.sum() / n) if n else 0.0,
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        macro_precision=float(precision[present].mean()) if present.any() else 0.0,
        macro_recall=float(recall[present].mean()) if present.any() else 0.0,
        n=n,
        labels=order,
        per_label={
            lab: LabelScore(
                precision=float(precision[i]), recall=float(recall[i]), f1=float(f1[i]), support=int(gold_tot[i])
            )
            for i, lab in enumerate(order)
        },
        confusion=confusion.tolist(),
    )
