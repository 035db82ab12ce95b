"""Request dependencies: the loaded models, the settings and the tagging limiter, taken from
the app state.

The state holds the default model (the first served) as ``state.model`` and the others by
name in ``state.others``; each is swapped as one reference (``api.swap``), so a request
that took a model finishes on it.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import Depends, Query, Request

from api.errors import field_error
from api.settings import Settings
from classifier.artifact import LoadedModel
from classifier.workers import model_name, not_served

MODEL_QUERY = (
    "The name of one of the models served (GET /v1/models); default: the first. "
    "A name not served is refused (422) with the served ones named."
)


def served_models(state: Any) -> dict[str, LoadedModel]:
    """Every model served, by name, the default first."""
    first: LoadedModel = state.model
    others: dict[str, LoadedModel] = getattr(state, "others", {})
    return {model_name(first.ref): first, **others}


def pick(state: Any, name: str | None, where: str = "body") -> LoadedModel:
    """The model served as ``name`` (None: the default); else a 422 naming the field (in the
    body or the query) and the models served."""
    first: LoadedModel = state.model
    if name is None or name == model_name(first.ref):
        return first
    others: dict[str, LoadedModel] = getattr(state, "others", {})
    if name not in others:
        raise field_error((where, "model"), not_served(list(served_models(state)), name), name)
    return others[name]


async def get_model(
    request: Request,
    model: Annotated[str | None, Query(max_length=64, description=MODEL_QUERY)] = None,
) -> LoadedModel:
    """The model serving now (a reference taken once per request), ``?model=NAME`` if given.

    ``async`` because it only reads the app state: FastAPI would run a plain ``def``
    dependency in its thread pool, a thread hop per request for nothing.
    """
    return pick(request.app.state, model, "query")


async def get_served(request: Request) -> dict[str, LoadedModel]:
    """Every model serving now, by name, the default first."""
    return served_models(request.app.state)


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_tagging(request: Request) -> anyio.CapacityLimiter:
    """The limiter of the threads that tag big requests (see ``api.routes.predict``)."""
    limiter: anyio.CapacityLimiter = request.app.state.tagging
    return limiter


ModelDep = Annotated[LoadedModel, Depends(get_model)]
ServedDep = Annotated[dict[str, LoadedModel], Depends(get_served)]
TaggingDep = Annotated[anyio.CapacityLimiter, Depends(get_tagging)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
