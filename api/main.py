"""The FastAPI application: load the model once at start-up, serve predictions and metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

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
    app.include_router(predict.router)
    app.include_router(meta.router)
    app.include_router(admin.router)
    app.include_router(page.router)
    app.openapi = lambda: _openapi_with_limits(app, settings)  # type: ignore[method-assign]
    return app


def _openapi_with_limits(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """The OpenAPI schema, with this service's configured limits written into it."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        props = schema["components"]["schemas"]["PredictRequest"]["properties"]
        props["text"]["maxLength"] = settings.max_text_chars
        props["texts"]["maxItems"] = settings.max_batch
        props["texts"]["items"]["maxLength"] = settings.max_text_chars
        props["top_k"]["anyOf"][0]["maximum"] = settings.max_top_k
        app.openapi_schema = schema
    return app.openapi_schema
