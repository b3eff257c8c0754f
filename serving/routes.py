"""HTTP handlers: thin, typed, delegating to the classifier."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Discriminator, Tag, TypeAdapter, ValidationError

from models.classifier import Classifier
from serving.errors import PayloadTooLarge, describe_validation
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
)
from switchboard.errors import BundleError, InputError
from switchboard.settings import Settings
from switchboard.text import CleanText, clean_text


def get_classifier(request: Request) -> Classifier:
    classifier: Classifier | None = getattr(request.app.state, "classifier", None)
    if classifier is None:
        raise BundleError("no model is loaded")
    return classifier


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


ClassifierDep = Annotated[Classifier, Depends(get_classifier)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def _request_kind(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "items" in value else "single"


ClassifyRequest = Annotated[
    Annotated[ClassifyItem, Tag("single")] | Annotated[ClassifyBatch, Tag("batch")],
    Discriminator(_request_kind),
]
_item_adapter = TypeAdapter(ClassifyItem)

router = APIRouter()
_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorBody, "description": "Too many items in the batch."},
    422: {"model": ErrorBody, "description": "Invalid request or unusable text."},
    503: {"model": ErrorBody, "description": "No model loaded."},
}


@router.get("/healthz", response_model=Health, tags=["ops"])
def healthz() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: _ERRORS[503]}, tags=["ops"])
def readyz(classifier: ClassifierDep) -> Readiness:
    """Readiness: a checked model bundle is loaded."""
    meta = classifier.bundle.metadata
    return Readiness(
        status="ready", model=classifier.info, labels=len(classifier.labels), quantization=meta.quantization
    )


@router.post(
    "/v1/classify",
    response_model=ClassifyResponse | BatchClassifyResponse,
    responses=_ERRORS,
    tags=["classify"],
)
def classify(
    body: ClassifyRequest, classifier: ClassifierDep, settings: SettingsDep
) -> ClassifyResponse | BatchClassifyResponse:
    """Classify one item (`{"text": ...}`) or a batch (`{"items": [{"text": ...}, ...]}`).

    Each result has the category, the accountable owner (its confidence is the summed probability
    of the owner's categories), the top-3 alternatives and whether the text was truncated.
    In a batch, an invalid item is reported in `errors` and the others are still classified.
    """
    if isinstance(body, ClassifyItem):
        cleaned = clean_text(body.text, settings.max_text_chars)
        pred = classifier.predict_cleaned([cleaned])[0]
        return ClassifyResponse(id=body.id, model=classifier.info, **pred.model_dump())
    if len(body.items) > settings.max_batch_items:
        raise PayloadTooLarge(f"batch has {len(body.items)} items; the limit is {settings.max_batch_items}")
    errors: list[ItemError] = []
    accepted: list[tuple[int, ClassifyItem, CleanText]] = []
    for index, raw in enumerate(body.items):
        ref = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        try:
            item = _item_adapter.validate_python(raw)
            accepted.append((index, item, clean_text(item.text, settings.max_text_chars)))
        except ValidationError as exc:
            errors.append(ItemError(index=index, id=ref, message=describe_validation(exc.errors())))
        except InputError as exc:
            errors.append(ItemError(index=index, id=ref, message=f"text: {exc}"))
    predictions = classifier.predict_cleaned([c for _, _, c in accepted]) if accepted else []
    results = [
        BatchResultItem(index=index, id=item.id, **pred.model_dump())
        for (index, item, _), pred in zip(accepted, predictions, strict=True)
    ]
    return BatchClassifyResponse(model=classifier.info, results=results, errors=errors)
