"""Accountability HTTP API: thin handlers over cases, outbox, trends, alerts and the report
(domain errors map to HTTP in serving/errors.py)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from accountability import alerts, cases, outbox, report, trends
from accountability.schemas import (
    Alert,
    Case,
    CaseList,
    FollowupAnswer,
    FollowupResult,
    OutboxEvent,
    ScanResult,
    Status,
    Transition,
    TransitionResult,
    Trends,
    TrendSeries,
    Webhook,
    WebhookConfig,
)
from serving.routes import BatcherDep, DatabaseDep, RowId, SettingsDep
from serving.schemas import ErrorBody
from serving.security import CanAdmin, CanWorkCases
from switchboard.errors import NotFoundError

router = APIRouter()
_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorBody} for s in (401, 403, 404, 409, 422, 503)}


def _case(view: cases.CaseView) -> Case:
    return Case(**asdict(view))


@router.get("/v1/cases", response_model=CaseList, responses=_ERRORS, tags=["cases"])
def list_cases(
    batcher: BatcherDep,
    db: DatabaseDep,
    _key: CanWorkCases,
    owner: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[list[Status] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    after_id: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> CaseList:
    """Cases in id order (page with `after_id`), optionally one owner's and some statuses."""
    found = cases.list_cases(db, batcher.classifier.bundle.taxonomy, owner, status or (), limit, after_id)
    return CaseList(cases=[_case(c) for c in found], next_after_id=found[-1].id if len(found) == limit else None)


@router.get("/v1/cases/{case_id}", response_model=Case, responses=_ERRORS, tags=["cases"])
def get_case(case_id: RowId, db: DatabaseDep, _key: CanWorkCases) -> Case:
    return _case(cases.get_case(db, case_id))


@router.post("/v1/cases/{case_id}/transition", response_model=TransitionResult, responses=_ERRORS, tags=["cases"])
def transition_case(case_id: RowId, body: Transition, db: DatabaseDep, _key: CanWorkCases) -> TransitionResult:
    """Move a case: open → in_progress → resolved | justified (a note is required) → reopened → ...

    An illegal move is refused with 409 and the allowed ones; repeating the current status and note is a no-op.
    """
    view, changed = cases.transition(db, case_id, body.status, body.actor, body.note, body.loop_closed)
    return TransitionResult(case=_case(view), changed=changed)


@router.post("/v1/cases/{case_id}/followup", response_model=FollowupResult, responses=_ERRORS, tags=["cases"])
def followup(case_id: RowId, body: FollowupAnswer, db: DatabaseDep, _key: CanWorkCases) -> FollowupResult:
    """Record the customer's follow-up answer on a closed case ("no" reopens it). The same answer twice is
    accepted once; a different second answer is refused with 409."""
    resolved, recorded = cases.record_followup(db, case_id, body.resolved, body.comment)
    return FollowupResult(case_id=case_id, resolved=resolved, recorded=recorded)


@router.put("/v1/owners/{owner}/webhook", response_model=Webhook, responses=_ERRORS, tags=["owners"])
def set_webhook(owner: str, body: WebhookConfig, batcher: BatcherDep, db: DatabaseDep, _key: CanAdmin) -> Webhook:
    """Where the owner's notifications go and the secret that signs them (the secret is never returned)."""
    hook = outbox.set_webhook(db, batcher.classifier.bundle.taxonomy, owner, body.url, body.secret, body.active)
    return Webhook(**asdict(hook))


@router.get("/v1/owners/{owner}/webhook", response_model=Webhook, responses=_ERRORS, tags=["owners"])
def get_webhook(owner: str, db: DatabaseDep, _key: CanAdmin) -> Webhook:
    return Webhook(**asdict(outbox.get_webhook(db, owner)))


@router.delete("/v1/owners/{owner}/webhook", status_code=204, responses=_ERRORS, tags=["owners"])
def delete_webhook(owner: str, db: DatabaseDep, _key: CanAdmin) -> Response:
    outbox.delete_webhook(db, owner)
    return Response(status_code=204)


