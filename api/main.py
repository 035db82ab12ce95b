"""The FastAPI application: load the model once at start-up, serve predictions and metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from api import errors, metrics
from api.limits import BodySizeLimit
from api.loading import load_verified
from api.metrics import RequestMetrics
from api.routes import admin, docs, feedback, meta, page, predict
from api.routes import metrics as prometheus
from api.security import AdminGate, SecurityHeaders
from api.settings import Settings, get_settings
from api.swap import Swapper
from classifier import __version__, workers
from classifier.feedback import open_store


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the models named by ``settings`` are loaded when the app starts.

    Under ``tagger serve``'s supervisor the versions are the ones it pins for every worker
    (``classifier.workers``), and reloads go through it to all of them.
    """
    settings = settings or get_settings()
    served = settings.served()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        link = workers.current()
        loaded = [load_verified(settings, ref) for ref in (link.models if link else served)]
        app.state.model = loaded[0]  # the default of every request
        app.state.others = {workers.model_name(m.ref): m for m in loaded[1:]}
        for model in loaded:
            metrics.serving(model.ref)
        del loaded, model  # the frame lives on while serving: hold no model a swap replaces
        app.state.tagging = anyio.CapacityLimiter(1)  # big requests: one at a time
        app.state.swapper = Swapper(app.state, settings)
        # the feedback store is opened only when feedback is accepted (an editor token)
        app.state.feedback = open_store(settings.feedback_db) if settings.editor_token else None
        if link is not None:
            link.serve(app.state.swapper)
        try:
            yield
        finally:
            if app.state.feedback is not None:
                app.state.feedback.close()

    app = FastAPI(
        title="tagger",
        version=__version__,
        summary="Multi-label topic tagging for Chinese (and other) text.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    # what a worker's HTTP server and its supervisor read (classifier.workers)
    app.state.server_options = {
        "header_timeout_s": settings.header_timeout_s,
        "stall_s": settings.stall_timeout_s,
    }
    # outermost last: headers on every answer, then the admin token, then the body limits
    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s
    )
    app.add_middleware(AdminGate, settings=settings)
    app.add_middleware(SecurityHeaders)
    if settings.metrics:
        app.add_middleware(RequestMetrics)  # outermost: every answer counts
    errors.install(app)
    app.include_router(predict.router(settings))
    app.include_router(meta.router)
    app.include_router(admin.router)
    app.include_router(feedback.router(settings))
    app.include_router(page.router)
    if settings.metrics:
        app.include_router(prometheus.router)
    docs.install(app, [workers.model_name(ref) for ref in served])
    return app
