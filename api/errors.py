"""Map library errors to HTTP answers; nothing escapes as an unformatted 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from classifier.errors import ClassifierError, ModelNotFoundError

log = logging.getLogger("tagger.api")


async def classifier_error(request: Request, exc: Exception) -> JSONResponse:
    status = 404 if isinstance(exc, ModelNotFoundError) else 422
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal error; the server log has the details"},
                        status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ClassifierError, classifier_error)
    app.add_exception_handler(Exception, unexpected_error)
