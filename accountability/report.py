"""The monthly accountability report, for leadership (every owner) or one owner: JSON and self-contained HTML.

Per owner: volume and change against the previous month, the top issues, a weekly trend over six months,
sentiment share, what was resolved or justified (with the notes), what is overdue, spike alerts, reopen rate,
time to close, and the share of closures the customer confirmed in the follow-up survey. The HTML carries
its charts as inline SVG (no scripts, no external assets), so it can be mailed or archived as one file; the
app's ``/dashboard`` serves the same page.
"""

from __future__ import annotations

import html
from collections import Counter
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import select

from accountability.alerts import list_alerts
from accountability.cases import CLOSED
from accountability.trends import case_figures, classified_items, next_period, sentiment, volumes
from switchboard.errors import InputError, NotFoundError
from switchboard.storage import Database
from switchboard.storage.tables import CaseRow
from switchboard.taxonomy import Taxonomy

TREND_MONTHS = 6
TOP_ISSUES = 5


class Issue(BaseModel):
    category: str
    name: str
    count: int
    previous: int
    change: float | None = Field(description="Relative change against the previous month; None when it was 0.")


class ClosedCase(BaseModel):
    case_id: int
    category: str
    status: str
    note: str
    loop_closed: bool
    closed_at: datetime


class OverdueCase(BaseModel):
    case_id: int
    category: str
    status: str
    age_days: float


class AlertLine(BaseModel):
    day: date
    scope: str
    key: str
    observed: int
    expected: float


class Trend(BaseModel):
    periods: list[str]
    series: dict[str, list[int]]


class OwnerSection(BaseModel):
    owner: str
    name: str
    volume: int
    previous_volume: int
    change: float | None
    top_issues: list[Issue]
    trend: Trend
    negative_share: float | None
    positive_share: float | None
    open_cases: int
    overdue_cases: int
    resolved: int
    justified: int
    loop_closed: int
    time_to_close_hours_median: float | None
    open_age_days_median: float | None
    reopen_rate: float | None
    followups: int
    confirmed_share: float | None
    closed_this_month: list[ClosedCase]
    overdue: list[OverdueCase]
    alerts: list[AlertLine]


class MonthlyReport(BaseModel):
    month: str
    scope: str = Field(description="'leadership' or an owner id")
    taxonomy_version: str
    generated_at: datetime
    sla_days: float
    total_volume: int
    previous_total_volume: int
    owners: list[OwnerSection]
    top_issues: list[Issue]
    trend: Trend = Field(description="Weekly volume per owner over the last six months.")


