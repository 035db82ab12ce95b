"""The route class of endpoints that take a JSON body: the content type and the body's shape
are checked before FastAPI parses and validates it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from api.limits import MAX_KEYS, json_shape_error, parse_json
from api.settings import Settings


def is_json(content_type: str | None) -> bool:
    """``application/json`` or ``application/*+json`` (what FastAPI parses as JSON)."""
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class JSONBodyRequest(Request):
    """A request whose JSON is parsed with numbers bounded (``api.limits.parse_json``)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class JSONBodyRoute(APIRoute):
    """A non-empty body must be JSON (415 naming the type received), of a bounded shape
    (422 from its bytes: see ``api.limits.json_shape_error``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            # FastAPI's documented way to parse a body otherwise: a Request subclass
            request = JSONBodyRequest(request.scope, request.receive)
            body = await request.body()  # read once: FastAPI's handler gets it from request
            if body:
                content_type = request.headers.get("content-type")
                if not is_json(content_type):
                    given = repr(content_type[:100]) if content_type else "none"
                    return JSONResponse(
                        {"detail": f"Content-Type must be application/json, got {given}"},
                        status_code=415,
                    )
                settings: Settings = request.app.state.settings
                why = json_shape_error(body, settings.max_batch + MAX_KEYS)
                if why is not None:
                    return JSONResponse(
                        {
                            "detail": [{"loc": ["body"], "msg": why, "type": "json_too_complex"}],
                            "error_count": 1,
                        },
                        status_code=422,
                    )
            return await handler(request)

        return checked
