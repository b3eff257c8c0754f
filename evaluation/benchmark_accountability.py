"""Accountability throughput on embedded SQLite: storing cases, delivering webhooks, scanning, reporting.

    python -m evaluation.benchmark_accountability [--items 20000] [--fail-rate 0.2] [--work-dir ...]

No model is involved (predictions are drawn over the demo taxonomy with a fixed seed, received over 90 days,
with one injected spike), so the figures are those of the accountability path alone:
1. ingest: feedback + prediction + case + case event + outbox row per item, in batches of 256;
2. delivery of every outbox event to a local HTTP receiver that refuses ``--fail-rate`` of the attempts;
3. a spike scan of the last 30 days, and 4. the monthly report (JSON + HTML).
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from accountability import alerts, outbox, report
from evaluation.benchmarks import run_benchmark
from labeling import queue
from switchboard.deferral import Routing
from switchboard.schemas import Alternative, ModelInfo, Prediction, ScoredCategory, ScoredOwner
from switchboard.storage import Database, sqlite_url
from switchboard.storage.tables import FeedbackRow, OutboxRow
from switchboard.taxonomy import Taxonomy
from switchboard.text import CleanText

DEMO_TAXONOMY = Path(__file__).resolve().parent.parent / "switchboard" / "demo" / "taxonomy.yaml"
SECRET = "benchmark-secret-0123456789"


def _prediction(category: str, owner: str) -> Prediction:
    return Prediction(
        category=ScoredCategory(id=category, name=category, confidence=0.97),
        owner=ScoredOwner(id=owner, name=owner, confidence=0.99),
        alternatives=[Alternative(category=category, owner=owner, confidence=0.97)],
        truncated=False,
        routing=Routing(category="auto", owner="auto", auto_routed=True),
    )


class FlakyReceiver:
    def __init__(self, fail_rate: float, seed: int = 7) -> None:
        rng = random.Random(seed)
        lock = threading.Lock()
        self.accepted: set[str] = set()
        self.refused = 0
        me = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = outbox.verify_signature(SECRET, body, self.headers[outbox.SIGNATURE_HEADER])
                with lock:
                    fail = rng.random() < fail_rate
                    if ok and not fail:
                        me.accepted.add(self.headers["X-Switchboard-Event-Id"])
                    else:
                        me.refused += 1
                self.send_response(204 if ok and not fail else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def run(args: argparse.Namespace) -> dict[str, object]:
    work: Path = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    (work / "bench.db").unlink(missing_ok=True)
    db = Database(sqlite_url(work / "bench.db"))
    db.upgrade()
    taxonomy = Taxonomy.load(DEMO_TAXONOMY)
    model = ModelInfo(name="bench", version="1", taxonomy_version=taxonomy.version)
    rng = random.Random(3)
    leaves = list(taxonomy.leaf_ids)
    weights = [rng.uniform(0.5, 3) for _ in leaves]
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    spike_day = now - timedelta(days=3)

    started = time.perf_counter()
    for start in range(0, args.items, 256):
        n = min(256, args.items - start)
        cats = rng.choices(leaves, weights, k=n)
        got = queue.ingest(
            db,
            model,
            [(CleanText(f"feedback {start + i}", False), None, "survey") for i in range(n)],
            [_prediction(c, taxonomy.leaf_owner[c]) for c in cats],
            queue.QueuePolicy(qa_rate=0.0, agreement_rate=0.0, seed=start),
        )
        with db.session() as s:
            for item in got:
                at = now - timedelta(days=rng.randrange(90), hours=rng.randrange(12))
                s.execute(update(FeedbackRow).where(FeedbackRow.id == item.feedback_id).values(received_at=at))
    ingest_s = time.perf_counter() - started
    # the spike: 40 extra items of one small category on one day
    extra = queue.ingest(
        db,
        model,
        [(CleanText(f"spike {i}", False), None, "social") for i in range(40)],
        [_prediction("login_problem", "digital")] * 40,
        queue.QueuePolicy(qa_rate=0.0, agreement_rate=0.0),
    )
    with db.session() as s:
        for item in extra:
            s.execute(update(FeedbackRow).where(FeedbackRow.id == item.feedback_id).values(received_at=spike_day))

    receiver = FlakyReceiver(args.fail_rate)
    for owner in taxonomy.owners:
        outbox.set_webhook(db, taxonomy, owner.id, receiver.url, SECRET)
    with db.session() as s:
        events = int(s.scalar(select(func.count()).select_from(OutboxRow)) or 0)
    dispatcher = outbox.Dispatcher(db, base_delay_s=0.001, max_delay_s=0.01, batch_size=200)
    started = time.perf_counter()
    rounds = 0
    while True:
        stats = dispatcher.deliver_due()
        rounds += 1
        if not (stats.delivered or stats.retried):
            with db.session() as s:
                pending = s.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.status == "pending"))
            if not pending:
                break
            time.sleep(0.01)
    deliver_s = time.perf_counter() - started
    with db.session() as s:
        attempts = int(s.scalar(select(func.sum(OutboxRow.attempts))) or 0)
        dead = int(s.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.status == "dead")) or 0)

    started = time.perf_counter()
    days = [(now - timedelta(days=i)).date() for i in range(30)][::-1]
    found = alerts.scan(db, taxonomy, days)
    scan_s = time.perf_counter() - started
    started = time.perf_counter()
    built = report.monthly_report(db, taxonomy, f"{now:%Y-%m}")
    page = report.render_html(built)
    report_s = time.perf_counter() - started
    receiver.server.shutdown()
    return {
        "items": args.items,
        "ingest_seconds": round(ingest_s, 2),
        "ingest_items_per_second": round(args.items / ingest_s, 1),
        "outbox_events": events,
        "webhook_fail_rate": args.fail_rate,
        "delivered_unique": len(receiver.accepted),
        "refused_attempts": receiver.refused,
        "attempts": attempts,
        "dead": dead,
        "deliver_seconds": round(deliver_s, 2),
        "delivered_per_second": round(len(receiver.accepted) / deliver_s, 1),
        "spike_scan_days": len(days),
        "spike_scan_seconds": round(scan_s, 2),
        "spikes": [f"{s.day} {s.scope}:{s.key} {s.observed} vs {s.expected:.1f}" for s in found],
        "monthly_report_seconds": round(report_s, 2),
        "monthly_report_html_kb": round(len(page.encode()) / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--fail-rate", type=float, default=0.2)
    parser.add_argument("--work-dir", type=Path, default=Path(".switchboard/bench/accountability"))
    return run_benchmark(run, parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
