"""Domain schemas shared by serving, evaluation and the CLI (API and storage schemas live apart)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from switchboard.deferral import Routing


class ScoredCategory(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    confidence: float = Field(ge=0.0, le=1.0)


class ScoredOwner(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    confidence: float = Field(ge=0.0, le=1.0, description="Sum of the probabilities of its categories.")


class Alternative(BaseModel):
    """One of the top-k categories, with the owner it routes to."""

    model_config = ConfigDict(frozen=True)

    category: str
    owner: str
    confidence: float = Field(ge=0.0, le=1.0)


class Prediction(BaseModel):
    """What the model says about one feedback item."""

    model_config = ConfigDict(frozen=True)

    category: ScoredCategory
    owner: ScoredOwner
    alternatives: list[Alternative]
    truncated: bool = Field(description="True when the text was cut to the character or token limit.")
    routing: Routing = Field(description="Auto-applied or sent to review, per field, by the bundle's policy.")


class ModelInfo(BaseModel):
    """Which model and taxonomy produced a prediction."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    name: str
    version: str
    taxonomy_version: str
