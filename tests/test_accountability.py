"""Accountability: cases and their status machine, follow-ups, the outbox against a real failing HTTP
receiver, trends, Poisson spike alerts and the monthly report (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from accountability import alerts, cases, outbox, report, trends
from labeling import queue
from serving.app import create_app
from switchboard.errors import ConflictError, InputError, NotFoundError
from switchboard.settings import Settings
from switchboard.storage import Database
from switchboard.storage.tables import CaseRow, FeedbackRow, OutboxRow
from switchboard.taxonomy import Taxonomy
from tests.test_labeling import _ingest

SECRET = "s3cret-for-tests-0123456789"


def _events(db: Database) -> list[tuple[str, str]]:
    with db.session() as s:
        return [(r.owner, r.event_type) for r in s.scalars(select(OutboxRow).order_by(OutboxRow.id))]


def _case_id(db: Database, feedback_id: str) -> int:
    with db.session() as s:
        case = s.scalars(select(CaseRow).where(CaseRow.feedback_id == feedback_id)).one()
        return case.id


# -- cases ------------------------------------------------------------------------------------------


def test_every_stored_item_is_a_case_with_a_checked_life_cycle(db: Database) -> None:
    db.upgrade()
    fid = _ingest(db, [("charged twice", "double_charge", "payments", 0.99, True)], qa_rate=0.0)[0].feedback_id
    cid = _case_id(db, fid)
    assert cases.get_case(db, cid).status == "open" and _events(db) == [("payments", "case.opened")]

    with pytest.raises(InputError, match="closing a case as resolved needs a resolution note"):
        cases.transition(db, cid, "resolved", "pat")
    with pytest.raises(InputError, match="needs a justification note"):
        cases.transition(db, cid, "justified", "pat", note="   ")
    with pytest.raises(ConflictError, match=r"cannot go from open to reopened \(allowed: in_progress, justified"):
        cases.transition(db, cid, "reopened", "pat")
    with pytest.raises(NotFoundError, match="no case 999"):
        cases.transition(db, 999, "in_progress", "pat")

    view, changed = cases.transition(db, cid, "in_progress", "pat")
    assert changed and view.status == "in_progress"
    view, changed = cases.transition(db, cid, "in_progress", "pat")  # a retried request
    assert not changed
    view, _ = cases.transition(db, cid, "resolved", "pat", note="refunded the second charge", loop_closed=True)
    assert view.status == "resolved" and view.loop_closed and view.closed_at is not None
    assert cases.transition(db, cid, "resolved", "pat", note="refunded the second charge")[1] is False
    with pytest.raises(ConflictError, match="cannot go from resolved to in_progress"):
        cases.transition(db, cid, "in_progress", "pat")

    # follow-up: the same answer twice is one answer; a contradicting one is refused
    assert cases.record_followup(db, cid, True) == (True, True)
    assert cases.record_followup(db, cid, True) == (True, False)
    with pytest.raises(ConflictError, match="already has a follow-up answer"):
        cases.record_followup(db, cid, False)
    assert [e for _, e in _events(db)] == [
        "case.opened",
        "case.in_progress",
        "case.resolved",
        "case.followup",
    ]


def test_a_customer_saying_no_reopens_the_case(db: Database) -> None:
    db.upgrade()
    fid = _ingest(db, [("app broken", "app_crash", "digital", 0.99, True)], qa_rate=0.0)[0].feedback_id
    cid = _case_id(db, fid)
    with pytest.raises(ConflictError, match="a follow-up is asked only after it is closed"):
        cases.record_followup(db, cid, True)
    cases.transition(db, cid, "justified", "dev", note="works as designed: the old app version is unsupported")
    cases.record_followup(db, cid, False, comment="still broken")
    view = cases.get_case(db, cid)
    assert view.status == "reopened" and view.reopen_count == 1 and view.followup is False
    assert not view.loop_closed and _events(db)[-1] == ("digital", "case.reopened")


def test_a_review_correction_reroutes_the_case(db: Database, demo_taxonomy: Taxonomy) -> None:
    db.upgrade()
    got = _ingest(db, [("they never refunded me", "app_crash", "digital", 0.4, False)], qa_rate=0.0, agreement_rate=0.0)
    assert got[0].task_id is not None
    queue.submit(db, got[0].task_id, "ann", "label", demo_taxonomy, category="refund_delay")
    view = cases.get_case(db, _case_id(db, got[0].feedback_id))
    assert (view.owner, view.category) == ("payments", "refund_delay")
    assert _events(db)[-2:] == [("payments", "case.rerouted"), ("digital", "case.rerouted")]


# -- the outbox against a real receiver that fails on purpose ---------------------------------------------


class Receiver:
    """A local HTTP server: refuses the first ``fail_first`` attempts of every event with 500, checks the
    signature, and records what it accepted."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.attempts: dict[str, int] = {}
        self.accepted: list[dict[str, Any]] = []
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not outbox.verify_signature(SECRET, body, self.headers[outbox.SIGNATURE_HEADER]):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                event_id = self.headers["X-Switchboard-Event-Id"]
                receiver.attempts[event_id] = receiver.attempts.get(event_id, 0) + 1
                if receiver.attempts[event_id] <= receiver.fail_first:
                    self.send_response(500)
                else:
                    receiver.accepted.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=2)
    yield r
    r.close()


