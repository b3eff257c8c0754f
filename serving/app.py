"""The FastAPI application factory (no import-time globals: model, batcher and storage start in the lifespan)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from accountability.background import deliver_notifications, scan_for_spikes
from accountability.routes import router as accountability_router
from labeling.queue import QueuePolicy
from labeling.routes import router as labeling_router
from models.classifier import Classifier
from models.release import read_release
from serving.batcher import MicroBatcher
from serving.errors import install_error_handlers
from serving.limits import BodySizeLimit
from serving.metrics import MetricsMiddleware, ServingMetrics
from serving.reloader import ModelReloader
from serving.routes import router
from switchboard import __version__
from switchboard.access import KeyCache
from switchboard.errors import ConfigError
from switchboard.settings import Settings, load_settings
from switchboard.storage import Database

log = logging.getLogger(__name__)


def load_classifier(settings: Settings) -> Classifier:
    if settings.follow_release:
        release = read_release(settings.release_file)
        if release is not None:
            return Classifier.from_settings(release.bundle_path, settings)
    if settings.bundle_path is None:
        raise ConfigError(
            "no model bundle to serve: set SWITCHBOARD_BUNDLE_PATH, or use `switchboard serve`, "
            "which fetches the registry's champion"
        )
    return Classifier.from_settings(settings.bundle_path, settings)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; settings are validated now, the bundle is loaded and checked at start-up."""
    settings = settings or load_settings()
    metrics = ServingMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        classifier = load_classifier(settings)
        database = Database(settings.database)
        database.upgrade()
        app.state.database = database
        app.state.keys = KeyCache(database, ttl_s=settings.key_cache_ttl_s)
        app.state.queue_policy = QueuePolicy(qa_rate=settings.qa_sample_rate, agreement_rate=settings.agreement_rate)
        batcher = MicroBatcher(
            classifier,
            max_batch_items=settings.max_batch_inference_items,
            max_wait_ms=settings.batch_max_wait_ms,
            max_queue_items=settings.max_queue_items,
            observer=metrics.observe_batch,
        )
        await batcher.start()
        app.state.batcher = batcher
        app.state.reloader = reloader = ModelReloader(batcher, settings, metrics)
        tasks = [asyncio.create_task(reloader.follow(), name="release-follower")] if settings.follow_release else []
        if settings.outbox_interval_s > 0:
            tasks.append(asyncio.create_task(deliver_notifications(database, settings), name="outbox"))
        if settings.alert_scan_interval_s > 0:
            tasks.append(asyncio.create_task(scan_for_spikes(database, batcher, settings), name="spike-alerts"))
        metrics.set_model(classifier.info)
        log.info("serving %s (auth %s)", classifier.info, "required" if settings.auth_required else "off")
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            app.state.batcher = None
            await batcher.stop()
            database.dispose()

    app = FastAPI(
        title="Switchboard",
        version=__version__,
        summary="Classify customer feedback into an actionable category and route it to its owner.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.batcher = None
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(labeling_router)
    app.include_router(accountability_router)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    return app
