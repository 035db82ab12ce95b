"""Request dependencies: the loaded model, the settings and the tagging limiter, taken from
the app state."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import Depends, Request

from api.settings import Settings
from classifier.artifact import LoadedModel


async def get_model(request: Request) -> LoadedModel:
    """The model serving now (a reference taken once per request).

    ``async`` because it only reads the app state: FastAPI would run a plain ``def``
    dependency in its thread pool, a thread hop per request for nothing.
    """
    model: LoadedModel = request.app.state.model
    return model


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_tagging(request: Request) -> anyio.CapacityLimiter:
    """The limiter of the threads that tag big requests (see ``api.routes.predict``)."""
    limiter: anyio.CapacityLimiter = request.app.state.tagging
    return limiter


ModelDep = Annotated[LoadedModel, Depends(get_model)]
TaggingDep = Annotated[anyio.CapacityLimiter, Depends(get_tagging)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
