"""Map library errors to HTTP answers; nothing escapes as an unformatted 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from classifier.errors import ClassifierError, ModelNotFoundError

log = logging.getLogger("tagger.api")


async def classifier_error(request: Request, exc: Exception) -> JSONResponse:
    status = 404 if isinstance(exc, ModelNotFoundError) else 422
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each bad field; the input is not echoed (it may be huge, or NaN)."""
    assert isinstance(exc, RequestValidationError)
    detail = [
        {
            "loc": list(e.get("loc", ())),
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(
        {"detail": "internal error; the server log has the details"}, status_code=500
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ClassifierError, classifier_error)
    app.add_exception_handler(Exception, unexpected_error)
