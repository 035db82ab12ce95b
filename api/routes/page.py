"""GET /: a small page to paste text and see its tags."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.security import csp_for

router = APIRouter(include_in_schema=False)
PAGE = Path(__file__).resolve().parent.parent / "static" / "index.html"


@cache
def _page() -> tuple[str, str]:
    html = PAGE.read_text(encoding="utf-8")
    return html, csp_for(html)


@router.get("/", response_class=HTMLResponse)
async def index() -> HTMLResponse:
    html, policy = _page()
    return HTMLResponse(html, headers={"content-security-policy": policy})