def _drain(dispatcher: outbox.Dispatcher, rounds: int = 20) -> outbox.DeliveryStats:
    total = outbox.DeliveryStats()
    for _ in range(rounds):
        with dispatcher.db.session() as s:  # make every retry due now instead of waiting out the backoff
            s.execute(update(OutboxRow).where(OutboxRow.status == "pending").values(next_attempt_at=datetime.now(UTC)))
        stats = dispatcher.deliver_due()
        total.delivered += stats.delivered
        total.retried += stats.retried
        total.dead += stats.dead
        if not (stats.delivered or stats.retried):
            break
    return total


def test_webhooks_survive_a_failing_receiver_and_a_restart(
    db: Database, demo_taxonomy: Taxonomy, receiver: Receiver
) -> None:
    db.upgrade()
    specs = [(f"late again {i}", "late_delivery", "delivery_ops", 0.99, True) for i in range(3)]
    _ingest(db, [*specs, ("charged twice", "double_charge", "payments", 0.99, True)], qa_rate=0.0)
    with pytest.raises(NotFoundError, match="unknown owner 'nobody'"):
        outbox.set_webhook(db, demo_taxonomy, "nobody", receiver.url, SECRET)
    with pytest.raises(InputError, match="absolute http"):
        outbox.set_webhook(db, demo_taxonomy, "delivery_ops", "ftp://x", SECRET)

    # the receiver is down (nothing listens on this port): attempts fail, nothing is lost
    down = Receiver(fail_first=0)
    down.close()
    outbox.set_webhook(db, demo_taxonomy, "delivery_ops", down.url, SECRET)
    first = outbox.Dispatcher(db, base_delay_s=0.01, timeout_s=2)
    stats = first.deliver_due()
    assert stats.retried == 3 and stats.delivered == 0 and "Connection refused" in stats.errors[0]

    # "restart": a new engine and dispatcher; the receiver is up but fails each event twice
    fresh = Database(db.url)
    outbox.set_webhook(fresh, demo_taxonomy, "delivery_ops", receiver.url, SECRET)
    second = outbox.Dispatcher(fresh, base_delay_s=0.01, timeout_s=2)
    total = _drain(second)
    assert total.delivered == 3 and receiver.bad_signatures == 0
    assert sorted(receiver.attempts.values()) == [3, 3, 3]
    assert {e["type"] for e in receiver.accepted} == {"case.opened"}
    assert {e["data"]["owner"] for e in receiver.accepted} == {"delivery_ops"}
    delivered = outbox.list_outbox(fresh, status="delivered")
    assert len(delivered) == 3 and all(d.attempts == 4 for d in delivered)  # 1 refused + 2 failed + 1 accepted
    # payments has no webhook yet: its event waits, undelivered but kept
    assert [(p.owner, p.status) for p in outbox.list_outbox(fresh, status="pending")] == [("payments", "pending")]
    fresh.dispose()


def test_a_notification_goes_dead_after_its_attempts_and_can_be_retried(
    db: Database, demo_taxonomy: Taxonomy, receiver: Receiver
) -> None:
    db.upgrade()
    _ingest(db, [("charged twice", "double_charge", "payments", 0.99, True)], qa_rate=0.0)
    outbox.set_webhook(db, demo_taxonomy, "payments", receiver.url, SECRET)
    dispatcher = outbox.Dispatcher(db, max_attempts=2, base_delay_s=0.01)
    assert _drain(dispatcher).dead == 1
    (dead,) = outbox.list_outbox(db, status="dead")
    assert dead.attempts == 2 and "HTTP 500" in (dead.last_error or "")
    outbox.retry_dead(db, dead.id)
    assert _drain(dispatcher).delivered == 1
    with pytest.raises(ConflictError, match="already delivered"):
        outbox.retry_dead(db, dead.id)


