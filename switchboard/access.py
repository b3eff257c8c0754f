"""API keys and roles.

A key looks like ``sb_<id>_<secret>``; only the SHA-256 of the secret is stored (the secret is 256 random
bits, so a fast hash is enough). Roles grant actions:

    service    classify
    annotator  classify, review
    owner      cases (work the cases routed to owners, trends, alerts, reports, dashboard)
    admin      classify, review, cases, admin (reload the model, webhooks, the outbox)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import select

from switchboard.errors import Forbidden, InputError, NotFoundError, Unauthenticated
from switchboard.storage import Database
from switchboard.storage.tables import ApiKeyRow

PREFIX = "sb"


class Role(StrEnum):
    service = "service"
    annotator = "annotator"
    owner = "owner"
    admin = "admin"


class Action(StrEnum):
    classify = "classify"
    review = "review"
    cases = "cases"
    admin = "admin"


GRANTS: dict[Role, frozenset[Action]] = {
    Role.service: frozenset({Action.classify}),
    Role.annotator: frozenset({Action.classify, Action.review}),
    Role.owner: frozenset({Action.cases}),
    Role.admin: frozenset(Action),
}


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None

    def allows(self, action: Action) -> bool:
        return self.revoked_at is None and action in GRANTS[self.role]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(row.id, row.name, Role(row.role), row.created_at, row.revoked_at)


def create_key(db: Database, name: str, role: Role | str) -> tuple[ApiKey, str]:
    """Store a new key; returns it and the plaintext token, which is shown once and never stored."""
    try:
        role = Role(role)
    except ValueError:
        raise InputError(f"unknown role '{role}'; choose one of {', '.join(r.value for r in Role)}") from None
    name = name.strip()
    if not name or len(name) > 128:
        raise InputError("key name must be 1 to 128 characters")
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    row = ApiKeyRow(id=key_id, name=name, role=role.value, secret_sha256=_digest(secret), created_at=datetime.now(UTC))
    with db.session() as s:
        s.add(row)
    return _key(row), f"{PREFIX}_{key_id}_{secret}"


def list_keys(db: Database) -> list[ApiKey]:
    with db.session() as s:
        return [_key(r) for r in s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))]


def revoke_key(db: Database, key_id: str) -> ApiKey:
    with db.session() as s:
        row = s.get(ApiKeyRow, key_id)
        if row is None:
            raise NotFoundError(f"no API key with id '{key_id}'")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
        return _key(row)


def authenticate(db: Database, token: str) -> ApiKey:
    """The key a token belongs to; ``Unauthenticated`` if malformed, unknown, wrong or revoked."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        raise Unauthenticated("malformed API key (expected sb_<id>_<secret>)")
    with db.session() as s:
        row = s.get(ApiKeyRow, parts[1])
        if row is None or not hmac.compare_digest(row.secret_sha256, _digest(parts[2])):
            raise Unauthenticated("invalid API key")
        if row.revoked_at is not None:
            raise Unauthenticated("this API key has been revoked")
        return _key(row)


def authorize(key: ApiKey, action: Action) -> None:
    if not key.allows(action):
        raise Forbidden(
            f"role '{key.role}' may not {action.value}; it needs one of: "
            + ", ".join(r.value for r, acts in GRANTS.items() if action in acts)
        )


class KeyCache:
    """Verified keys remembered for ``ttl_s`` seconds, so the hot path does not hit the database.
    A revocation takes effect within ``ttl_s``."""

    def __init__(self, db: Database, ttl_s: float = 30.0) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self._hits: dict[str, tuple[float, ApiKey]] = {}

    def authenticate(self, token: str) -> ApiKey:
        now = time.monotonic()
        fingerprint = _digest(token)
        cached = self._hits.get(fingerprint)
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        key = authenticate(self.db, token)
        if len(self._hits) > 10_000:
            self._hits.clear()
        self._hits[fingerprint] = (now, key)
        return key
