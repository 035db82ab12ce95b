"""GET /docs and /redoc: Swagger UI and ReDoc from files installed with a package (the
``fastapi-offline`` wheel ships their dist files), never from a CDN: the documentation
works offline, and the pages' policy allows no remote source."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.security import html_page

STATIC = "/static/docs"
ASSETS = Path(str(files("fastapi_offline") / "static"))
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
OAUTH2_REDIRECT = "/docs/oauth2-redirect"


def install(app: FastAPI) -> None:
    """Serve the documentation pages and their assets on ``app`` (built with docs_url=None)."""
    app.mount(STATIC, StaticFiles(directory=ASSETS), name="docs-assets")
    app.include_router(router(app))


def router(app: FastAPI) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    openapi = app.openapi_url or "/openapi.json"

    @routes.get("/docs", response_class=HTMLResponse)
    async def swagger() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=openapi,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon.png",
            oauth2_redirect_url=OAUTH2_REDIRECT,
            swagger_ui_parameters={"validatorUrl": None},  # no badge from validator.swagger.io
        )
        return html_page(bytes(page.body).decode())

    @routes.get(OAUTH2_REDIRECT, response_class=HTMLResponse)
    async def oauth2_redirect() -> HTMLResponse:
        return html_page(bytes(get_swagger_ui_oauth2_redirect_html().body).decode())

    @routes.get("/redoc", response_class=HTMLResponse)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=openapi,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC}/favicon.png",
            with_google_fonts=False,
        )
        return html_page(bytes(page.body).decode())

    return routes
