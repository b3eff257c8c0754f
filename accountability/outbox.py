"""Owner notifications through a transactional outbox, delivered to per-owner webhooks.

A change (case opened, closed, reopened, a spike alert) writes its notification into ``outbox`` in the same
transaction as the change itself, so a crash can never keep one without the other. ``Dispatcher`` delivers
due rows: it claims a batch (a short transaction moving their next attempt a lease ahead, so a crashed
delivery is retried, never lost), POSTs each JSON payload with an HMAC-SHA256 signature, and records the
outcome: delivered, or retried with exponential backoff and jitter until ``max_attempts``, then ``dead``
(kept, listed, and retryable by an admin).

Delivery is at least once: receivers de-duplicate on ``X-Switchboard-Event-Id``. Events for owners without
an active webhook wait in the outbox and go out once one is configured.

Signature header (like Stripe's): ``X-Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>" under the owner's secret>``; ``verify_signature`` is the receiver's side.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.orm import Session

from switchboard.errors import ConflictError, InputError, NotFoundError
from switchboard.storage import Database
from switchboard.storage.tables import OutboxRow, OwnerWebhookRow
from switchboard.taxonomy import Taxonomy

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Switchboard-Signature"


def _now() -> datetime:
    return datetime.now(UTC)


def enqueue(session: Session, owner: str, event_type: str, payload: dict[str, Any], at: datetime) -> OutboxRow:
    """Write a notification inside the caller's transaction."""
    row = OutboxRow(
        event_id=uuid.uuid4().hex,
        owner=owner,
        event_type=event_type,
        payload=payload,
        status="pending",
        attempts=0,
        next_attempt_at=at,
        created_at=at,
    )
    session.add(row)
    return row


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, body: bytes, header: str, tolerance_s: float = 300, now: float | None = None) -> bool:
    """A receiver's check: the signature matches and is no older than ``tolerance_s``."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), header)


# -- webhook configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Webhook:
    owner: str
    url: str
    active: bool
    updated_at: datetime


def set_webhook(db: Database, taxonomy: Taxonomy, owner: str, url: str, secret: str, active: bool = True) -> Webhook:
    if owner not in taxonomy.owner_by_id:
        raise NotFoundError(f"unknown owner '{owner}' in taxonomy {taxonomy.version}")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"webhook url must be an absolute http(s) URL, got '{url}'")
    if len(secret) < 16:
        raise InputError("webhook secret must be at least 16 characters")
    now = _now()
    with db.session() as s:
        row = s.get(OwnerWebhookRow, owner)
        if row is None:
            row = OwnerWebhookRow(owner=owner, url=url, secret=secret, active=active, updated_at=now)
            s.add(row)
        else:
            row.url, row.secret, row.active, row.updated_at = url, secret, active, now
        return Webhook(owner, url, active, now)


def get_webhook(db: Database, owner: str) -> Webhook:
    with db.session() as s:
        row = s.get(OwnerWebhookRow, owner)
        if row is None:
            raise NotFoundError(f"owner '{owner}' has no webhook")
        return Webhook(row.owner, row.url, row.active, row.updated_at)


def delete_webhook(db: Database, owner: str) -> None:
    with db.session() as s:
        row = s.get(OwnerWebhookRow, owner)
        if row is None:
            raise NotFoundError(f"owner '{owner}' has no webhook")
        s.delete(row)


# -- delivery ----------------------------------------------------------------------------------------


@dataclass
class DeliveryStats:
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)


Sender = Callable[[str, bytes, dict[str, str], float], int]
"""(url, body, headers, timeout) → HTTP status; raises OSError when the receiver cannot be reached."""


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class Dispatcher:
    """Delivers due outbox rows. Safe to run in several processes (rows are claimed before sending)."""

    def __init__(
        self,
        db: Database,
        max_attempts: int = 10,
        base_delay_s: float = 2.0,
        max_delay_s: float = 3600.0,
        timeout_s: float = 5.0,
        lease_s: float = 60.0,
        batch_size: int = 50,
        sender: Sender = http_post,
    ) -> None:
        self.db = db
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.timeout_s = timeout_s
        self.lease_s = lease_s
        self.batch_size = batch_size
        self.sender = sender

    def backoff(self, attempts: int) -> timedelta:
        delay = min(self.max_delay_s, self.base_delay_s * 2 ** max(0, attempts - 1))
        return timedelta(seconds=delay * random.uniform(0.8, 1.2))

    def _claim(self) -> list[tuple[int, str, str, dict[str, Any], int, str, str]]:
        now = _now()
        with self.db.session() as s:
            hooks = {h.owner: h for h in s.scalars(select(OwnerWebhookRow).where(OwnerWebhookRow.active))}
            if not hooks:
                return []
            rows = s.scalars(
                select(OutboxRow)
                .where(
                    OutboxRow.status == "pending",
                    OutboxRow.next_attempt_at <= now,
                    OutboxRow.owner.in_(hooks),
                )
                .order_by(OutboxRow.id)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            claimed = []
            for row in rows:
                row.next_attempt_at = now + timedelta(seconds=self.lease_s)
                hook = hooks[row.owner]
                claimed.append((row.id, row.event_id, row.event_type, row.payload, row.attempts, hook.url, hook.secret))
            return claimed

    def deliver_due(self) -> DeliveryStats:
        """One pass over the due notifications."""
        stats = DeliveryStats()
        for row_id, event_id, event_type, payload, attempts, url, secret in self._claim():
            body = json.dumps(
                {"id": event_id, "type": event_type, "data": payload}, separators=(",", ":"), sort_keys=True
            ).encode()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "switchboard-webhooks/1",
                "X-Switchboard-Event": event_type,
                "X-Switchboard-Event-Id": event_id,
                "X-Switchboard-Delivery-Attempt": str(attempts + 1),
                SIGNATURE_HEADER: sign(secret, body, int(time.time())),
            }
            error: str | None = None
            try:
                status = self.sender(url, body, headers, self.timeout_s)
                if not 200 <= status < 300:
                    error = f"HTTP {status} from {url}"
            except OSError as exc:
                error = f"{type(exc).__name__}: {exc} ({url})"
            self._record(row_id, error, stats)
        return stats

    def _record(self, row_id: int, error: str | None, stats: DeliveryStats) -> None:
        now = _now()
        with self.db.session() as s:
            row = s.get(OutboxRow, row_id, with_for_update=True)
            if row is None or row.status != "pending":
                return
            row.attempts += 1
            if error is None:
                row.status, row.delivered_at, row.last_error = "delivered", now, None
                stats.delivered += 1
                return
            row.last_error = error
            stats.errors.append(error)
            if row.attempts >= self.max_attempts:
                row.status = "dead"
                stats.dead += 1
                log.error(
                    "outbox event %s to %s is dead after %d attempts: %s", row.event_id, row.owner, row.attempts, error
                )
            else:
                row.next_attempt_at = now + self.backoff(row.attempts)
                stats.retried += 1


@dataclass(frozen=True)
class OutboxItem:
    id: int
    event_id: str
    owner: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


def list_outbox(
    db: Database, status: str | None = None, owner: str | None = None, limit: int = 100
) -> list[OutboxItem]:
    if status is not None and status not in ("pending", "delivered", "dead"):
        raise InputError(f"unknown outbox status '{status}' (pending, delivered or dead)")
    with db.session() as s:
        stmt = select(OutboxRow).order_by(OutboxRow.id.desc()).limit(limit)
        if status:
            stmt = stmt.where(OutboxRow.status == status)
        if owner:
            stmt = stmt.where(OutboxRow.owner == owner)
        return [
            OutboxItem(
                r.id,
                r.event_id,
                r.owner,
                r.event_type,
                r.status,
                r.attempts,
                r.next_attempt_at,
                r.last_error,
                r.created_at,
                r.delivered_at,
            )
            for r in s.scalars(stmt)
        ]


def retry_dead(db: Database, outbox_id: int) -> None:
    """Give a dead notification a fresh set of attempts."""
    with db.session() as s:
        row = s.get(OutboxRow, outbox_id, with_for_update=True)
        if row is None:
            raise NotFoundError(f"no outbox event {outbox_id}")
        if row.status == "delivered":
            raise ConflictError(f"outbox event {outbox_id} was already delivered")
        row.status, row.attempts, row.next_attempt_at = "pending", 0, _now()
