"""Labeling HTTP API: thin handlers over labeling.queue (errors map to HTTP in serving/errors.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from labeling import queue, refresh
from labeling.schemas import (
    AgreementFigure,
    Answer,
    AnswerResult,
    CategoryChoice,
    IngestResponse,
    IngestResult,
    QueueStats,
    Task,
    TaxonomyView,
)
from serving.routes import BatcherDep, DatabaseDep, MetricsDep, RowId, SettingsDep, validate_items
from serving.schemas import ClassifyBatch, ErrorBody
from serving.security import CanClassify, CanReview

PAGE = Path(__file__).resolve().parent / "static" / "review.html"
router = APIRouter()
_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorBody} for s in (401, 403, 404, 409, 413, 422, 503)}


@router.post("/v1/feedback", response_model=IngestResponse, responses=_ERRORS, tags=["feedback"])
async def ingest_feedback(
    body: ClassifyBatch,
    batcher: BatcherDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    db: DatabaseDep,
    request: Request,
    _key: CanClassify,
) -> IngestResponse:
    """Classify and store feedback; items the deferral policy sends to review (and a QA sample of the
    auto-routed ones) enter the review queue. Bad items are reported one by one; good ones are kept."""
    accepted, errors = validate_items(body.items, settings)
    predictions, info = await batcher.submit([c for _, _, c in accepted])
    metrics.observe_predictions(predictions)
    stored = await asyncio.to_thread(
        queue.ingest,
        db,
        info,
        [(c, item.id, item.channel) for _, item, c in accepted],
        predictions,
        request.app.state.queue_policy,
    )
    results = [
        IngestResult(
            index=index,
            id=item.id,
            feedback_id=st.feedback_id,
            category=p.category.id,
            owner=p.owner.id,
            routing=p.routing,
            review_task_id=st.task_id,
            review_reason=st.reason,
        )
        for (index, item, _), p, st in zip(accepted, predictions, stored, strict=True)
    ]
    return IngestResponse(model=info, results=results, errors=[e.model_dump() for e in errors])


@router.get(
    "/v1/review/next",
    response_model=Task,
    responses={204: {"description": "The queue is empty."}, **_ERRORS},
    tags=["review"],
)
def next_task(
    annotator: Annotated[str, Query(min_length=1, max_length=128)],
    batcher: BatcherDep,
    db: DatabaseDep,
    _key: CanReview,
) -> Any:
    """Lease the most valuable open task for this annotator (204 when there is none)."""
    task = queue.next_task(db, annotator, batcher.classifier.bundle.taxonomy)
    if task is None:
        return Response(status_code=204)
    return Task(**task.__dict__)


@router.post("/v1/review/tasks/{task_id}", response_model=AnswerResult, responses=_ERRORS, tags=["review"])
def answer_task(task_id: RowId, body: Answer, batcher: BatcherDep, db: DatabaseDep, _key: CanReview) -> AnswerResult:
    """Label a task (optionally changing the owner), mark it "none of these", or skip it."""
    task = queue.submit(
        db,
        task_id,
        body.annotator,
        body.action,
        batcher.classifier.bundle.taxonomy,
        category=body.category,
        owner=body.owner,
    )
    return AnswerResult(task_id=task.id, status=task.status)


@router.get("/v1/review/stats", response_model=QueueStats, responses=_ERRORS, tags=["review"])
def review_stats(db: DatabaseDep, _key: CanReview) -> QueueStats:
    counts = queue.stats(db)
    return QueueStats(open=counts["open"], done=counts["done"], detail=counts)


@router.get("/v1/review/agreement", response_model=AgreementFigure, responses=_ERRORS, tags=["review"])
def review_agreement(db: DatabaseDep, _key: CanReview) -> AgreementFigure:
    """Inter-annotator agreement (Cohen's kappa) on the tasks two annotators answered."""
    a = queue.agreement(db)
    return AgreementFigure(items=a.items, observed=a.observed, kappa=a.kappa)


@router.get("/v1/review/taxonomy", response_model=TaxonomyView, responses=_ERRORS, tags=["review"])
def review_taxonomy(
    batcher: BatcherDep,
    db: DatabaseDep,
    _key: CanReview,
    version: Annotated[str | None, Query(max_length=64, description="A stored version (relabel tasks).")] = None,
) -> TaxonomyView:
    """The categories and owners to label with: the served taxonomy, or a stored version (relabel tasks)."""
    tax = batcher.classifier.bundle.taxonomy
    if version is not None and version != tax.version:
        tax = refresh.load_taxonomy(db, version)
    return TaxonomyView(
        version=tax.version,
        categories=[CategoryChoice(id=c, name=tax.category_by_id[c].name, owner=o) for c, o in tax.leaf_owner.items()],
        owners=[{"id": o.id, "name": o.name} for o in tax.owners],
    )


@router.get("/review", response_class=HTMLResponse, include_in_schema=False)
def review_page() -> HTMLResponse:
    """The annotator page (static; it talks to the review API)."""
    return HTMLResponse(PAGE.read_text(encoding="utf-8"))
