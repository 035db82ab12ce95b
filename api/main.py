"""The FastAPI application: load the model once at start-up, serve predictions and metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from api import errors
from api.limits import BodySizeLimit
from api.loading import load_verified
from api.routes import admin, meta, page, predict
from api.settings import Settings, get_settings
from classifier import __version__


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the model named by ``settings`` is loaded when the app starts."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.model = load_verified(settings, settings.model)
        app.state.tagging = anyio.CapacityLimiter(1)  # big requests: one at a time
        yield

    app = FastAPI(
        title="tagger",
        version=__version__,
        summary="Multi-label topic tagging for Chinese (and other) text.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    errors.install(app)
    app.include_router(predict.router(settings))
    app.include_router(meta.router)
    app.include_router(admin.router)
    app.include_router(page.router)
    return app
