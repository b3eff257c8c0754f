"""Routed cases: every stored feedback item is a case its owner must resolve or justify.

Status machine (anything else is refused with the allowed moves)::

    open ──► in_progress ──► resolved | justified ──► reopened ──► in_progress | resolved | justified
      └──────────────────────► resolved | justified

Closing (resolved or justified) needs a note: what was done, or why the feedback is accepted as it is.
``loop_closed`` records that the customer was told. Each change is a case event and, in the same
transaction, an outbox notification to the owner. Asking for the status a case already has, with the same
note, is a no-op (a retried request changes nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from accountability.outbox import enqueue
from switchboard.errors import ConflictError, InputError, NotFoundError
from switchboard.storage import Database
from switchboard.storage.tables import CaseEventRow, CaseRow, FeedbackRow, FollowupRow
from switchboard.taxonomy import Taxonomy

Status = Literal["open", "in_progress", "resolved", "justified", "reopened"]
CLOSED: frozenset[str] = frozenset({"resolved", "justified"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"in_progress", "resolved", "justified"}),
    "in_progress": frozenset({"resolved", "justified"}),
    "resolved": frozenset({"reopened"}),
    "justified": frozenset({"reopened"}),
    "reopened": frozenset({"in_progress", "resolved", "justified"}),
}
MAX_NOTE = 5_000


@dataclass(frozen=True)
class CaseView:
    id: int
    feedback_id: str
    text: str
    channel: str | None
    owner: str
    category: str
    taxonomy_version: str
    status: str
    note: str | None
    loop_closed: bool
    reopen_count: int
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    followup: bool | None


def _now() -> datetime:
    return datetime.now(UTC)


def case_payload(case: CaseRow, text: str | None = None) -> dict[str, Any]:
    """What an owner's webhook receives about a case."""
    out: dict[str, Any] = {
        "case_id": case.id,
        "feedback_id": case.feedback_id,
        "owner": case.owner,
        "category": case.category,
        "taxonomy_version": case.taxonomy_version,
        "status": case.status,
        "note": case.note,
        "loop_closed": case.loop_closed,
        "opened_at": case.opened_at.isoformat(),
    }
    if text is not None:
        out["text"] = text
    return out


def open_case(
    session: Session, feedback: FeedbackRow, owner: str, category: str, taxonomy_version: str, at: datetime
) -> CaseRow:
    """Create the case of a newly stored item (inside the caller's transaction) and notify its owner."""
    case = CaseRow(
        feedback_id=feedback.id,
        owner=owner,
        category=category,
        taxonomy_version=taxonomy_version,
        status="open",
        loop_closed=False,
        reopen_count=0,
        opened_at=at,
        updated_at=at,
    )
    session.add(case)
    session.flush()
    session.add(CaseEventRow(case_id=case.id, from_status=None, to_status="open", actor="switchboard", at=at))
    enqueue(session, owner, "case.opened", case_payload(case, feedback.text), at)
    return case


def reroute(
    session: Session,
    feedback_id: str,
    owner: str,
    category: str,
    actor: str,
    taxonomy_version: str | None = None,
    notify_same_owner: bool = True,
) -> None:
    """Move a case to a corrected (or migrated) category and owner; when the owner changes both are told."""
    case = session.scalars(select(CaseRow).where(CaseRow.feedback_id == feedback_id)).first()
    if case is None or (case.owner == owner and case.category == category):
        if case is not None and taxonomy_version:
            case.taxonomy_version = taxonomy_version
        return
    now = _now()
    previous = case.owner
    case.owner, case.category, case.updated_at = owner, category, now
    if taxonomy_version:
        case.taxonomy_version = taxonomy_version
    if previous == owner and not notify_same_owner:
        return
    session.add(
        CaseEventRow(
            case_id=case.id,
            from_status=case.status,
            to_status=case.status,
            actor=actor,
            note=f"rerouted from {previous}",
            at=now,
        )
    )
    payload = {**case_payload(case), "previous_owner": previous}
    enqueue(session, owner, "case.rerouted", payload, now)
    if previous != owner:
        enqueue(session, previous, "case.rerouted", payload, now)


def transition(
    db: Database,
    case_id: int,
    status: Status,
    actor: str,
    note: str | None = None,
    loop_closed: bool | None = None,
) -> tuple[CaseView, bool]:
    """Move a case; returns the case and whether anything changed."""
    actor = (actor or "").strip()
    if not actor or len(actor) > 128:
        raise InputError("actor must be 1 to 128 characters")
    note = note.strip() if note is not None else None
    if note is not None and len(note) > MAX_NOTE:
        raise InputError(f"note is longer than {MAX_NOTE} characters")
    if status in CLOSED and not note:
        word = "resolution" if status == "resolved" else "justification"
        raise InputError(f"closing a case as {status} needs a {word} note")
    if status not in TRANSITIONS:
        raise InputError(f"unknown status '{status}'")
    now = _now()
    with db.session() as s:
        case = s.get(CaseRow, case_id, with_for_update=True)
        if case is None:
            raise NotFoundError(f"no case {case_id}")
        if case.status == status and (note is None or note == case.note):
            return _view(s, case), False  # a retried request
        allowed = TRANSITIONS[case.status]
        if status not in allowed:
            raise ConflictError(
                f"case {case_id} cannot go from {case.status} to {status} (allowed: {', '.join(sorted(allowed))})"
            )
        _move(s, case, status, actor, note, bool(loop_closed), now)
        return _view(s, case), True


