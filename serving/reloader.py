"""Hot reload: load and check a bundle off the event loop, then swap it into the micro-batcher atomically.

Requests already being scored finish on the old model; a bundle that fails its checks is refused and the
current model keeps serving. ``follow`` polls the release file that promotion and rollback write.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from models.classifier import Classifier
from models.release import read_release
from serving.batcher import MicroBatcher
from serving.metrics import ServingMetrics
from switchboard.errors import BundleError, SwitchboardError
from switchboard.schemas import ModelInfo
from switchboard.settings import Settings

log = logging.getLogger(__name__)


class ModelReloader:
    def __init__(self, batcher: MicroBatcher, settings: Settings, metrics: ServingMetrics) -> None:
        self.batcher = batcher
        self.settings = settings
        self.metrics = metrics
        self._lock = asyncio.Lock()

    @property
    def serving_path(self) -> Path:
        return self.batcher.classifier.bundle.path.resolve()

    async def reload(self, path: Path) -> ModelInfo:
        """Load ``path``, check it and swap it in; ``BundleError`` (old model kept) when it fails."""
        async with self._lock:
            classifier = await asyncio.to_thread(Classifier.from_settings, path, self.settings)
            self.batcher.swap(classifier)
            self.metrics.set_model(classifier.info)
            log.info("now serving %s from %s", classifier.info, path)
            return classifier.info

    def released_path(self) -> Path | None:
        """The bundle the release file names (None when there is no release file)."""
        release = read_release(self.settings.release_file)
        return None if release is None else release.bundle_path

    async def follow(self) -> None:
        """Swap to the released bundle whenever the release file names another one (runs until cancelled)."""
        failed: Path | None = None
        while True:
            await asyncio.sleep(self.settings.watch_release_s)
            try:
                path = self.released_path()
                if path is None or path.resolve() in (self.serving_path, failed):
                    continue
                await self.reload(path)
                failed = None
            except BundleError as exc:
                failed = path.resolve() if path is not None else None
                log.error("released bundle refused, current model kept: %s", exc)
            except SwitchboardError as exc:  # pragma: no cover - logged, the loop keeps going
                log.error("cannot follow the release file: %s", exc)
