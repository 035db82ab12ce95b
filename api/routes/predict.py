"""POST /v1/predict: tag texts, optionally per paragraph."""

# No ``from __future__ import annotations``: the request schema is made from the settings
# inside ``router``, and FastAPI reads the endpoint's annotations as objects.

from collections.abc import Callable

import anyio
from fastapi import APIRouter, Request, Response

from api import metrics
from api.budget import ClientGone, Job, OverBudget, disconnected
from api.dependencies import TaggingDep, pick
from api.jsonroute import JSONBodyRoute
from api.schemas import (
    Evidence,
    NameEvidence,
    ParagraphResult,
    PredictRequest,
    PredictResponse,
    TagScore,
    TextResult,
    predict_request,
)
from api.settings import Settings
from classifier import explain
from classifier.artifact import LoadedModel
from classifier.explain import Explanation, explain_predictions
from classifier.model import Prediction
from classifier.model import TagScore as Tag

# Requests with at most this many characters in all are tagged on the event loop: that takes
# about a millisecond, less than the thread hop a plain ``def`` endpoint pays. Bigger ones go
# to a worker thread, so the loop keeps answering while they run, one at a time per process
# (the ``tagging`` limiter): the GIL runs one of them at a time anyway, and several threads
# taking turns at it cost more CPU (BENCHMARKS.md §4). There they are tagged in slices with a
# checkpoint between (``api.budget``): past the time budget, or once the client has gone,
# the work stops.
INLINE_CHARS = 2_000
# An explanation costs about four times the prediction (bench.explain): such requests go to
# the worker thread from a quarter of the size.
EXPLAIN_COST = 4


def router(settings: Settings) -> APIRouter:
    """The predict route, validating requests against the limits of ``settings``."""
    request_model = predict_request(settings)
    budget_s = settings.request_budget_s
    routes = APIRouter(prefix="/v1", tags=["predict"], route_class=JSONBodyRoute)

    @routes.post(
        "/predict",
        response_model=PredictResponse,
        responses={
            400: {"description": "Invalid Content-Length header."},
            408: {"description": "The body did not arrive in time."},
            413: {"description": "Request body larger than the configured limit."},
            415: {"description": "The body is not JSON (the type received is named)."},
            503: {"description": "Stopped at the request's time budget."},
        },
    )
    async def predict(
        request: request_model,  # type: ignore[valid-type]
        http: Request,
        tagging: TaggingDep,
    ) -> Response:
        """Tag one text or a batch with the model named (default: the first served);
        scores are in [0, 1]."""
        model = pick(http.app.state, request.model)
        cost = EXPLAIN_COST if request.explain else 1
        if cost * sum(len(t) for t in request.inputs()) <= INLINE_CHARS:
            return answer(request, model)
        return await in_thread(request, model, tagging, http, Job(budget_s))

    return routes


async def in_thread(
    request: PredictRequest,
    model: LoadedModel,
    tagging: anyio.CapacityLimiter,
    http: Request,
    job: Job,
) -> Response:
    """Tag in the tagging thread, within the job's budget, while watching for the client
    to go; raise OverBudget (or ClientGone) when the work was stopped."""
    response: Response | None = None
    error: BaseException | None = None
    with anyio.move_on_after(job.remaining()) as timer:
        async with anyio.create_task_group() as watch:

            async def client_gone() -> None:
                await disconnected(http)
                job.gone = True
                timer.cancel()  # also when still waiting for its turn

            watch.start_soon(client_gone)
            try:
                response = await anyio.to_thread.run_sync(
                    answer, request, model, job.check, limiter=tagging
                )
            except Exception as exc:  # raised again below, outside the task group
                error = exc
            watch.cancel_scope.cancel()
    if job.gone:
        raise ClientGone
    if error is not None:
        raise error
    if response is None:
        raise OverBudget(job.budget_s)
    return response


def _tags(
    tags: list[Tag],
    evidence: dict[str, list[explain.Evidence]] | None,
    names: dict[str, list[explain.Evidence]] | None = None,
) -> list[TagScore]:
    if evidence is None:
        return [TagScore(tag=t.tag, score=t.score) for t in tags]
    names = names or {}
    return [
        TagScore(
            tag=t.tag,
            score=t.score,
            evidence=[Evidence(**vars(e)) for e in evidence.get(t.tag, [])],
            name_evidence=[NameEvidence(**vars(e)) for e in names[t.tag]]
            if t.tag in names
            else None,
        )
        for t in tags
    ]


def _result(pred: Prediction, why: Explanation | None) -> TextResult:
    tags = _tags(pred.tags, None if why is None else why.tags, None if why is None else why.names)
    if pred.paragraphs is None:
        return TextResult(tags=tags)
    by_paragraph = why.paragraphs if why is not None else None
    return TextResult(
        tags=tags,
        paragraphs=[
            ParagraphResult(
                text=p.text, tags=_tags(p.tags, by_paragraph[i] if by_paragraph else None)
            )
            for i, p in enumerate(pred.paragraphs)
        ],
    )


def answer(
    request: PredictRequest, model: LoadedModel, checkpoint: Callable[[], None] | None = None
) -> Response:
    """Tag a validated request with ``model``; the JSON answer."""
    predictions = model.predict(
        request.inputs(),
        top_k=request.top_k,
        threshold=request.threshold,
        paragraphs=request.paragraphs,
        checkpoint=checkpoint,
    )
    metrics.count_tags(sum(len(p.tags) for p in predictions))
    why: list[Explanation | None] = [None] * len(predictions)
    if request.explain:
        why = list(
            explain_predictions(model.model, request.inputs(), predictions, checkpoint=checkpoint)
        )
    body = PredictResponse(
        model=model.ref, results=[_result(p, w) for p, w in zip(predictions, why, strict=True)]
    )
    # Serialized here: FastAPI would validate the answer a second time against
    # response_model (which stays, for the schema), in one more thread-pool hop.
    return Response(body.model_dump_json(), media_type="application/json")
