"""The FastAPI application factory (no import-time globals: the model loads in the lifespan)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from models.bundle import load_bundle
from models.classifier import Classifier
from serving.errors import install_error_handlers
from serving.routes import router
from switchboard import __version__
from switchboard.errors import ConfigError
from switchboard.settings import Settings, load_settings

log = logging.getLogger(__name__)


def load_classifier(settings: Settings) -> Classifier:
    if settings.bundle_path is None:
        raise ConfigError(
            "no model bundle to serve: set SWITCHBOARD_BUNDLE_PATH, or use `switchboard serve`, "
            "which fetches the registry's champion"
        )
    return Classifier(
        load_bundle(settings.bundle_path),
        intra_op_threads=settings.ort_intra_op_threads,
        batch_size=settings.inference_batch_size,
        max_chars=settings.max_text_chars,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; settings are validated now, the bundle is loaded and checked at start-up."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.classifier = load_classifier(settings)
        log.info("serving %s", app.state.classifier.info)
        yield
        app.state.classifier = None

    app = FastAPI(
        title="Switchboard",
        version=__version__,
        summary="Classify customer feedback into an actionable category and route it to its owner.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.classifier = None
    install_error_handlers(app)
    app.include_router(router)
    return app
