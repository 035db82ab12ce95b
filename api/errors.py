"""Map library errors to HTTP answers, in one table; nothing escapes as an unformatted 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from classifier.errors import (
    ClassifierError,
    CorpusFormatError,
    IncompatibleModelError,
    InvalidModelRefError,
    ModelNotFoundError,
    NotTrainedError,
)

log = logging.getLogger("tagger.api")

# The HTTP status of each library error (the nearest class in an error's ancestry wins).
STATUS: dict[type[ClassifierError], int] = {
    ModelNotFoundError: 404,
    InvalidModelRefError: 422,
    IncompatibleModelError: 409,
    CorpusFormatError: 422,
    NotTrainedError: 422,
    ClassifierError: 422,
}


class NotSwapped(ClassifierError):
    """A model was not swapped in; the one serving goes on. Answered with its cause's status."""

    def __init__(self, serving: str, cause: ClassifierError) -> None:
        super().__init__(f"not reloaded, still serving {serving}: {cause}")
        self.cause = cause


def status_of(exc: ClassifierError) -> int:
    if isinstance(exc, NotSwapped):
        return status_of(exc.cause)
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


async def classifier_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ClassifierError)
    return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))


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
