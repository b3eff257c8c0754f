"""Storage and API keys on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.access import Action, Role, authenticate, authorize, create_key, list_keys, revoke_key
from switchboard.errors import Forbidden, InputError, NotFoundError, StorageError, Unauthenticated
from switchboard.storage import Database, head_revision, sqlite_url


def test_migrations_create_the_schema_and_are_idempotent(db: Database) -> None:
    assert db.current_revision() is None
    db.upgrade("0001")
    assert db.current_revision() == "0001"
    assert {"api_keys", "alembic_version"} <= db.tables()
    db.upgrade()
    assert db.current_revision() == head_revision() >= "0003"
    assert {"feedback", "predictions", "review_tasks", "labels", "taxonomies", "taxonomy_migrations"} <= db.tables()
    db.upgrade()  # again: nothing to do
    assert db.current_revision() == head_revision()


def test_api_key_life_cycle(db: Database) -> None:
    db.upgrade()
    key, token = create_key(db, "feedback-platform", "service")
    assert token.startswith(f"sb_{key.id}_") and len(token) > 40
    assert authenticate(db, token) == key
    authorize(key, Action.classify)
    with pytest.raises(Forbidden, match="role 'service' may not admin; it needs one of: admin"):
        authorize(key, Action.admin)
    assert [k.id for k in list_keys(db)] == [key.id]
    with pytest.raises(Unauthenticated, match="invalid API key"):
        authenticate(db, token[:-1] + ("A" if token[-1] != "A" else "B"))
    with pytest.raises(Unauthenticated, match="malformed"):
        authenticate(db, "hello")
    revoked = revoke_key(db, key.id)
    assert revoked.revoked_at is not None
    with pytest.raises(Unauthenticated, match="revoked"):
        authenticate(db, token)
    with pytest.raises(NotFoundError, match="no API key with id 'nope'"):
        revoke_key(db, "nope")


def test_only_the_hash_is_stored(db: Database) -> None:
    from sqlalchemy import text

    db.upgrade()
    _, token = create_key(db, "ops", Role.admin)
    secret = token.split("_", 2)[2]
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM api_keys")).all()
    assert len(rows) == 1 and all(secret not in str(v) for v in rows[0])


def test_bad_key_requests(db: Database) -> None:
    db.upgrade()
    with pytest.raises(InputError, match="unknown role 'root'"):
        create_key(db, "x", "root")
    with pytest.raises(InputError, match="name"):
        create_key(db, "   ", "admin")


def test_unmigrated_database_is_a_storage_error(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path / "empty.db"))
    with pytest.raises(StorageError, match="no such table"):
        list_keys(db)
