"""POST /v1/feedback: store an editor's verdict on suggested tags (the editor token's gate is
``api.security.AdminGate``, before the body is read)."""

# No ``from __future__ import annotations``: the request schema is made from the settings
# inside ``router``, and FastAPI reads the endpoint's annotations as objects.

from collections.abc import Collection
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from api import metrics
from api.dependencies import ServedDep, SettingsDep
from api.jsonroute import JSONBodyRoute
from api.schemas import FeedbackResponse, feedback_request
from api.security import editor_token_error
from api.settings import Settings
from classifier.artifact import LoadedModel, read_metadata
from classifier.errors import FeedbackError, FeedbackStoreError, ModelNotFoundError
from classifier.feedback import FeedbackStore, check
from classifier.registry import resolve


async def get_store(request: Request) -> FeedbackStore:
    store: FeedbackStore | None = getattr(request.app.state, "feedback", None)
    if store is None:  # only when the app was built without an editor token
        raise FeedbackStoreError("feedback is disabled: set TAGGER_EDITOR_TOKEN to accept it")
    return store


StoreDep = Annotated[FeedbackStore, Depends(get_store)]


def labels_of(ref: str, served: Collection[LoadedModel], settings: Settings) -> Collection[str]:
    """The labels of the model that made the suggestions: one serving, or another
    version in the models folder (read from its metadata)."""
    for serving in served:
        if ref == serving.ref:
            return frozenset(serving.labels)
    try:
        return frozenset(read_metadata(resolve(settings.models_dir, ref)).get("labels", ()))
    except ModelNotFoundError as exc:
        raise FeedbackError("model", str(exc)) from None


def router(settings: Settings) -> APIRouter:
    """The feedback route, validating records against the limits of ``settings``."""
    request_model = feedback_request(settings)
    routes = APIRouter(prefix="/v1", tags=["feedback"], route_class=JSONBodyRoute)

    @routes.post(
        "/feedback",
        status_code=201,
        response_model=FeedbackResponse,
        responses={
            401: {"description": "no or wrong editor token"},
            403: {"description": "feedback is disabled (no TAGGER_EDITOR_TOKEN)"},
            415: {"description": "the body is not JSON"},
            422: {"description": "a field is invalid (named), or names tags the model lacks"},
            503: {"description": "the feedback store cannot be written now"},
        },
    )
    def feedback(
        body: request_model,  # type: ignore[valid-type]
        request: Request,
        settings: SettingsDep,
        served: ServedDep,
        store: StoreDep,
    ) -> FeedbackResponse:
        """Store which suggestions an editor accepted and rejected, and the tags added."""
        refused = editor_token_error(settings, request.headers.get("authorization"))
        if refused is not None:  # AdminGate has answered already; kept for apps without it
            raise HTTPException(refused[0], refused[1], headers={"WWW-Authenticate": "Bearer"})
        record = body.record()
        check(record, labels_of(record.model, list(served.values()), settings))
        seq = store.add(record)
        metrics.count_feedback()
        return FeedbackResponse(status="stored", seq=seq)

    return routes