def _move(
    s: Session, case: CaseRow, status: str, actor: str, note: str | None, loop_closed: bool, at: datetime
) -> None:
    """Record a checked status change: the event, the case's fields, and the owner's notification."""
    s.add(CaseEventRow(case_id=case.id, from_status=case.status, to_status=status, actor=actor, note=note, at=at))
    case.status, case.updated_at = status, at
    if status in CLOSED:
        case.note, case.closed_at = note, at
        case.loop_closed = loop_closed
    elif status == "reopened":
        case.reopen_count += 1
        case.closed_at, case.loop_closed = None, False
        case.note = note or case.note
    elif note:
        case.note = note
    enqueue(s, case.owner, f"case.{status}", case_payload(case), at)


def record_followup(db: Database, case_id: int, resolved: bool, comment: str | None = None) -> tuple[bool, bool]:
    """The customer's answer to "was your issue resolved?"; returns (resolved, newly recorded).

    Only closed cases take an answer. The same answer again is accepted and changes nothing; a different
    answer to an already answered case is refused.
    """
    comment = (comment or "").strip() or None
    with db.session() as s:
        case = s.get(CaseRow, case_id)
        if case is None:
            raise NotFoundError(f"no case {case_id}")
        existing = s.scalars(select(FollowupRow).where(FollowupRow.case_id == case_id)).first()
        if existing is not None:
            if existing.resolved == resolved:
                return existing.resolved, False
            raise ConflictError(f"case {case_id} already has a follow-up answer (resolved={existing.resolved})")
        if case.status not in CLOSED:
            raise ConflictError(f"case {case_id} is {case.status}: a follow-up is asked only after it is closed")
        now = _now()
        s.add(FollowupRow(case_id=case_id, resolved=resolved, comment=comment, answered_at=now))
        enqueue(s, case.owner, "case.followup", {**case_payload(case), "customer_confirmed": resolved}, now)
        if not resolved:  # the customer says it is not fixed: the case comes back (and its owner is told)
            _move(s, case, "reopened", "customer", comment or "customer says the issue is not resolved", False, now)
        return resolved, True


def get_case(db: Database, case_id: int) -> CaseView:
    with db.session() as s:
        case = s.get(CaseRow, case_id)
        if case is None:
            raise NotFoundError(f"no case {case_id}")
        return _view(s, case)


def list_cases(
    db: Database,
    taxonomy: Taxonomy,
    owner: str | None = None,
    status: Sequence[str] = (),
    limit: int = 50,
    after_id: int = 0,
) -> list[CaseView]:
    """Cases by id (keyset pagination with ``after_id``), optionally for one owner and some statuses."""
    if owner is not None and owner not in taxonomy.owner_by_id:
        raise NotFoundError(f"unknown owner '{owner}' in taxonomy {taxonomy.version}")
    bad = [x for x in status if x not in TRANSITIONS]
    if bad:
        raise InputError(f"unknown status {', '.join(bad)}; choose from {', '.join(TRANSITIONS)}")
    with db.session() as s:
        stmt = select(CaseRow).where(CaseRow.id > after_id).order_by(CaseRow.id).limit(limit)
        if owner is not None:
            stmt = stmt.where(CaseRow.owner == owner)
        if status:
            stmt = stmt.where(CaseRow.status.in_(status))
        rows = s.scalars(stmt).all()
        ids = [c.feedback_id for c in rows]
        feedback = {f.id: f for f in s.scalars(select(FeedbackRow).where(FeedbackRow.id.in_(ids)))}
        answers = dict(
            s.execute(
                select(FollowupRow.case_id, FollowupRow.resolved).where(FollowupRow.case_id.in_([c.id for c in rows]))
            ).all()
        )
        return [_as_view(c, feedback.get(c.feedback_id), answers.get(c.id)) for c in rows]


def _view(s: Session, case: CaseRow) -> CaseView:
    follow = s.scalars(select(FollowupRow.resolved).where(FollowupRow.case_id == case.id)).first()
    return _as_view(case, s.get(FeedbackRow, case.feedback_id), follow)


def _as_view(case: CaseRow, fb: FeedbackRow | None, follow: bool | None) -> CaseView:
    return CaseView(
        id=case.id,
        feedback_id=case.feedback_id,
        text=fb.text if fb else "",
        channel=fb.channel if fb else None,
        owner=case.owner,
        category=case.category,
        taxonomy_version=case.taxonomy_version,
        status=case.status,
        note=case.note,
        loop_closed=case.loop_closed,
        reopen_count=case.reopen_count,
        opened_at=case.opened_at,
        updated_at=case.updated_at,
        closed_at=case.closed_at,
        followup=follow,
    )
