"""Request/response schemas of the labeling API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from switchboard.deferral import Routing
from switchboard.schemas import ModelInfo


class IngestResult(BaseModel):
    index: int
    id: str | None = None
    feedback_id: str
    category: str
    owner: str
    routing: Routing
    review_task_id: int | None
    review_reason: str | None


class IngestResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model: ModelInfo
    results: list[IngestResult]
    errors: list[dict[str, Any]]


class Task(BaseModel):
    id: int
    feedback_id: str
    text: str
    channel: str | None
    reason: str
    priority: float
    taxonomy_version: str
    labels_required: int
    suggestions: list[dict[str, Any]] = Field(description="The model's top categories with owners.")
    predicted_owner: str | None


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    annotator: str = Field(min_length=1, max_length=128)
    action: Literal["label", "none_of_these", "skip"]
    category: str | None = None
    owner: str | None = Field(default=None, description="Change the owner; default: the category's owner.")


class AnswerResult(BaseModel):
    task_id: int
    status: str


class QueueStats(BaseModel):
    open: int
    done: int
    detail: dict[str, int]


class AgreementFigure(BaseModel):
    items: int = Field(description="Tasks answered by two annotators.")
    observed: float
    kappa: float | None = Field(description="Cohen's kappa; null when it is undefined.")


class CategoryChoice(BaseModel):
    id: str
    name: str
    owner: str


class TaxonomyView(BaseModel):
    version: str
    categories: list[CategoryChoice]
    owners: list[dict[str, str]]
