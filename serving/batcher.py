"""Dynamic micro-batching: concurrent requests are scored together in one onnxruntime call.

Requests enter a bounded queue. One worker drains what is queued (up to ``max_batch_items``); when the
previous batch held more than one request (the server is under concurrent load) it also waits, at most
``max_wait_ms``, until as many requests have arrived as last time. Under light load a lone request is
dispatched at once, so batching adds no latency.
Inside a batch the classifier sorts texts by length and pads per chunk (length bucketing). A full queue
raises ``Overloaded`` at once instead of letting latency grow without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from models.classifier import Classifier
from switchboard.errors import SwitchboardError
from switchboard.schemas import ModelInfo, Prediction
from switchboard.text import CleanText

log = logging.getLogger(__name__)


class Overloaded(SwitchboardError):
    """The inference queue is full; the client should retry later."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class _Job:
    items: list[CleanText]
    future: asyncio.Future[tuple[list[Prediction], ModelInfo]]
    enqueued: float = field(default_factory=time.perf_counter)


BatchObserver = Callable[[int, int], None]  # (items in batch, items still queued)


class MicroBatcher:
    """Owns the classifier in service and the single inference thread."""

    def __init__(
        self,
        classifier: Classifier,
        max_batch_items: int = 256,
        max_wait_ms: float = 2.0,
        max_queue_items: int = 4096,
        observer: BatchObserver | None = None,
    ) -> None:
        self.classifier = classifier
        self.max_batch_items = max_batch_items
        self.max_wait_s = max_wait_ms / 1000
        self.max_queue_items = max_queue_items
        self._observer = observer
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._queued_items = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._worker: asyncio.Task[None] | None = None
        self._last_batch_requests = 1

    @property
    def queued_items(self) -> int:
        return self._queued_items

    def swap(self, classifier: Classifier) -> Classifier:
        """Put a new classifier in service; batches already running finish on the old one."""
        old, self.classifier = self.classifier, classifier
        return old

    async def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(Overloaded("server is shutting down", retry_after_s=1))
        self._executor.shutdown(wait=True)

    async def submit(self, items: list[CleanText]) -> tuple[list[Prediction], ModelInfo]:
        """Score cleaned texts; returns the predictions and the model that made them."""
        if not items:
            return [], self.classifier.info
        if self._queued_items + len(items) > self.max_queue_items:
            raise Overloaded(
                f"inference queue is full ({self._queued_items} items waiting, limit {self.max_queue_items})",
                retry_after_s=1,
            )
        future: asyncio.Future[tuple[list[Prediction], ModelInfo]] = asyncio.get_running_loop().create_future()
        self._queued_items += len(items)
        self._queue.put_nowait(_Job(items, future))
        return await future

    async def _collect(self) -> list[_Job]:
        """Take what is queued; under load, wait (at most ``max_wait_ms``) until as many requests have
        arrived as the previous batch held: at a steady concurrency the batch leaves as soon as it is whole."""
        first = await self._queue.get()
        jobs, size = [first], len(first.items)
        expected = self._last_batch_requests
        deadline = time.perf_counter() + (self.max_wait_s if expected > 1 else 0.0)
        while size < self.max_batch_items:
            if not self._queue.empty():
                job = self._queue.get_nowait()
            else:
                remaining = deadline - time.perf_counter()
                if len(jobs) >= expected or remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), timeout=remaining)
                except TimeoutError:
                    break
            jobs.append(job)
            size += len(job.items)
        return jobs

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._collect()
            items = [item for job in jobs for item in job.items]
            self._queued_items -= len(items)
            self._last_batch_requests = len(jobs)
            if self._observer is not None:
                self._observer(len(items), self._queued_items)
            classifier = self.classifier  # one model for the whole batch, even if a swap happens meanwhile
            try:
                predictions = await loop.run_in_executor(self._executor, classifier.predict_cleaned, items)
            except Exception as exc:  # hand the failure to every waiting request, keep serving
                log.exception("inference failed for a batch of %d items", len(items))
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            start = 0
            for job in jobs:
                if not job.future.done():  # a client that went away leaves a cancelled future
                    job.future.set_result((predictions[start : start + len(job.items)], classifier.info))
                start += len(job.items)