def test_signatures_are_checked_and_expire() -> None:
    body = b'{"id":"x"}'
    header = outbox.sign(SECRET, body, 1_700_000_000)
    assert outbox.verify_signature(SECRET, body, header, now=1_700_000_100)
    assert not outbox.verify_signature(SECRET, body + b" ", header, now=1_700_000_100)
    assert not outbox.verify_signature("another-secret-0123456", body, header, now=1_700_000_100)
    assert not outbox.verify_signature(SECRET, body, header, now=1_700_001_000)  # too old: a replay
    assert not outbox.verify_signature(SECRET, body, "garbage", now=1_700_000_100)


# -- trends, alerts, report ---------------------------------------------------------------------------


def _history(db: Database, rows: list[tuple[str, str, str, datetime]]) -> list[str]:
    """Store items with a given receive time: (text, category, owner, received_at)."""
    got = _ingest(db, [(t, c, o, 0.99, True) for t, c, o, _ in rows], qa_rate=0.0)
    with db.session() as s:
        for item, (*_, at) in zip(got, rows, strict=True):
            s.execute(update(FeedbackRow).where(FeedbackRow.id == item.feedback_id).values(received_at=at))
            s.execute(update(CaseRow).where(CaseRow.feedback_id == item.feedback_id).values(opened_at=at))
    return [g.feedback_id for g in got]


def _at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_volumes_per_period_and_sentiment(db: Database, demo_taxonomy: Taxonomy) -> None:
    db.upgrade()
    mon = date(2026, 11, 2)  # a Monday
    _history(
        db,
        [
            ("late", "late_delivery", "delivery_ops", _at(mon)),
            ("late", "late_delivery", "delivery_ops", _at(mon + timedelta(days=1))),
            ("late", "late_delivery", "delivery_ops", _at(mon + timedelta(days=8))),
            ("twice", "double_charge", "payments", _at(mon + timedelta(days=8))),
            ("october", "double_charge", "payments", _at(date(2026, 10, 30))),
            ("lovely driver", "praise", "customer_care", _at(mon + timedelta(days=2))),
        ],
    )
    periods, series = trends.volumes(db, demo_taxonomy, "owner", "week", date(2026, 10, 26), date(2026, 11, 16))
    assert periods == ["2026-10-26", "2026-11-02", "2026-11-09"]
    by = {s.key: s.points for s in series}
    assert by["delivery_ops"] == {"2026-10-26": 0, "2026-11-02": 2, "2026-11-09": 1}
    assert by["payments"] == {"2026-10-26": 1, "2026-11-02": 0, "2026-11-09": 1}
    assert series[0].key == "delivery_ops"  # biggest first
    _, months = trends.volumes(db, demo_taxonomy, "category", "month", date(2026, 10, 1), date(2026, 12, 1))
    assert {s.key: s.points for s in months}["double_charge"] == {"2026-10-01": 1, "2026-11-01": 1}
    with pytest.raises(InputError, match="must be before"):
        trends.volumes(db, demo_taxonomy, "owner", "day", date(2026, 11, 2), date(2026, 11, 2))
    items = trends.classified_items(db, demo_taxonomy.version, date(2026, 11, 1), date(2026, 12, 1))
    mood = trends.sentiment(items, demo_taxonomy)
    assert mood["delivery_ops"].negative_share == 1.0  # complaints carry negative sentiment in the demo taxonomy
    assert mood["customer_care"].positive_share == 1.0 and mood["customer_care"].negative_share == 0.0


def test_poisson_tail() -> None:
    assert alerts.poisson_sf(0, 3.0) == 1.0
    assert alerts.poisson_sf(1, 2.0) == pytest.approx(1 - 2.718281828**-2.0)
    assert alerts.poisson_sf(3, 0.1) == pytest.approx(
        1 - sum(0.1**k * 2.718281828**-0.1 / f for k, f in ((0, 1), (1, 1), (2, 2)))
    )


