"""Prometheus metrics: requests by route and status, latency, tags per request, the model
version served and feedback received, exposed by ``GET /metrics``.

Under ``tagger serve`` every worker is a process of its own behind one port, and a scrape
reaches one of them: the supervisor gives the workers one ``PROMETHEUS_MULTIPROC_DIR``
(``classifier.workers``), each worker writes its values there (prometheus-client's
multiprocess mode, chosen when the library is imported, so the variable is set before the
workers start), and ``/metrics`` sums every worker's files, those of workers that have been
restarted too (a counter never goes back). The model gauge counts live workers only. In a
process of its own (tests, ``uvicorn`` directly) the numbers are that process's.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20)
TAG_BUCKETS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 100, 250, 1000)

REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "tagger_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "tagger_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template.",
    ["route"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
TAGS = Histogram(
    "tagger_tags_per_request",
    "Tags returned by one POST /v1/predict, over all its texts.",
    buckets=TAG_BUCKETS,
    registry=REGISTRY,
)
MODEL = Gauge(
    "tagger_model_info",
    "1 for the model version a live worker serves (0 for one it served before).",
    ["name", "version"],
    multiprocess_mode="livemax",
    registry=REGISTRY,
)
FEEDBACK = Counter(
    "tagger_feedback",
    "Feedback records stored by POST /v1/feedback.",
    registry=REGISTRY,
)
UNMATCHED = "unmatched"  # the route label of a request no route took (a 404): bounded


def count_feedback(n: int = 1) -> None:
    """The hook a feedback store calls once it has stored ``n`` records."""
    FEEDBACK.inc(n)


def count_tags(n: int) -> None:
    TAGS.observe(n)


def serving(ref: str, previous: str | None = None) -> None:
    """Say which version this worker serves now (and which it no longer does)."""
    if previous is not None and previous != ref:
        MODEL.labels(*previous.split("@", 1)).set(0)
    MODEL.labels(*ref.split("@", 1)).set(1)


def exposition() -> bytes:
    """The metrics in Prometheus's text format: every worker's under ``tagger serve``."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


class RequestMetrics:
    """ASGI middleware counting and timing every HTTP request (outermost, so that answers
    given by the other middlewares, 401 and 413 say, count too)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or UNMATCHED
            REQUESTS.labels(path, scope["method"], str(status[0])).inc()
            LATENCY.labels(path).observe(time.perf_counter() - started)