def parse_month(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise InputError(f"month must look like 2026-11, got '{value}'") from None


def _change(now: int, before: int) -> float | None:
    return round((now - before) / before, 4) if before else None


def monthly_report(
    db: Database,
    taxonomy: Taxonomy,
    month: str,
    owner: str | None = None,
    sla_days: float = 14.0,
    now: datetime | None = None,
) -> MonthlyReport:
    """Build the report for ``month`` (``YYYY-MM``), for every owner or for ``owner``."""
    if owner is not None and owner not in taxonomy.owner_by_id:
        raise NotFoundError(f"unknown owner '{owner}' in taxonomy {taxonomy.version}")
    start = parse_month(month)
    end = next_period(start, "month")
    prev = (start - timedelta(days=1)).replace(day=1)
    now = now or datetime.now(UTC)
    as_of = min(now, datetime(end.year, end.month, end.day, tzinfo=UTC))
    items = classified_items(db, taxonomy.version, start, end)
    before = classified_items(db, taxonomy.version, prev, start)
    trend_start = start
    for _ in range(TREND_MONTHS - 1):
        trend_start = (trend_start - timedelta(days=1)).replace(day=1)
    trend_end = min(end, as_of.date() + timedelta(days=1))  # no empty future weeks at the end of the line
    periods, owner_series = volumes(db, taxonomy, "owner", "week", trend_start, trend_end)
    _, cat_series = volumes(db, taxonomy, "category", "week", trend_start, trend_end)
    figures = case_figures(db, as_of, sla_days, closed_since=datetime(start.year, start.month, 1, tzinfo=UTC))
    moods = sentiment(items, taxonomy)
    alerts = list_alerts(db, since=start)
    cat_now = Counter(c for _, _, c, _ in items)
    cat_before = Counter(c for _, _, c, _ in before)
    own_now = Counter(o for _, _, _, o in items)
    own_before = Counter(o for _, _, _, o in before)
    closed_rows = _closed_cases(db, start, end)

    def issues(keys: list[str]) -> list[Issue]:
        ranked = sorted(keys, key=lambda c: (-cat_now[c], c))
        return [
            Issue(
                category=c,
                name=taxonomy.category_by_id[c].name if c in taxonomy.category_by_id else c,
                count=cat_now[c],
                previous=cat_before[c],
                change=_change(cat_now[c], cat_before[c]),
            )
            for c in ranked[:TOP_ISSUES]
            if cat_now[c] or cat_before[c]
        ]

    sections = []
    for o in taxonomy.owners:
        if owner is not None and o.id != owner:
            continue
        mine = [c for c in taxonomy.leaf_ids if taxonomy.leaf_owner[c] == o.id]
        f = figures.get(o.id)
        mood = moods.get(o.id)
        overdue = sorted(
            (
                OverdueCase(case_id=cid, category=cat, status=status, age_days=age)
                for cid, cat, status, age in (f.overdue_cases if f else [])
            ),
            key=lambda x: -x.age_days,
        )
        sections.append(
            OwnerSection(
                owner=o.id,
                name=o.name,
                volume=own_now[o.id],
                previous_volume=own_before[o.id],
                change=_change(own_now[o.id], own_before[o.id]),
                top_issues=issues(mine),
                trend=Trend(
                    periods=periods,
                    series={s.key: list(s.points.values()) for s in cat_series if s.key in mine and s.total},
                ),
                negative_share=mood.negative_share if mood else None,
                positive_share=mood.positive_share if mood else None,
                open_cases=f.open if f else 0,
                overdue_cases=f.overdue if f else 0,
                resolved=f.resolved if f else 0,
                justified=f.justified if f else 0,
                loop_closed=f.loop_closed if f else 0,
                time_to_close_hours_median=f.time_to_close_hours_median if f else None,
                open_age_days_median=f.open_age_days_median if f else None,
                reopen_rate=f.reopen_rate if f else None,
                followups=f.followups if f else 0,
                confirmed_share=f.confirmed_share if f else None,
                closed_this_month=[c for own, c in closed_rows if own == o.id][:10],
                overdue=overdue[:10],
                alerts=[
                    AlertLine(day=a.day, scope=a.scope, key=a.key, observed=a.observed, expected=a.expected)
                    for a in alerts
                    if a.owner == o.id and a.day < end
                ],
            )
        )
    scoped = {s.owner for s in sections}
    return MonthlyReport(
        month=start.strftime("%Y-%m"),
        scope=owner or "leadership",
        taxonomy_version=taxonomy.version,
        generated_at=now,
        sla_days=sla_days,
        total_volume=sum(own_now[o] for o in scoped),
        previous_total_volume=sum(own_before[o] for o in scoped),
        owners=sections,
        top_issues=issues([c for c in taxonomy.leaf_ids if taxonomy.leaf_owner[c] in scoped]),
        trend=Trend(periods=periods, series={s.key: list(s.points.values()) for s in owner_series if s.key in scoped}),
    )


def _closed_cases(db: Database, start: date, end: date) -> list[tuple[str, ClosedCase]]:
    """(owner, case) of the cases closed in [start, end), newest first."""
    lo = datetime(start.year, start.month, start.day, tzinfo=UTC)
    hi = datetime(end.year, end.month, end.day, tzinfo=UTC)
    with db.session() as s:
        closed = s.scalars(
            select(CaseRow)
            .where(CaseRow.closed_at >= lo, CaseRow.closed_at < hi, CaseRow.status.in_(CLOSED))
            .order_by(CaseRow.closed_at.desc())
        ).all()
        return [
            (
                c.owner,
                ClosedCase(
                    case_id=c.id,
                    category=c.category,
                    status=c.status,
                    note=c.note or "",
                    loop_closed=c.loop_closed,
                    closed_at=c.closed_at or hi,
                ),
            )
            for c in closed
        ]


# -- HTML ----------------------------------------------------------------------------------------------

PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#be185d", "#4d7c0f", "#9a3412"]


def line_chart(trend: Trend, title: str, width: int = 640, height: int = 220) -> str:
    """An inline SVG line chart: one line per series, weeks on x."""
    left, right, top, bottom = 40, 150, 24, 28
    w, h = width - left - right, height - top - bottom
    n = max(1, len(trend.periods) - 1)
    peak = max((v for vals in trend.series.values() for v in vals), default=0) or 1
    parts = [
        f'<svg class="chart" role="img" aria-label="{html.escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{left}" y="14" class="t">{html.escape(title)}</text>',
        f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="#999"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" class="a">{peak}</text>',
        f'<text x="{left - 6}" y="{top + h}" text-anchor="end" class="a">0</text>',
    ]
    if trend.periods:
        parts.append(f'<text x="{left}" y="{height - 8}" class="a">{trend.periods[0]}</text>')
        parts.append(f'<text x="{left + w}" y="{height - 8}" text-anchor="end" class="a">{trend.periods[-1]}</text>')
    for i, (key, values) in enumerate(sorted(trend.series.items(), key=lambda kv: -sum(kv[1]))[: len(PALETTE)]):
        colour = PALETTE[i % len(PALETTE)]
        points = " ".join(f"{left + w * j / n:.1f},{top + h - h * v / peak:.1f}" for j, v in enumerate(values))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
        parts.append(
            f'<text x="{left + w + 8}" y="{top + 12 + 16 * i}" class="a" fill="{colour}">{html.escape(key)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(issues: list[Issue], title: str, width: int = 640) -> str:
    """Horizontal bars: this month (solid) against last month (outline)."""
    row, left = 26, 230
    height = 30 + row * max(1, len(issues))
    peak = max((max(i.count, i.previous) for i in issues), default=0) or 1
    w = width - left - 60
    parts = [
        f'<svg class="chart" role="img" aria-label="{html.escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="0" y="14" class="t">{html.escape(title)}</text>',
    ]
    for k, issue in enumerate(issues):
        y = 24 + row * k
        parts.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end" class="a">{html.escape(issue.name)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 2}" width="{w * issue.count / peak:.1f}" height="16" fill="#2563eb"/>')
        parts.append(
            f'<rect x="{left}" y="{y + 2}" width="{w * issue.previous / peak:.1f}" height="16" fill="none" '
            'stroke="#111" stroke-dasharray="3 2"/>'
        )
        parts.append(f'<text x="{left + w * issue.count / peak + 6:.1f}" y="{y + 14}" class="a">{issue.count}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def _signed(x: float | None) -> str:
    return "new" if x is None else f"{100 * x:+.0f}%"


def _num(x: float | None, unit: str = "") -> str:
    return "—" if x is None else f"{x:g}{unit}"


CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;
 color:#111;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555}.kpis{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.kpi{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:120px}.kpi b{display:block;font-size:20px}
table{border-collapse:collapse;width:100%;margin:8px 0}
td,th{border-bottom:1px solid #eee;padding:4px 6px;text-align:left}
th{background:#f6f6f6}.num{text-align:right}.bad{color:#b91c1c}.good{color:#047857}
.chart .t{font-weight:600;font-size:13px}.chart .a{font-size:11px}.charts{display:flex;flex-wrap:wrap;gap:16px}
nav a{margin-right:10px}
"""


def render_html(report: MonthlyReport, nav: str = "") -> str:
    """The report as one self-contained HTML page."""
    e = html.escape
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>Accountability report {e(report.month)} — {e(report.scope)}</title><style>{CSS}</style></head><body>",
        nav,
        f"<h1>Accountability report · {e(report.month)} · {e(report.scope)}</h1>",
        f'<div class="meta">taxonomy {e(report.taxonomy_version)} · generated {report.generated_at:%Y-%m-%d %H:%M} UTC'
        f" · cases overdue after {report.sla_days:g} days</div>",
        '<div class="kpis">',
        f'<div class="kpi">feedback<b>{report.total_volume}</b>'
        f"{_signed(_change(report.total_volume, report.previous_total_volume))} vs last month</div>",
        f'<div class="kpi">open cases<b>{sum(s.open_cases for s in report.owners)}</b></div>',
        f'<div class="kpi">overdue<b class="{"bad" if any(s.overdue_cases for s in report.owners) else ""}">'
        f"{sum(s.overdue_cases for s in report.owners)}</b></div>",
        f'<div class="kpi">resolved / justified<b>{sum(s.resolved for s in report.owners)} / '
        f"{sum(s.justified for s in report.owners)}</b>this month</div>",
        "</div>",
        '<div class="charts">',
        line_chart(report.trend, "Weekly feedback per owner (6 months)"),
        bar_chart(report.top_issues, "Top issues (dashed: last month)"),
        "</div>",
        "<h2>Owners</h2><table><tr><th>owner</th><th class=num>feedback</th><th class=num>change</th>"
        "<th class=num>negative</th><th class=num>open</th><th class=num>overdue</th><th class=num>resolved</th>"
        "<th class=num>justified</th><th class=num>median close (h)</th><th class=num>reopen rate</th>"
        "<th class=num>customer-confirmed</th><th class=num>alerts</th></tr>",
    ]
    for s in report.owners:
        out.append(
            f"<tr><td>{e(s.name)} <span class=meta>({e(s.owner)})</span></td><td class=num>{s.volume}</td>"
            f"<td class=num>{_signed(s.change)}</td><td class=num>{_pct(s.negative_share)}</td>"
            f"<td class=num>{s.open_cases}</td><td class=num{' bad' if s.overdue_cases else ''}>{s.overdue_cases}</td>"
            f"<td class=num>{s.resolved}</td><td class=num>{s.justified}</td>"
            f"<td class=num>{_num(s.time_to_close_hours_median)}</td><td class=num>{_pct(s.reopen_rate)}</td>"
            f"<td class=num>{_pct(s.confirmed_share)} <span class=meta>of {s.followups}</span></td>"
            f"<td class=num>{len(s.alerts)}</td></tr>"
        )
    out.append("</table>")
    for s in report.owners:
        out.append(f'<h2 id="owner-{e(s.owner)}">{e(s.name)}</h2><div class="charts">')
        out.append(line_chart(s.trend, f"Weekly feedback by category — {s.name}"))
        out.append(bar_chart(s.top_issues, f"Top issues — {s.name}"))
        out.append("</div>")
        if s.alerts:
            out.append("<b>Spike alerts</b><ul>")
            out += [
                f"<li>{a.day}: {e(a.key)} ({a.scope}) — {a.observed} items, expected {a.expected:.1f}</li>"
                for a in s.alerts
            ]
            out.append("</ul>")
        out.append("<b>Closed this month</b>")
        if s.closed_this_month:
            out.append(
                "<table><tr><th>case</th><th>category</th><th>outcome</th><th>note</th><th>customer told</th></tr>"
            )
            out += [
                f"<tr><td>{c.case_id}</td><td>{e(c.category)}</td><td>{c.status}</td><td>{e(c.note)}</td>"
                f"<td>{'yes' if c.loop_closed else 'no'}</td></tr>"
                for c in s.closed_this_month
            ]
            out.append("</table>")
        else:
            out.append("<p class=meta>nothing closed this month</p>")
        out.append("<b>Overdue</b>")
        if s.overdue:
            out.append("<table><tr><th>case</th><th>category</th><th>status</th><th class=num>age (days)</th></tr>")
            out += [
                f"<tr><td>{c.case_id}</td><td>{e(c.category)}</td><td>{c.status}</td>"
                f"<td class='num bad'>{c.age_days:g}</td></tr>"
                for c in s.overdue
            ]
            out.append("</table>")
        else:
            out.append("<p class=meta>nothing overdue</p>")
    out.append("</body></html>")
    return "\n".join(out)
