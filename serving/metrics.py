"""Prometheus metrics, kept in a registry per app (no module-level globals), plus the ASGI middleware
that times every request."""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchboard.schemas import ModelInfo, Prediction

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServingMetrics:
    """Everything /metrics exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("switchboard_requests", "HTTP requests.", ["route", "method", "status"], registry=r)
        self.latency = Histogram(
            "switchboard_request_seconds", "HTTP request latency.", ["route"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.batch_size = Histogram(
            "switchboard_inference_batch_items", "Items per inference batch.", buckets=_BATCH_BUCKETS, registry=r
        )
        self.queue_depth = Gauge("switchboard_queue_items", "Items waiting for inference.", registry=r)
        self.model_info = Gauge(
            "switchboard_model_info",
            "The model in service (value 1).",
            ["name", "version", "taxonomy_version"],
            registry=r,
        )
        self.predictions = Counter(
            "switchboard_predictions", "Predicted items by category and owner.", ["category", "owner"], registry=r
        )
        self.decisions = Counter(
            "switchboard_routing_decisions",
            "Deferral decisions per field (auto or review); deferral rate = review / all.",
            ["field", "decision"],
            registry=r,
        )
        self.item_errors = Counter("switchboard_item_errors", "Batch items rejected as invalid.", registry=r)
        self.truncated = Counter("switchboard_truncated_items", "Items truncated to the length limit.", registry=r)
        self.overloaded = Counter("switchboard_overloaded", "Requests refused with 503 (queue full).", registry=r)

    def observe_batch(self, items: int, still_queued: int) -> None:
        self.batch_size.observe(items)
        self.queue_depth.set(still_queued)

    def observe_predictions(self, predictions: Iterable[Prediction]) -> None:
        for p in predictions:
            self.predictions.labels(p.category.id, p.owner.id).inc()
            self.decisions.labels("category", p.routing.category).inc()
            self.decisions.labels("owner", p.routing.owner).inc()
            if p.truncated:
                self.truncated.inc()

    def set_model(self, info: ModelInfo) -> None:
        self.model_info.clear()
        self.model_info.labels(info.name, info.version, info.taxonomy_version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times each HTTP request by its route template."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(path, scope.get("method", ""), str(status)).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - start)
