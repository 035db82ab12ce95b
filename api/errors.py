"""Map library errors to HTTP answers, in one table; nothing escapes as an unformatted 500."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from api.budget import ClientGone, OverBudget
from classifier.errors import (
    ClassifierError,
    CorpusFormatError,
    FeedbackError,
    FeedbackStoreError,
    IncompatibleModelError,
    InvalidModelRefError,
    ModelNotFoundError,
    NotTrainedError,
)

log = logging.getLogger("tagger.api")
# A validation answer names at most this many errors (and counts them all)
MAX_ERRORS = 10
MAX_LOC_CHARS = 64
MAX_MESSAGE_CHARS = 300

# The HTTP status of each library error (the nearest class in an error's ancestry wins).
STATUS: dict[type[ClassifierError], int] = {
    ModelNotFoundError: 404,
    InvalidModelRefError: 422,
    IncompatibleModelError: 409,
    CorpusFormatError: 422,
    NotTrainedError: 422,
    FeedbackError: 422,
    FeedbackStoreError: 503,
    ClassifierError: 422,
}


class NotSwapped(ClassifierError):
    """A model was not swapped in; the one serving goes on. Answered with its cause's status."""

    def __init__(self, serving: str, cause: ClassifierError) -> None:
        super().__init__(f"not reloaded, still serving {serving}: {cause}")
        self.cause = cause


def field_error(loc: tuple[str, ...], message: str, value: object) -> RequestValidationError:
    """A 422 naming one field of the request, shaped as the validation errors are (for a
    check that needs the app state, such as which models are served)."""
    return RequestValidationError(
        [{"type": "value_error", "loc": loc, "msg": message, "input": value}]
    )


def status_of(exc: ClassifierError) -> int:
    if isinstance(exc, NotSwapped):
        return status_of(exc.cause)
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


async def classifier_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ClassifierError)
    if isinstance(exc, FeedbackError):  # a field of the body: answered as validation is
        error = {"loc": ["body", exc.field], "msg": exc.reason, "type": "feedback_invalid"}
        return JSONResponse({"detail": [error], "error_count": 1}, status_code=status_of(exc))
    return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))


def _short(value: object, limit: int) -> object:
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 1] + "…"
    return value


def _message(error: Mapping[str, Any]) -> str:
    msg = str(error.get("msg", ""))
    if error.get("type") == "json_invalid" and isinstance(error.get("ctx"), dict):
        msg = f"{msg}: {error['ctx'].get('error', '')}"
    return str(_short(msg, MAX_MESSAGE_CHARS))


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 naming the first ``MAX_ERRORS`` bad fields and counting all; the input is not
    echoed (it may be huge, or NaN), long keys and messages are cut."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    detail = [
        {
            "loc": [_short(part, MAX_LOC_CHARS) for part in e.get("loc", ())],
            "msg": _message(e),
            "type": str(e.get("type", "")),
        }
        for e in errors[:MAX_ERRORS]
    ]
    return JSONResponse({"detail": detail, "error_count": len(errors)}, status_code=422)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(
        {"detail": "internal error; the server log has the details"}, status_code=500
    )


async def over_budget(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})


async def client_gone(request: Request, exc: Exception) -> Response:
    return Response(status_code=499)  # nobody is there to read it


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(OverBudget, over_budget)
    app.add_exception_handler(ClientGone, client_gone)
    app.add_exception_handler(ClassifierError, classifier_error)
    app.add_exception_handler(Exception, unexpected_error)
