"""What every answer carries and what is refused before anything else is read.

``SecurityHeaders`` adds a Content-Security-Policy with no remote source, nosniff, framing
refused and no referrer to every answer; ``html_page`` answers an HTML page whose inline
scripts are allowed by their sha256 only. ``AdminGate`` checks the admin token of
``/v1/admin/*`` from the request line and headers alone: no byte of the body is read, nor
anything parsed or validated, for a request without the right token; the editor token of
``/v1/feedback`` is checked the same way, by the same middleware.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Callable

from fastapi.responses import HTMLResponse
from pydantic import SecretStr
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.limits import answer
from api.settings import Settings

ADMIN_PREFIX = "/v1/admin"
FEEDBACK_PATH = "/v1/feedback"
# Styles may be inline (Swagger UI and ReDoc set style attributes and inject <style>);
# scripts only from this origin, or inline by hash (html_page); ReDoc's search runs in a
# worker made from a blob: URL. Nothing is ever loaded from another origin.
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ]
)
HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def csp_for(html: str) -> str:
    """The policy with the sha256 of each inline script of ``html`` allowed."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    ]
    if not hashes:
        return CSP
    return CSP.replace("script-src 'self'", "script-src 'self' " + " ".join(hashes))


def html_page(html: str) -> HTMLResponse:
    """An HTML answer whose own inline scripts (and no others) may run."""
    return HTMLResponse(html, headers={"content-security-policy": csp_for(html)})


class SecurityHeaders:
    """ASGI middleware: the security headers on every answer (a route's own CSP is kept)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("content-security-policy", CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def token_error(settings: Settings, authorization: str | None) -> tuple[int, str] | None:
    """Why a request to the admin endpoints is refused (status, reason), None when it may go."""
    token = settings.admin_token
    if token is None:
        return 404, "admin endpoints are disabled: set TAGGER_ADMIN_TOKEN"
    return _bearer_error(token, authorization)


def editor_token_error(settings: Settings, authorization: str | None) -> tuple[int, str] | None:
    """Why a request to the feedback endpoint is refused (status, reason), None when it may
    go: 403 while no editor token is set, 401 without it (the admin token is not it)."""
    token = settings.editor_token
    if token is None:
        return 403, "feedback is disabled: set TAGGER_EDITOR_TOKEN to accept it"
    return _bearer_error(token, authorization)


def _bearer_error(token: SecretStr, authorization: str | None) -> tuple[int, str] | None:
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        given.strip().encode(), token.get_secret_value().encode()
    ):
        return 401, "missing or wrong bearer token"
    return None


def _gate(path: str) -> Callable[[Settings, str | None], tuple[int, str] | None] | None:
    """The token check of ``path``, None for a path open to all."""
    if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
        return token_error
    if path == FEEDBACK_PATH:
        return editor_token_error
    return None


class AdminGate:
    """ASGI middleware: ``/v1/admin/*`` answers 404 while no admin token is set,
    ``/v1/feedback`` 403 while no editor token is set, and both 401 without the right
    bearer token, before the body is read."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        check = _gate(path)
        if check is not None:
            raw = dict(scope["headers"]).get(b"authorization")
            refused = check(self.settings, raw.decode("latin-1") if raw else None)
            if refused is not None:
                status, reason = refused
                extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
                await answer(send, status, reason, extra, close=True)
                return
        await self.app(scope, receive, send)
