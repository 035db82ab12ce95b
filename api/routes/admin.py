"""POST /v1/admin/reload: load, verify and swap in a model version while serving."""

from __future__ import annotations

import secrets
import threading
import weakref
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from api.dependencies import SettingsDep
from api.errors import NotSwapped
from api.loading import load_verified, release_freed_memory
from classifier.errors import ClassifierError

router = APIRouter(prefix="/v1/admin", tags=["admin"])
_swap_lock = threading.Lock()


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    model: str | None = Field(
        None,
        max_length=200,
        description="NAME[@VERSION] inside the models folder; default: the configured model "
        "(its latest version).",
    )


class ReloadResponse(BaseModel):
    status: str
    model: str
    previous: str


def _authorise(settings: SettingsDep, authorization: str | None) -> None:
    token = settings.admin_token
    if token is None:
        raise HTTPException(404, "admin endpoints are disabled: set TAGGER_ADMIN_TOKEN")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        given.encode(), token.get_secret_value().encode()
    ):
        raise HTTPException(
            401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )


@router.post(
    "/reload",
    response_model=ReloadResponse,
    responses={
        401: {"description": "no or wrong token"},
        404: {"description": "disabled"},
        409: {"description": "the new model failed verification; the old one serves"},
    },
)
def reload(
    request: Request,
    settings: SettingsDep,
    body: ReloadRequest | None = None,
    authorization: Annotated[str | None, Header()] = None,
) -> ReloadResponse:
    """Verify a model version (checksum, format, smoke prediction), then swap it in.

    Requests already running finish on the model they started with. If verification
    fails the current model keeps serving and the answer says why. Each worker process
    holds its own model: with several workers, reload each (or restart them).
    """
    _authorise(settings, authorization)
    ref = (body.model if body else None) or settings.model
    with _swap_lock:
        previous = request.app.state.model
        try:
            loaded = load_verified(settings, ref)
        except ClassifierError as exc:
            raise NotSwapped(previous.ref, exc) from None
        request.app.state.model = loaded  # one reference assignment: atomic for readers
        answer = ReloadResponse(status="reloaded", model=loaded.ref, previous=previous.ref)
        # once the last request still running on the old model is done with it
        weakref.finalize(previous, release_freed_memory)
        del previous
    return answer
