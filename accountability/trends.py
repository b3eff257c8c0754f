"""Volumes and trends per category and owner, sentiment share, and case-handling figures.

Volumes count stored feedback by the prediction made under the taxonomy version asked for (the one in force
by default), so after a refresh and a backfill the history is counted in the new categories and the trend
line continues. Periods: day, week (ISO, starting Monday) or month, by the time the feedback was received.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from sqlalchemy import func, select

from accountability.cases import CLOSED
from switchboard.errors import InputError
from switchboard.storage import Database
from switchboard.storage.tables import CaseEventRow, CaseRow, FeedbackRow, FollowupRow, PredictionRow
from switchboard.taxonomy import Taxonomy

Period = Literal["day", "week", "month"]
Dimension = Literal["category", "owner"]


def period_start(moment: datetime | date, period: Period) -> date:
    day = moment.date() if isinstance(moment, datetime) else moment
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise InputError(f"unknown period '{period}' (day, week or month)")


def next_period(start: date, period: Period) -> date:
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def classified_items(
    db: Database, taxonomy_version: str, since: date, until: date
) -> list[tuple[str, datetime, str, str]]:
    """(feedback id, received at, category, owner) under ``taxonomy_version`` for items received in [since, until)."""
    latest = (
        select(PredictionRow.feedback_id, func.max(PredictionRow.id).label("pid"))
        .where(PredictionRow.taxonomy_version == taxonomy_version)
        .group_by(PredictionRow.feedback_id)
        .subquery()
    )
    stmt = (
        select(FeedbackRow.id, FeedbackRow.received_at, PredictionRow.category, PredictionRow.owner)
        .join(latest, latest.c.feedback_id == FeedbackRow.id)
        .join(PredictionRow, PredictionRow.id == latest.c.pid)
        .where(FeedbackRow.received_at >= _midnight(since), FeedbackRow.received_at < _midnight(until))
    )
    with db.session() as s:
        return [(fid, at, cat, owner) for fid, at, cat, owner in s.execute(stmt).all()]


@dataclass(frozen=True)
class Series:
    key: str
    points: dict[str, int]  # period start (ISO) → count
    total: int


def volumes(
    db: Database,
    taxonomy: Taxonomy,
    by: Dimension,
    period: Period,
    since: date,
    until: date,
) -> tuple[list[str], list[Series]]:
    """Counts per period for every category (or owner) of ``taxonomy``; zero-filled, biggest first."""
    if since >= until:
        raise InputError(f"since ({since}) must be before until ({until})")
    if (until - since).days > 3 * 366:
        raise InputError("at most three years per query")
    starts: list[str] = []
    cursor = period_start(since, period)
    while cursor < until:
        starts.append(cursor.isoformat())
        cursor = next_period(cursor, period)
    keys = list(taxonomy.leaf_ids) if by == "category" else [o.id for o in taxonomy.owners]
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for _fid, at, category, owner in classified_items(db, taxonomy.version, since, until):
        counts[category if by == "category" else owner][period_start(at, period).isoformat()] += 1
    series = [
        Series(key, {p: counts[key][p] for p in starts}, sum(counts[key].values()))
        for key in keys + sorted(set(counts) - set(keys))
    ]
    series.sort(key=lambda x: -x.total)
    return starts, series


@dataclass(frozen=True)
class SentimentShare:
    positive: int
    negative: int
    neutral: int
    unknown: int

    @property
    def negative_share(self) -> float | None:
        rated = self.positive + self.negative + self.neutral
        return self.negative / rated if rated else None

    @property
    def positive_share(self) -> float | None:
        rated = self.positive + self.negative + self.neutral
        return self.positive / rated if rated else None


def sentiment(items: list[tuple[str, datetime, str, str]], taxonomy: Taxonomy) -> dict[str, SentimentShare]:
    """Positive/negative/neutral counts per owner from the sentiment each predicted category carries."""
    tally: dict[str, Counter[str]] = defaultdict(Counter)
    for _fid, _at, category, owner in items:
        tally[owner][taxonomy.sentiment_of(category) or "unknown"] += 1
    return {
        owner: SentimentShare(c["positive"], c["negative"], c["neutral"], c["unknown"]) for owner, c in tally.items()
    }


@dataclass
class CaseFigures:
    """Case handling of one owner (or everyone) at a moment."""

    open: int = 0
    overdue: int = 0
    closed: int = 0
    resolved: int = 0
    justified: int = 0
    reopened_ever: int = 0
    loop_closed: int = 0
    open_age_days_median: float | None = None
    open_age_days_p90: float | None = None
    time_to_close_hours_median: float | None = None
    reopen_rate: float | None = None
    followups: int = 0
    confirmed: int = 0
    confirmed_share: float | None = None
    overdue_cases: list[tuple[int, str, str, float]] = field(default_factory=list)  # (id, category, status, age)


def case_figures(
    db: Database, now: datetime, sla_days: float, closed_since: datetime | None = None
) -> dict[str, CaseFigures]:
    """Per owner (and ``*`` for everyone): open-case age, overdue, time to close, reopen rate, confirmations.

    ``closed_since`` limits the closure figures to cases closed from then on (e.g. this month).
    """
    with db.session() as s:
        cases = s.execute(
            select(
                CaseRow.id,
                CaseRow.owner,
                CaseRow.category,
                CaseRow.status,
                CaseRow.opened_at,
                CaseRow.closed_at,
                CaseRow.reopen_count,
                CaseRow.loop_closed,
            )
        ).all()
        first_close = dict(
            s.execute(
                select(CaseEventRow.case_id, func.min(CaseEventRow.at))
                .where(CaseEventRow.to_status.in_(CLOSED))
                .group_by(CaseEventRow.case_id)
            ).all()
        )
        follow = dict(s.execute(select(FollowupRow.case_id, FollowupRow.resolved)).all())
    out: dict[str, CaseFigures] = defaultdict(CaseFigures)
    ages: dict[str, list[float]] = defaultdict(list)
    to_close: dict[str, list[float]] = defaultdict(list)
    ever_closed: Counter[str] = Counter()
    for cid, owner, category, status, opened, closed, reopens, loop in cases:
        for key in (owner, "*"):
            f = out[key]
            if status in CLOSED:
                if closed_since is None or (closed is not None and closed >= closed_since):
                    f.closed += 1
                    f.resolved += status == "resolved"
                    f.justified += status == "justified"
                    f.loop_closed += bool(loop)
            else:
                f.open += 1
                age = (now - opened).total_seconds() / 86400
                ages[key].append(age)
                if age > sla_days:
                    f.overdue += 1
                    if key != "*":
                        f.overdue_cases.append((cid, category, status, round(age, 1)))
            if cid in first_close:
                ever_closed[key] += 1
                to_close[key].append((first_close[cid] - opened).total_seconds() / 3600)
                f.reopened_ever += reopens > 0
            if cid in follow:
                f.followups += 1
                f.confirmed += bool(follow[cid])
    for key, f in out.items():
        if ages[key]:
            f.open_age_days_median = round(statistics.median(ages[key]), 2)
            f.open_age_days_p90 = round(_quantile(ages[key], 0.9), 2)
        if to_close[key]:
            f.time_to_close_hours_median = round(statistics.median(to_close[key]), 2)
        if ever_closed[key]:
            f.reopen_rate = round(f.reopened_ever / ever_closed[key], 4)
        if f.followups:
            f.confirmed_share = round(f.confirmed / f.followups, 4)
    return dict(out)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
