"""GET /healthz, /v1/models, /v1/labels, /v1/model and /v1/model/card (the last three of
the default model, or of the one named by ``?model=NAME``).

``async``: they only read the model serving now, so they are answered on the event loop
without a thread hop, also while a big request is tagged in the worker's thread.
"""

from __future__ import annotations

import os
import re
from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from api.dependencies import ModelDep, ServedDep
from api.schemas import (
    HealthResponse,
    LabelsResponse,
    ModelResponse,
    ModelsResponse,
    ServedModel,
)
from classifier.card import model_card

router = APIRouter(tags=["model"])
# An absolute path (POSIX, home-relative or Windows) at the start of a string or after a
# space, quote, bracket, '=' or ':'
_PATH = re.compile(r"""(?:^|(?<=[\s'"(\[=:]))(?:/|~/|[A-Za-z]:[\\/])[^\s'"()\[\]]*""")
# Sections holding tags, not paths: shown as they are
_TAG_SECTIONS = frozenset({"labels", "labels_dropped", "labels_unlearnable"})


def _hide(value: Any) -> Any:
    if isinstance(value, str):
        return _PATH.sub(lambda m: os.path.basename(m.group().rstrip("/\\")) or "/", value)
    if isinstance(value, dict):
        return {k: _hide(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hide(v) for v in value]
    return value


def public_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """The metadata without file-system paths: corpus files and folders by name only."""
    shown = {k: (v if k in _TAG_SECTIONS else _hide(v)) for k, v in meta.items()}
    corpus = shown.get("corpus")
    if isinstance(corpus, dict):
        if isinstance(corpus.get("paths"), list):
            corpus["paths"] = [os.path.basename(str(p).rstrip("/\\")) for p in corpus["paths"]]
        for skip in corpus.get("skipped") or []:
            if isinstance(skip, dict) and isinstance(skip.get("source"), str):
                skip["source"] = os.path.basename(skip["source"])
    return shown


@router.get("/healthz", response_model=HealthResponse)
async def healthz(served: ServedDep) -> HealthResponse:
    """The service is up, and the version of each model it serves."""
    refs = [m.ref for m in served.values()]
    return HealthResponse(status="ok", model=refs[0], models=refs if len(refs) > 1 else None)


@router.get("/v1/models", response_model=ModelsResponse)
async def models(served: ServedDep) -> ModelsResponse:
    """Every model served: name, version and how many tags, the default first."""
    return ModelsResponse(
        models=[
            ServedModel(
                name=name, version=m.ref.partition("@")[2], labels=len(m.labels), default=i == 0
            )
            for i, (name, m) in enumerate(served.items())
        ]
    )


@router.get("/v1/labels", response_model=LabelsResponse)
async def labels(model: ModelDep) -> LabelsResponse:
    """Every tag the model can return."""
    return LabelsResponse(model=model.ref, labels=list(model.labels))


@router.get("/v1/model", response_model=ModelResponse)
async def model_info(model: ModelDep) -> ModelResponse:
    """The model's metadata: versions, corpus (file names, no paths), configuration,
    thresholds, metrics."""
    meta = public_metadata(model.metadata)
    return ModelResponse(name=meta["name"], version=meta["version"], metadata=meta)


class MarkdownResponse(PlainTextResponse):
    """Markdown text: its media type is documented in the OpenAPI schema as it is sent."""

    media_type = "text/markdown"


@router.get("/v1/model/card", response_class=MarkdownResponse)
async def card(model: ModelDep) -> MarkdownResponse:
    """The model card of the version serving (Markdown): data, settings, metrics, known
    limits; corpus files by name, no paths."""
    return MarkdownResponse(model_card(public_metadata(model.metadata)))
