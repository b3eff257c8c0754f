"""The server's background work for accountability: deliver due notifications, scan today for spikes."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from accountability.alerts import SpikePolicy, scan
from accountability.outbox import Dispatcher
from serving.batcher import MicroBatcher
from switchboard.errors import SwitchboardError
from switchboard.settings import Settings
from switchboard.storage import Database

log = logging.getLogger(__name__)


def dispatcher(database: Database, settings: Settings) -> Dispatcher:
    return Dispatcher(
        database,
        max_attempts=settings.webhook_max_attempts,
        base_delay_s=settings.webhook_base_delay_s,
        timeout_s=settings.webhook_timeout_s,
    )


async def deliver_notifications(database: Database, settings: Settings) -> None:
    """Deliver due outbox rows every ``outbox_interval_s`` (runs until cancelled)."""
    worker = dispatcher(database, settings)
    while True:
        try:
            stats = await asyncio.to_thread(worker.deliver_due)
            if stats.delivered or stats.retried or stats.dead:
                log.info("webhooks: %d delivered, %d to retry, %d dead", stats.delivered, stats.retried, stats.dead)
        except SwitchboardError as exc:
            log.error("webhook delivery failed, will try again: %s", exc)
        await asyncio.sleep(settings.outbox_interval_s)


async def scan_for_spikes(database: Database, batcher: MicroBatcher, settings: Settings) -> None:
    """Scan today's counts for spikes every ``alert_scan_interval_s`` (runs until cancelled)."""
    policy = SpikePolicy.from_settings(settings)
    while True:
        await asyncio.sleep(settings.alert_scan_interval_s)
        try:
            taxonomy = batcher.classifier.bundle.taxonomy
            found = await asyncio.to_thread(scan, database, taxonomy, [datetime.now(UTC).date()], policy)
            for spike in found:
                log.warning(
                    "spike: %s %s %d items (expected %.1f)", spike.scope, spike.key, spike.observed, spike.expected
                )
        except SwitchboardError as exc:
            log.error("spike scan failed, will try again: %s", exc)
