"""Request and response schemas of the accountability API (storage has its own, in switchboard.storage.tables)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["open", "in_progress", "resolved", "justified", "reopened"]


class Case(BaseModel):
    id: int
    feedback_id: str
    text: str
    channel: str | None
    owner: str
    category: str
    taxonomy_version: str
    status: Status
    note: str | None = Field(description="Resolution or justification (required to close).")
    loop_closed: bool = Field(description="The customer was told the outcome.")
    reopen_count: int
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    followup: bool | None = Field(description="The customer's follow-up answer: was the issue resolved?")


class CaseList(BaseModel):
    cases: list[Case]
    next_after_id: int | None = Field(description="Pass as after_id for the next page; null at the end.")


class Transition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status
    actor: str = Field(min_length=1, max_length=128, description="Who makes the change.")
    note: str | None = Field(default=None, max_length=5000, description="Required for resolved / justified.")
    loop_closed: bool | None = Field(default=None, description="On closing: was the customer told?")


class TransitionResult(BaseModel):
    case: Case
    changed: bool = Field(description="False when the case already had this status and note (a retry).")


class FollowupAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolved: bool = Field(description='The customer\'s answer to "was your issue resolved?"')
    comment: str | None = Field(default=None, max_length=5000)


class FollowupResult(BaseModel):
    case_id: int
    resolved: bool
    recorded: bool = Field(description="False when the same answer was already recorded.")


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2048, description="http(s) URL that receives POSTed events.")
    secret: str = Field(min_length=16, max_length=256, description="Signs each payload (HMAC-SHA256).")
    active: bool = True


class Webhook(BaseModel):
    owner: str
    url: str
    active: bool
    updated_at: datetime


class OutboxEvent(BaseModel):
    id: int
    event_id: str
    owner: str
    event_type: str
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class TrendSeries(BaseModel):
    key: str
    total: int
    counts: list[int]


class Trends(BaseModel):
    taxonomy_version: str
    by: Literal["category", "owner"]
    period: Literal["day", "week", "month"]
    periods: list[str]
    series: list[TrendSeries]


class Alert(BaseModel):
    scope: Literal["category", "owner"]
    key: str
    owner: str
    day: date
    observed: int
    expected: float
    p_value: float


class ScanResult(BaseModel):
    days: list[date]
    new_alerts: list[Alert]
