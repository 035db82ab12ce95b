"""GET /docs and /redoc: Swagger UI and ReDoc from files installed with a package (the
``fastapi-offline`` wheel ships their dist files), never from a CDN: the documentation
works offline, and the pages' policy allows no remote source."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

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


def install(app: FastAPI, models: Sequence[str] = ()) -> None:
    """Serve the documentation pages and their assets on ``app`` (built with docs_url=None);
    with ``models``, the schema names them as the choices of every ``?model=`` parameter."""
    app.mount(STATIC, StaticFiles(directory=ASSETS), name="docs-assets")
    app.include_router(router(app))
    if models:
        document_model_names(app, list(models))


def document_model_names(app: FastAPI, names: list[str]) -> None:
    """The served model names as the enum of the ``model`` query parameter in the OpenAPI
    schema (they are known when the app is made, not when the routes are declared)."""
    make = app.openapi

    def schema() -> dict[str, Any]:
        if app.openapi_schema is None:
            built = make()
            for path in built.get("paths", {}).values():
                for operation in path.values():
                    for parameter in operation.get("parameters", []):
                        if parameter.get("in") == "query" and parameter.get("name") == "model":
                            parameter["schema"] = {"type": "string", "enum": names}
            app.openapi_schema = built
        return app.openapi_schema

    app.openapi = schema  # type: ignore[method-assign]


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
