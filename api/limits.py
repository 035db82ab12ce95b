"""Refuse request bodies over a size limit while they arrive (FastAPI enforces none).

JSON bodies that are not UTF-8 are refused here too, with a 422 naming the offending byte
(FastAPI would answer an undocumented 400 "error parsing the body").
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _is_json(scope: Scope) -> bool:
    content_type = dict(scope["headers"]).get(b"content-type", b"")
    return content_type.split(b";")[0].strip().lower() == b"application/json"


class BodySizeLimit:
    """ASGI middleware: answer 413 once a body is known to exceed ``max_bytes``.

    The body is read (counted chunk by chunk, stopping at the limit) before the app runs,
    then replayed to it; the declared ``Content-Length`` is checked first.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and not declared.isdigit():
            await self._answer(send, 400, "invalid Content-Length header")
            return
        if declared is not None and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
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
        body = b"".join(chunks)
        if body and _is_json(scope):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                await self._answer(
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
        await self._answer(send, 413, f"request body larger than {self.max_bytes} bytes")

    async def _answer(self, send: Send, status: int, detail: object) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
