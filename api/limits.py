"""Limits on a request before any of it is parsed: body size, body time, JSON shape.

``BodySizeLimit`` refuses a body over the size limit while it arrives (FastAPI enforces
none) and cuts off a client that does not send its whole body in time (408); JSON bodies
that are not UTF-8 are refused there too, with a 422 naming the offending byte (FastAPI would
answer an undocumented 400 "error parsing the body").

``json_shape_error`` bounds what parsing a JSON body can cost: Python's parser builds an
object of 50 to 100 bytes for every container, key and number, so 4 MB of ``[[],[],…]`` or
of 400,000 keys would take hundreds of MB, and every extra key one validation error more.
No request of this API needs more than a few containers, keys and digits: a body over
those bounds is refused from its bytes, before it is parsed.
"""

from __future__ import annotations

import json
import re
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A JSON string, or an unterminated one up to the end: from any '"' the pattern matches
# (possessively), so a scan never restarts inside a string (linear on any input).
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.DOTALL)
# Bounds of a JSON body's skeleton (its bytes with every string emptied)
MAX_CONTAINERS = 64  # objects and arrays; a predict request needs two
MAX_KEYS = 64  # keys in all objects; a predict request has at most five


def _is_json(scope: Scope) -> bool:
    content_type = dict(scope["headers"]).get(b"content-type", b"")
    return content_type.split(b";")[0].strip().lower() == b"application/json"


def json_shape_error(body: bytes, max_strings: int) -> str | None:
    """Why a JSON body is refused before parsing (more than ``MAX_CONTAINERS`` arrays and
    objects or ``MAX_KEYS`` keys), None when it may be parsed.

    The bytes are counted first, brackets and colons inside strings included: a body under
    the bounds so is under them (the usual case, at the cost of three ``bytes.count``).
    Otherwise strings are emptied to count exactly, which is done for up to ``max_strings``
    strings: a body with more strings than that and such counts is refused as it is.
    """
    containers = body.count(b"[") + body.count(b"{")
    keys = body.count(b":")
    if containers <= MAX_CONTAINERS and keys <= MAX_KEYS:
        return None
    pieces, start = [], 0
    for n, match in enumerate(_STRING.finditer(body)):
        if n >= max_strings:
            return (
                f"more than {max_strings} strings in a body with {containers} '[' or '{{' "
                f"and {keys} ':' (at most {MAX_CONTAINERS} and {MAX_KEYS} outside strings)"
            )
        pieces.append(body[start : match.start()])
        start = match.end()
    pieces.append(body[start:])
    skeleton = b"".join(pieces)
    containers = skeleton.count(b"[") + skeleton.count(b"{")
    if containers > MAX_CONTAINERS:
        return f"more than {MAX_CONTAINERS} arrays and objects ({containers}) in the body"
    keys = skeleton.count(b":")
    if keys > MAX_KEYS:
        return f"more than {MAX_KEYS} keys ({keys}) in the body"
    return None


def parse_json(body: bytes) -> Any:
    """``json.loads``, every failure a ``json.JSONDecodeError`` (which FastAPI answers 422)
    with its reason: also an integer over Python's 4,300 digits, or nesting too deep.

    No parse hooks: a Python call per number would cost a second for 2 million of them.
    """
    text = body.decode("utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as exc:
        raise json.JSONDecodeError(str(exc) or "nested too deeply", text, 0) from None


class BodySizeLimit:
    """ASGI middleware: answer 413 once a body is known to exceed ``max_bytes``, 408 when it
    has not all arrived ``timeout_s`` after the request headers.

    The body is read (counted chunk by chunk, stopping at the limit) before the app runs,
    then replayed to it; the declared ``Content-Length`` is checked first.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 20.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and not declared.isdigit():
            await answer(send, 400, "invalid Content-Length header")
            return
        if declared is not None and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        with anyio.move_on_after(self.timeout_s) as timer:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # client went away
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_bytes:
                    await self._refuse(send)
                    return
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        if timer.cancelled_caught:
            await answer(
                send,
                408,
                f"request body not received within {self.timeout_s:g} s of its headers",
                close=True,
            )
            return
        body = b"".join(chunks)
        del chunks
        if body and _is_json(scope):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                await answer(
                    send,
                    422,
                    [
                        {
                            "loc": ["body"],
                            "type": "utf8_invalid",
                            "msg": f"body is not valid UTF-8: byte 0x{body[exc.start]:02x} "
                            f"at offset {exc.start}",
                        }
                    ],
                )
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        await answer(send, 413, f"request body larger than {self.max_bytes} bytes", close=True)


async def answer(
    send: Send,
    status: int,
    detail: object,
    headers: list[tuple[bytes, bytes]] | None = None,
    close: bool = False,
) -> None:
    """Send a whole JSON answer ``{"detail": detail}`` from an ASGI middleware."""
    body = json.dumps({"detail": detail}).encode()
    head = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(headers or []),
    ]
    if close:  # the rest of the request is never read: the connection cannot be reused
        head.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})
