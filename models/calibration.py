"""Confidence calibration: temperature scaling (Guo et al., 2017) and expected calibration error."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

ECE_BINS = 15


def log_softmax(logits: NDArray[np.float32]) -> NDArray[np.float64]:
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def nll(logits: NDArray[np.float32], targets: NDArray[np.int64], temperature: float) -> float:
    """Mean negative log-likelihood of ``targets`` under softmax(logits / temperature)."""
    logp = log_softmax((logits / temperature).astype(np.float32))
    return float(-logp[np.arange(len(targets)), targets].mean())


def fit_temperature(logits: NDArray[np.float32], targets: NDArray[np.int64]) -> float:
    """The temperature in [0.05, 20] minimising validation NLL (golden-section search on log T)."""
    if len(targets) == 0:
        return 1.0
    lo, hi = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(logits, targets, math.exp(a)), nll(logits, targets, math.exp(b))
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(logits, targets, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(logits, targets, math.exp(b))
    return round(math.exp((lo + hi) / 2), 4)


def expected_calibration_error(
    probabilities: NDArray[np.float32], targets: NDArray[np.int64], bins: int = ECE_BINS
) -> float:
    """ECE of the top-1 confidence: the support-weighted mean |accuracy - confidence| over equal-width bins."""
    if len(targets) == 0:
        return 0.0
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == targets).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)
