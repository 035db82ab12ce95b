"""Request dependencies: the loaded model and the settings, taken from the app state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.settings import Settings
from classifier.persistence import LoadedModel


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


ModelDep = Annotated[LoadedModel, Depends(get_model)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
