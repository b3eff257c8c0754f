"""Spike alerts per category and per owner that hold up on small counts.

For each day, the count is compared with a Poisson baseline: λ is the larger of the mean daily count over the
previous ``baseline_days`` and the mean of the same weekday over the previous four weeks (a weekly
seasonality guard: a regular Monday peak is not a spike), with a small prior so that a quiet category is not
treated as impossible. An alert fires when P(X ≥ observed | λ) < ``alpha`` and at least ``min_count`` items
arrived. With the defaults, a category that gets three items a month alerts on a day with 3 (p = 0.00025),
not on one with 2 (p = 0.0064); one that gets a hundred a day alerts from 133. A fixed "mean + 2 sd" rule
would fire on every single item of the first and on ordinary noise (> 120) of the second.

Alerts are stored once per (scope, key, day) and announced to the owner through the outbox.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from accountability.outbox import enqueue
from accountability.trends import classified_items
from switchboard.settings import Settings
from switchboard.storage import Database
from switchboard.storage.tables import AlertRow
from switchboard.taxonomy import Taxonomy

PRIOR_COUNT = 0.5  # pseudo-items spread over the baseline window


def poisson_sf(k: int, lam: float) -> float:
    """P(X ≥ k) for X ~ Poisson(λ)."""
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    # 1 - P(X ≤ k-1), summed in log space for stability
    log_pmf = -lam
    cdf = math.exp(log_pmf)
    for i in range(1, k):
        log_pmf += math.log(lam) - math.log(i)
        cdf += math.exp(log_pmf)
    return max(0.0, 1.0 - cdf)


@dataclass(frozen=True)
class SpikePolicy:
    alpha: float = 0.001
    min_count: int = 3
    baseline_days: int = 28

    @classmethod
    def from_settings(cls, settings: Settings) -> SpikePolicy:
        return cls(alpha=settings.alert_alpha, min_count=settings.alert_min_count)


def days_ending(end: date, days: int) -> list[date]:
    """The ``days`` days up to and including ``end``, oldest first."""
    return [end - timedelta(days=i) for i in range(days)][::-1]


@dataclass(frozen=True)
class Spike:
    scope: str
    key: str
    owner: str
    day: date
    observed: int
    expected: float
    p_value: float


def baseline(history: dict[date, int], day: date, days: int) -> float:
    """λ for ``day`` from the ``days`` before it (see the module docstring)."""
    window = [history.get(day - timedelta(days=i), 0) for i in range(1, days + 1)]
    mean = (sum(window) + PRIOR_COUNT) / days
    same_weekday = [history.get(day - timedelta(days=7 * i), 0) for i in range(1, 5)]
    seasonal = (sum(same_weekday) + PRIOR_COUNT) / 4
    return max(mean, seasonal if days >= 28 else 0.0)


def detect(db: Database, taxonomy: Taxonomy, days: list[date], policy: SpikePolicy = SpikePolicy()) -> list[Spike]:
    """Spikes of every category and owner on each of ``days``."""
    if not days:
        return []
    since = min(days) - timedelta(days=policy.baseline_days)
    until = max(days) + timedelta(days=1)
    counts: dict[tuple[str, str], dict[date, int]] = defaultdict(Counter)
    for _fid, at, category, owner in classified_items(db, taxonomy.version, since, until):
        day = at.astimezone(UTC).date()
        counts[("category", category)][day] += 1
        counts[("owner", owner)][day] += 1
    spikes = []
    for (scope, key), history in counts.items():
        for day in days:
            observed = history.get(day, 0)
            if observed < policy.min_count:
                continue
            lam = baseline(history, day, policy.baseline_days)
            p = poisson_sf(observed, lam)
            if p < policy.alpha:
                owner = key if scope == "owner" else taxonomy.leaf_owner.get(key, "?")
                spikes.append(Spike(scope, key, owner, day, observed, round(lam, 4), p))
    spikes.sort(key=lambda s: (s.day, s.p_value))
    return spikes


def scan(db: Database, taxonomy: Taxonomy, days: list[date], policy: SpikePolicy = SpikePolicy()) -> list[Spike]:
    """Detect spikes and store + announce the new ones (a spike already stored is not announced again)."""
    found = detect(db, taxonomy, days, policy)
    new: list[Spike] = []
    now = datetime.now(UTC)
    with db.session() as s:
        for spike in found:
            exists = s.scalars(
                select(AlertRow).where(
                    AlertRow.scope == spike.scope, AlertRow.key == spike.key, AlertRow.day == spike.day
                )
            ).first()
            if exists is not None:
                if spike.observed > exists.observed:  # the day is still running: keep the figures current
                    exists.observed, exists.p_value = spike.observed, spike.p_value
                continue
            s.add(
                AlertRow(
                    scope=spike.scope,
                    key=spike.key,
                    owner=spike.owner,
                    day=spike.day,
                    observed=spike.observed,
                    expected=spike.expected,
                    p_value=spike.p_value,
                    created_at=now,
                )
            )
            enqueue(
                s,
                spike.owner,
                "alert.spike",
                {
                    "scope": spike.scope,
                    "key": spike.key,
                    "day": spike.day.isoformat(),
                    "observed": spike.observed,
                    "expected": spike.expected,
                    "p_value": spike.p_value,
                    "taxonomy_version": taxonomy.version,
                },
                now,
            )
            new.append(spike)
    return new


def list_alerts(db: Database, since: date | None = None, owner: str | None = None) -> list[Spike]:
    with db.session() as s:
        stmt = select(AlertRow).order_by(AlertRow.day.desc(), AlertRow.p_value)
        if since is not None:
            stmt = stmt.where(AlertRow.day >= since)
        if owner is not None:
            stmt = stmt.where(AlertRow.owner == owner)
        return [Spike(a.scope, a.key, a.owner, a.day, a.observed, a.expected, a.p_value) for a in s.scalars(stmt)]