@router.get("/v1/outbox", response_model=list[OutboxEvent], responses=_ERRORS, tags=["owners"])
def list_outbox(
    db: DatabaseDep,
    _key: CanAdmin,
    status: Annotated[str | None, Query(max_length=16)] = None,
    owner: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[OutboxEvent]:
    """Notifications, newest first: pending, delivered or dead (after every retry failed)."""
    return [OutboxEvent(**asdict(x)) for x in outbox.list_outbox(db, status, owner, limit)]


@router.post("/v1/outbox/{outbox_id}/retry", status_code=204, responses=_ERRORS, tags=["owners"])
def retry_outbox(outbox_id: RowId, db: DatabaseDep, _key: CanAdmin) -> Response:
    """Give a dead notification a fresh set of attempts."""
    outbox.retry_dead(db, outbox_id)
    return Response(status_code=204)


@router.get("/v1/trends", response_model=Trends, responses=_ERRORS, tags=["reports"])
def get_trends(
    batcher: BatcherDep,
    db: DatabaseDep,
    _key: CanWorkCases,
    since: date,
    until: date,
    by: Annotated[str, Query(pattern="^(category|owner)$")] = "owner",
    period: Annotated[str, Query(pattern="^(day|week|month)$")] = "week",
) -> Trends:
    """Feedback volume per category or owner per day, week or month in [since, until), under the taxonomy in
    force (backfilled history included)."""
    taxonomy = batcher.classifier.bundle.taxonomy
    periods, series = trends.volumes(db, taxonomy, by, period, since, until)  # type: ignore[arg-type]
    return Trends(
        taxonomy_version=taxonomy.version,
        by=by,  # type: ignore[arg-type]
        period=period,  # type: ignore[arg-type]
        periods=periods,
        series=[TrendSeries(key=s.key, total=s.total, counts=list(s.points.values())) for s in series],
    )


def _alert(s: alerts.Spike) -> Alert:
    return Alert(**asdict(s))


@router.get("/v1/alerts", response_model=list[Alert], responses=_ERRORS, tags=["reports"])
def list_alerts(
    db: DatabaseDep,
    _key: CanWorkCases,
    since: date | None = None,
    owner: Annotated[str | None, Query(max_length=64)] = None,
) -> list[Alert]:
    return [_alert(s) for s in alerts.list_alerts(db, since, owner)]


@router.post("/v1/alerts/scan", response_model=ScanResult, responses=_ERRORS, tags=["reports"])
async def scan_alerts(
    batcher: BatcherDep,
    db: DatabaseDep,
    settings: SettingsDep,
    _key: CanAdmin,
    day: date | None = None,
    days: Annotated[int, Query(ge=1, le=92)] = 1,
) -> ScanResult:
    """Scan `days` days ending at `day` (default today) for spikes; new ones are stored and sent to owners."""
    end = day or datetime.now(UTC).date()
    window = alerts.days_ending(end, days)
    policy = alerts.SpikePolicy.from_settings(settings)
    found = await asyncio.to_thread(alerts.scan, db, batcher.classifier.bundle.taxonomy, window, policy)
    return ScanResult(days=window, new_alerts=[_alert(s) for s in found])


@router.get("/v1/reports/monthly", response_model=report.MonthlyReport, responses=_ERRORS, tags=["reports"])
async def monthly_report(
    batcher: BatcherDep,
    db: DatabaseDep,
    settings: SettingsDep,
    _key: CanWorkCases,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
    owner: Annotated[str | None, Query(max_length=64)] = None,
) -> report.MonthlyReport:
    """The monthly accountability report (JSON), for leadership or one owner."""
    return await asyncio.to_thread(
        report.monthly_report,
        db,
        batcher.classifier.bundle.taxonomy,
        month or f"{datetime.now(UTC):%Y-%m}",
        owner,
        settings.case_sla_days,
    )


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
async def dashboard(
    batcher: BatcherDep,
    db: DatabaseDep,
    settings: SettingsDep,
    _key: CanWorkCases,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
    owner: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """The report as a page, with links to each owner's view and the neighbouring months."""
    taxonomy = batcher.classifier.bundle.taxonomy
    month = month or f"{datetime.now(UTC):%Y-%m}"
    if owner is not None and owner not in taxonomy.owner_by_id:
        raise NotFoundError(f"unknown owner '{owner}' in taxonomy {taxonomy.version}")
    built = await asyncio.to_thread(report.monthly_report, db, taxonomy, month, owner, settings.case_sla_days)
    start = report.parse_month(month)
    prev = (start - timedelta(days=1)).strftime("%Y-%m")
    nxt = trends.next_period(start, "month").strftime("%Y-%m")
    suffix = f"&owner={owner}" if owner else ""
    links = [
        f'<a href="/dashboard?month={prev}{suffix}">← {prev}</a>',
        f'<a href="/dashboard?month={nxt}{suffix}">{nxt} →</a>',
    ]
    links.append(f'<a href="/dashboard?month={month}">leadership</a>')
    links += [f'<a href="/dashboard?month={month}&owner={o.id}">{o.name}</a>' for o in taxonomy.owners]
    links.append(f'<a href="/v1/reports/monthly?month={month}{suffix}">JSON</a>')
    return HTMLResponse(report.render_html(built, nav="<nav>" + " ".join(links) + "</nav>"))
