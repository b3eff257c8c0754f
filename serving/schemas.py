"""Request and response schemas of the HTTP API (kept apart from domain and storage schemas)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from switchboard.deferral import Routing
from switchboard.schemas import Alternative, ModelInfo, ScoredCategory, ScoredOwner


class ClassifyItem(BaseModel):
    """One piece of feedback to classify."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    text: str = Field(description="The feedback text. Over-long text is truncated and flagged.")
    id: str | None = Field(default=None, max_length=256, description="Your reference, echoed back.")
    channel: str | None = Field(default=None, max_length=64, description="survey, review, social, chat, email…")


_ITEM_ARRAY_SCHEMA = {"type": "array", "items": ClassifyItem.model_json_schema(), "minItems": 1}


class ClassifyBatch(BaseModel):
    """A batch: each item is validated on its own, so one bad item does not fail the others."""

    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[Any], WithJsonSchema(_ITEM_ARRAY_SCHEMA)] = Field(min_length=1)


class ClassificationResult(BaseModel):
    """The category and the accountable owner of one feedback item."""

    id: str | None = None
    category: ScoredCategory
    owner: ScoredOwner
    alternatives: list[Alternative] = Field(description="Top-3 categories with the owner each routes to.")
    truncated: bool
    routing: Routing = Field(description="Per field: applied automatically, or sent to a human (deferral policy).")


class ClassifyResponse(ClassificationResult):
    """Answer to a single-item request."""

    model_config = ConfigDict(protected_namespaces=())

    model: ModelInfo


class ItemError(BaseModel):
    index: int
    id: str | None = None
    message: str


class BatchResultItem(ClassificationResult):
    index: int


class BatchClassifyResponse(BaseModel):
    """Answer to a batch: results for the good items, one error per bad item."""

    model_config = ConfigDict(protected_namespaces=())

    model: ModelInfo
    results: list[BatchResultItem]
    errors: list[ItemError]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    status: str
    model: ModelInfo
    labels: int
    quantization: str


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bundle_path: Path | None = Field(default=None, description="Bundle folder on the server; default: the current.")


class ErrorBody(BaseModel):
    detail: str | list[dict[str, Any]]
