"""HTTP handlers: thin, typed, delegating to the micro-batcher and the domain."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from pydantic import Discriminator, Tag, TypeAdapter, ValidationError

from serving.batcher import MicroBatcher
from serving.errors import PayloadTooLarge, describe_request_errors
from serving.metrics import ServingMetrics
from serving.reloader import ModelReloader
from serving.schemas import (
    BatchClassifyResponse,
    BatchResultItem,
    ClassifyBatch,
    ClassifyItem,
    ClassifyResponse,
    ErrorBody,
    Health,
    ItemError,
    Readiness,
    ReloadRequest,
)
from serving.security import CanAdmin, CanClassify
from switchboard.errors import BundleError, InputError
from switchboard.schemas import ModelInfo
from switchboard.settings import Settings
from switchboard.storage import Database
from switchboard.text import CleanText, clean_text


def get_batcher(request: Request) -> MicroBatcher:
    batcher: MicroBatcher | None = getattr(request.app.state, "batcher", None)
    if batcher is None:
        raise BundleError("no model is loaded")
    return batcher


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_metrics(request: Request) -> ServingMetrics:
    metrics: ServingMetrics = request.app.state.metrics
    return metrics


def get_database(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]
RowId = Annotated[int, Path(ge=1, le=2**31 - 1, description="A stored row's id.")]
DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[ServingMetrics, Depends(get_metrics)]


def _request_kind(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "items" in value else "single"


ClassifyRequest = Annotated[
    Annotated[ClassifyItem, Tag("single")] | Annotated[ClassifyBatch, Tag("batch")],
    Discriminator(_request_kind),
]
_item_adapter = TypeAdapter(ClassifyItem)

router = APIRouter()
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or invalid API key (when keys are required)."},
    403: {"model": ErrorBody, "description": "The key's role does not allow this."},
    413: {"model": ErrorBody, "description": "Too many items, or the request body is too large."},
    422: {"model": ErrorBody, "description": "Invalid request or unusable text."},
    503: {"model": ErrorBody, "description": "No model loaded, or the queue is full (see Retry-After)."},
}


@router.get("/healthz", response_model=Health, tags=["ops"])
def healthz() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: _ERRORS[503]}, tags=["ops"])
def readyz(batcher: BatcherDep) -> Readiness:
    """Readiness: a checked model bundle is loaded."""
    classifier = batcher.classifier
    return Readiness(
        status="ready",
        model=classifier.info,
        labels=len(classifier.labels),
        quantization=classifier.bundle.metadata.quantization,
    )


@router.get("/metrics", include_in_schema=False)
def metrics(metrics: MetricsDep, batcher: BatcherDep) -> Response:
    """Prometheus metrics."""
    metrics.queue_depth.set(batcher.queued_items)
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.post(
    "/v1/classify",
    response_model=ClassifyResponse | BatchClassifyResponse,
    responses=_ERRORS,
    tags=["classify"],
)
async def classify(
    body: ClassifyRequest, batcher: BatcherDep, settings: SettingsDep, metrics: MetricsDep, _key: CanClassify
) -> Response:
    """Classify one item (`{"text": ...}`) or a batch (`{"items": [{"text": ...}, ...]}`).

    Each result has the category, the accountable owner (its confidence is the summed probability
    of the owner's categories), the top-3 alternatives and whether the text was truncated.
    In a batch, an invalid item is reported in `errors` and the others are still classified.
    Concurrent requests are scored together (micro-batching); a full queue answers 503 with Retry-After.
    """
    if isinstance(body, ClassifyItem):
        cleaned = clean_text(body.text, settings.max_text_chars)
        predictions, info = await batcher.submit([cleaned])
        metrics.observe_predictions(predictions)
        return _json(ClassifyResponse.model_construct(id=body.id, model=info, **dict(predictions[0])))
    accepted, errors = validate_items(body.items, settings)
    metrics.item_errors.inc(len(errors))
    predictions, info = await batcher.submit([c for _, _, c in accepted])
    metrics.observe_predictions(predictions)
    results = [
        BatchResultItem.model_construct(index=index, id=item.id, **dict(pred))
        for (index, item, _), pred in zip(accepted, predictions, strict=True)
    ]
    return _json(BatchClassifyResponse.model_construct(model=info, results=results, errors=errors))


def _json(payload: ClassifyResponse | BatchClassifyResponse) -> Response:
    """Serialise once: the parts are validated domain objects, so FastAPI's second validation of the
    response model (costly for large batches) is skipped; ``response_model`` still documents the shape."""
    return Response(payload.model_dump_json(), media_type="application/json")


def validate_items(
    items: list[Any], settings: Settings
) -> tuple[list[tuple[int, ClassifyItem, CleanText]], list[ItemError]]:
    """Validate and clean each batch item on its own: good ones are returned, bad ones become item errors."""
    if len(items) > settings.max_batch_items:
        raise PayloadTooLarge(f"batch has {len(items)} items; the limit is {settings.max_batch_items}")
    errors: list[ItemError] = []
    accepted: list[tuple[int, ClassifyItem, CleanText]] = []
    for index, raw in enumerate(items):
        ref = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        try:
            item = _item_adapter.validate_python(raw)
            accepted.append((index, item, clean_text(item.text, settings.max_text_chars)))
        except ValidationError as exc:
            errors.append(ItemError(index=index, id=ref, message=describe_request_errors(exc.errors())))
        except InputError as exc:
            errors.append(ItemError(index=index, id=ref, message=f"text: {exc}"))
    return accepted, errors


def get_reloader(request: Request) -> ModelReloader:
    reloader: ModelReloader | None = getattr(request.app.state, "reloader", None)
    if reloader is None:
        raise BundleError("no model is loaded")
    return reloader


@router.post("/v1/admin/reload", response_model=ModelInfo, responses=_ERRORS, tags=["admin"])
async def reload_model(
    body: ReloadRequest,
    reloader: Annotated[ModelReloader, Depends(get_reloader)],
    settings: SettingsDep,
    _key: CanAdmin,
) -> ModelInfo:
    """Load a bundle (default: the released champion when following releases, else the configured bundle),
    check it, and swap it in atomically.

    Requests already being scored finish on the old model; a bundle that fails its checks is refused with
    422 and the current model keeps serving.
    """
    path = body.bundle_path or (reloader.released_path() if settings.follow_release else None) or settings.bundle_path
    if path is None:
        raise InputError("no bundle_path given and none configured")
    try:
        return await reloader.reload(path)
    except BundleError as exc:
        raise InputError(f"bundle refused, current model kept: {exc}") from exc
