"""POST /v1/predict: tag texts, optionally per paragraph."""

# No ``from __future__ import annotations``: the request schema is made from the settings
# inside ``router``, and FastAPI reads the endpoint's annotations as objects.

import anyio
from fastapi import APIRouter, Response

from api.dependencies import ModelDep, TaggingDep
from api.schemas import (
    ParagraphResult,
    PredictRequest,
    PredictResponse,
    TagScore,
    TextResult,
    predict_request,
)
from api.settings import Settings
from classifier.artifact import LoadedModel
from classifier.model import Prediction

# Requests with at most this many characters in all are tagged on the event loop: that takes
# about a millisecond, less than the thread hop a plain ``def`` endpoint pays. Bigger ones go
# to a worker thread, so the loop keeps answering while they run, one at a time per process
# (the ``tagging`` limiter): the GIL runs one of them at a time anyway, and several threads
# taking turns at it cost more CPU (BENCHMARKS.md §4).
INLINE_CHARS = 2_000


def router(settings: Settings) -> APIRouter:
    """The predict route, validating requests against the limits of ``settings``."""
    request_model = predict_request(settings)
    routes = APIRouter(prefix="/v1", tags=["predict"])

    @routes.post(
        "/predict",
        response_model=PredictResponse,
        responses={
            400: {"description": "Invalid Content-Length header."},
            413: {"description": "Request body larger than the configured limit."},
        },
    )
    async def predict(request: request_model, model: ModelDep, tagging: TaggingDep) -> Response:  # type: ignore[valid-type]
        """Tag one text or a batch; scores are in [0, 1]."""
        if sum(len(t) for t in request.inputs()) <= INLINE_CHARS:
            return answer(request, model)
        return await anyio.to_thread.run_sync(answer, request, model, limiter=tagging)

    return routes


def _result(pred: Prediction) -> TextResult:
    tags = [TagScore(tag=t.tag, score=t.score) for t in pred.tags]
    if pred.paragraphs is None:
        return TextResult(tags=tags)
    return TextResult(
        tags=tags,
        paragraphs=[
            ParagraphResult(text=p.text, tags=[TagScore(tag=t.tag, score=t.score) for t in p.tags])
            for p in pred.paragraphs
        ],
    )


def answer(request: PredictRequest, model: LoadedModel) -> Response:
    """Tag a validated request with ``model``; the JSON answer."""
    predictions = model.predict(
        request.inputs(),
        top_k=request.top_k,
        threshold=request.threshold,
        paragraphs=request.paragraphs,
    )
    body = PredictResponse(model=model.ref, results=[_result(p) for p in predictions])
    # Serialized here: FastAPI would validate the answer a second time against
    # response_model (which stays, for the schema), in one more thread-pool hop.
    return Response(body.model_dump_json(), media_type="application/json")
