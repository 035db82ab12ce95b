"""POST /v1/admin/reload: load, verify and swap in a model version, in every worker.

The token is checked before the request is read (``api.security.AdminGate``); the version
is resolved to NAME@VERSION here, once, so that every worker loads the same one.
"""

from __future__ import annotations

import threading

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from api.dependencies import SettingsDep
from api.errors import NotSwapped
from api.jsonroute import JSONBodyRoute
from api.security import token_error
from api.swap import Swapper
from classifier import workers
from classifier.errors import ClassifierError, IncompatibleModelError
from classifier.registry import resolve

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=JSONBodyRoute)
_swap_lock = threading.Lock()


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    model: str | None = Field(
        None,
        max_length=200,
        description="NAME[@VERSION] inside the models folder; default: the configured model "
        "(its latest version: the one promoted in the registry), the first one when several "
        "are served. With several, the version replaces the model of its name only.",
    )


class ReloadResponse(BaseModel):
    status: str
    model: str
    previous: str


@router.post(
    "/reload",
    response_model=ReloadResponse,
    responses={
        401: {"description": "no or wrong token"},
        404: {"description": "disabled, no such model version, or its name is not served"},
        409: {"description": "a worker refused the version; none swapped, the old one serves"},
        415: {"description": "the body is not JSON"},
    },
)
def reload(
    request: Request, settings: SettingsDep, body: ReloadRequest | None = None
) -> ReloadResponse:
    """Verify a model version in every worker (checksums, metadata, a smoke prediction),
    then swap it in everywhere, or nowhere.

    The answer comes once every worker serves the new version; if any worker refuses it,
    none swaps, the current version keeps serving and the answer says which and why.
    Requests already running finish on the model they started with.
    """
    refused = token_error(settings, request.headers.get("authorization"))
    if refused is not None:  # AdminGate has answered already; kept for apps built without it
        raise HTTPException(refused[0], refused[1], headers={"WWW-Authenticate": "Bearer"})
    swapper: Swapper = request.app.state.swapper
    folder = resolve(settings.models_dir, (body.model if body else None) or settings.served()[0])
    ref = f"{folder.parent.name}@{folder.name}"
    previous = swapper.serving_as(ref)  # 404 for a name not served (with several models)
    link = workers.current()
    if link is None:
        return _reload_here(swapper, ref)
    result = link.reload(ref)
    if not result.ok:
        raise NotSwapped(previous, IncompatibleModelError(result.reason()))
    return ReloadResponse(status="reloaded", model=ref, previous=previous)


def _reload_here(swapper: Swapper, ref: str) -> ReloadResponse:
    with _swap_lock:
        previous = swapper.serving_as(ref)
        try:
            swapper.prepare(ref)
        except ClassifierError as exc:
            raise NotSwapped(previous, exc) from None
        swapper.commit()
    return ReloadResponse(status="reloaded", model=ref, previous=previous)
