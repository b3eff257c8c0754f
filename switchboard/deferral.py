"""The deferral policy: when a prediction is applied automatically and when a human reviews it.

Per field (category, owner): auto-apply when the top probability reaches ``threshold`` AND leads the
runner-up by at least ``min_margin`` (near-ties go to a human); otherwise the prediction is only a
suggestion and the item is sent to review. Thresholds are picked by a sweep on held-out data
(evaluation/thresholds.py) and stored in the model bundle.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Decision = Literal["auto", "review"]


class FieldPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(default=0.9, ge=0.0, le=1.0)
    min_margin: float = Field(default=0.1, ge=0.0, le=1.0)

    def decide(self, top: float, runner_up: float) -> Decision:
        return "auto" if top >= self.threshold and top - runner_up >= self.min_margin else "review"


class DeferralPolicy(BaseModel):
    """Thresholds for both fields, plus the accuracy targets they were chosen for (when swept)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category: FieldPolicy = FieldPolicy()
    owner: FieldPolicy = FieldPolicy()
    chosen_for: dict[str, float] = Field(default_factory=dict, description="target accuracy per field, if swept")


class Routing(BaseModel):
    """What happens to one prediction: applied automatically, or sent to a human."""

    model_config = ConfigDict(frozen=True)

    category: Decision
    owner: Decision
    auto_routed: bool = Field(description="True when the owner was applied without review.")
    reasons: list[str] = Field(default_factory=list, description="Why a field went to review.")


def route(policy: DeferralPolicy, category_top2: tuple[float, float], owner_top2: tuple[float, float]) -> Routing:
    reasons = []
    decisions: dict[str, Decision] = {}
    for name, field_policy, (top, second) in (
        ("category", policy.category, category_top2),
        ("owner", policy.owner, owner_top2),
    ):
        decisions[name] = field_policy.decide(top, second)
        if decisions[name] == "review":
            if top < field_policy.threshold:
                reasons.append(f"{name} confidence {top:.3f} < {field_policy.threshold:.3f}")
            if top - second < field_policy.min_margin:
                reasons.append(f"{name} margin {top - second:.3f} < {field_policy.min_margin:.3f}")
    return Routing(
        category=decisions["category"],
        owner=decisions["owner"],
        auto_routed=decisions["owner"] == "auto",
        reasons=reasons,
    )
