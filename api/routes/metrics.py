"""GET /metrics: the Prometheus text format, every worker's numbers summed (``api.metrics``)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api import metrics

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
def prometheus() -> Response:
    """Requests by route and status, latency, tags per request, the model version served and
    feedback received (plain ``def``: reading every worker's files is file I/O)."""
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)