def test_spikes_on_small_and_large_counts(db: Database, demo_taxonomy: Taxonomy) -> None:
    db.upgrade()
    day = date(2026, 11, 20)
    rows: list[tuple[str, str, str, datetime]] = []
    # a rare category: one item a week, then four in one day
    rows += [("crushed", "damaged_items", "fulfilment", _at(day - timedelta(days=7 * k - 3))) for k in range(1, 5)]
    rows += [("crushed", "damaged_items", "fulfilment", _at(day, h)) for h in (8, 9, 10, 11)]
    # a busy category: 20 a day, steady, and 23 on the day (ordinary noise, no alert)
    for k in range(1, 29):
        rows += [("late", "late_delivery", "delivery_ops", _at(day - timedelta(days=k), 9))] * 20
    rows += [("late", "late_delivery", "delivery_ops", _at(day, 9))] * 23
    _history(db, rows)
    found = alerts.scan(db, demo_taxonomy, [day])
    keys = {(s.scope, s.key) for s in found}
    assert ("category", "damaged_items") in keys and ("owner", "fulfilment") in keys
    assert ("category", "late_delivery") not in keys and ("owner", "delivery_ops") not in keys
    spike = next(s for s in found if s.key == "damaged_items")
    assert spike.observed == 4 and spike.expected < 0.3 and spike.p_value < 0.001
    events_before = len(_events(db))
    assert alerts.scan(db, demo_taxonomy, [day]) == []  # stored once, announced once
    assert len(_events(db)) == events_before
    assert ("fulfilment", "alert.spike") in _events(db)


@pytest.fixture
def populated(db: Database) -> Database:
    """A month of cases: some resolved, one justified, one overdue, follow-ups."""
    db.upgrade()
    now = datetime.now(UTC)
    old = now - timedelta(days=40)
    ids = _history(
        db,
        [
            ("late 1", "late_delivery", "delivery_ops", now - timedelta(hours=30)),
            ("late 2", "late_delivery", "delivery_ops", now - timedelta(hours=20)),
            ("rude", "courier_conduct", "delivery_ops", now - timedelta(hours=10)),
            ("ancient", "missing_items", "fulfilment", old),
            ("twice", "double_charge", "payments", now - timedelta(hours=5)),
        ],
    )
    c = [_case_id(db, f) for f in ids]
    cases.transition(db, c[0], "resolved", "ops", note="courier rescheduled; voucher sent", loop_closed=True)
    cases.transition(db, c[1], "justified", "ops", note="storm closed the roads")
    cases.transition(db, c[4], "resolved", "fin", note="refunded", loop_closed=True)
    cases.record_followup(db, c[0], True)
    cases.record_followup(db, c[4], False)
    return db


def test_monthly_report_json_and_html(populated: Database, demo_taxonomy: Taxonomy) -> None:
    month = f"{datetime.now(UTC):%Y-%m}"
    built = report.monthly_report(populated, demo_taxonomy, month, sla_days=14)
    ops = next(s for s in built.owners if s.owner == "delivery_ops")
    assert ops.top_issues[0].category == "late_delivery" and ops.top_issues[0].count >= 1
    assert (ops.resolved, ops.justified, ops.loop_closed) == (1, 1, 1)
    assert {c.note for c in ops.closed_this_month} == {"courier rescheduled; voucher sent", "storm closed the roads"}
    assert ops.confirmed_share == 1.0 and ops.followups == 1
    fulfil = next(s for s in built.owners if s.owner == "fulfilment")
    assert fulfil.overdue_cases == 1 and fulfil.overdue[0].age_days >= 39
    pay = next(s for s in built.owners if s.owner == "payments")
    assert pay.confirmed_share == 0.0 and pay.reopen_rate == 1.0 and pay.open_cases == 1
    page = report.render_html(built)
    assert page.count("<svg") >= 2 * (len(built.owners) + 1) and "storm closed the roads" in page
    one = report.monthly_report(populated, demo_taxonomy, month, owner="payments")
    assert [s.owner for s in one.owners] == ["payments"] and one.scope == "payments"
    with pytest.raises(NotFoundError, match="unknown owner 'nobody'"):
        report.monthly_report(populated, demo_taxonomy, month, owner="nobody")
    with pytest.raises(InputError, match="month must look like 2026-11"):
        report.monthly_report(populated, demo_taxonomy, "Nov 2026")


# -- over HTTP ------------------------------------------------------------------------------------------


@pytest.fixture
def client(bundle_path: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(bundle_path=bundle_path, home=tmp_path, outbox_interval_s=0, alert_scan_interval_s=0)
    with TestClient(create_app(settings)) as c:
        yield c


def test_cases_over_http(client: TestClient) -> None:
    stored = client.post("/v1/feedback", json={"items": [{"text": "charged twice"}, {"text": "driver was rude"}]})
    assert stored.status_code == 200
    listed = client.get("/v1/cases", params={"limit": 1}).json()
    assert len(listed["cases"]) == 1 and listed["next_after_id"] == listed["cases"][0]["id"]
    case_id = listed["cases"][0]["id"]
    r = client.post(f"/v1/cases/{case_id}/transition", json={"status": "resolved", "actor": "pat"})
    assert r.status_code == 422 and "needs a resolution note" in r.json()["detail"]
    r = client.post(f"/v1/cases/{case_id}/transition", json={"status": "reopened", "actor": "pat"})
    assert r.status_code == 409 and "allowed:" in r.json()["detail"]
    body = {"status": "resolved", "actor": "pat", "note": "refunded", "loop_closed": True}
    r = client.post(f"/v1/cases/{case_id}/transition", json=body)
    assert r.status_code == 200 and r.json()["changed"] and r.json()["case"]["status"] == "resolved"
    assert client.post(f"/v1/cases/{case_id}/transition", json=body).json()["changed"] is False
    assert client.post(f"/v1/cases/{case_id}/followup", json={"resolved": True}).json()["recorded"] is True
    assert client.post(f"/v1/cases/{case_id}/followup", json={"resolved": True}).json()["recorded"] is False
    assert client.post(f"/v1/cases/{case_id}/followup", json={"resolved": False}).status_code == 409
    assert client.get("/v1/cases/4242").status_code == 404
    assert client.get("/v1/cases", params={"owner": "nobody"}).status_code == 404
    r = client.put("/v1/owners/nobody/webhook", json={"url": "http://127.0.0.1:9/x", "secret": SECRET})
    assert r.status_code == 404
    r = client.put("/v1/owners/payments/webhook", json={"url": "http://127.0.0.1:9/x", "secret": SECRET})
    assert r.status_code == 200 and "secret" not in r.json()
    pending = client.get("/v1/outbox", params={"status": "pending"}).json()
    assert {e["event_type"] for e in pending} >= {"case.opened", "case.resolved", "case.followup"}
    today = datetime.now(UTC).date()
    t = client.get("/v1/trends", params={"since": str(today), "until": str(today + timedelta(days=1)), "period": "day"})
    assert t.status_code == 200 and sum(s["total"] for s in t.json()["series"]) == 2
    assert client.post("/v1/alerts/scan").status_code == 200
    month = f"{datetime.now(UTC):%Y-%m}"
    assert client.get("/v1/reports/monthly", params={"month": month}).json()["total_volume"] == 2
    page = client.get("/dashboard", params={"month": month})
    assert page.status_code == 200 and "<svg" in page.text and "Accountability report" in page.text
    assert client.get("/dashboard", params={"owner": "nobody"}).status_code == 404


def test_accountability_commands(
    populated: Database, bundle_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from switchboard.cli import app as cli

    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", populated.url)
    monkeypatch.setenv("SWITCHBOARD_HOME", str(tmp_path))
    monkeypatch.setenv("SWITCHBOARD_BUNDLE_PATH", str(bundle_path))
    run = CliRunner().invoke
    month = f"{datetime.now(UTC):%Y-%m}"
    r = run(cli, ["report", "monthly", "--month", month, "--out", str(tmp_path / "r"), "--owner", "payments"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "r" / f"accountability-{month}-leadership.html").read_text().count("<svg") >= 2
    assert json.loads((tmp_path / "r" / f"accountability-{month}-payments.json").read_text())["scope"] == "payments"
    r = run(cli, ["report", "monthly", "--month", "11/2026"])
    assert r.exit_code == 2 and "month must look like 2026-11" in r.output
    r = run(cli, ["webhooks", "set", "nobody", "--url", "http://127.0.0.1:9/x", "--secret", SECRET])
    assert r.exit_code == 2 and "unknown owner 'nobody'" in r.output
    r = run(cli, ["webhooks", "set", "payments", "--url", "http://127.0.0.1:9/x", "--secret", SECRET])
    assert r.exit_code == 0, r.output
    r = run(cli, ["outbox", "list", "--status", "pending", "--owner", "payments"])
    assert r.exit_code == 0 and '"event_type": "case.opened"' in r.stdout
    r = run(cli, ["alerts", "scan", "--days", "3"])
    assert r.exit_code == 0 and "new spike(s)" in r.stdout
    assert run(cli, ["alerts", "scan", "--day", "yesterday"]).exit_code == 2
