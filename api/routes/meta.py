"""GET /healthz, /v1/labels and /v1/model."""

from __future__ import annotations

from fastapi import APIRouter

from api.dependencies import ModelDep
from api.schemas import HealthResponse, LabelsResponse, ModelResponse

router = APIRouter(tags=["model"])


@router.get("/healthz", response_model=HealthResponse)
def healthz(model: ModelDep) -> HealthResponse:
    """The service is up and has a model loaded."""
    return HealthResponse(status="ok", model=model.ref)


@router.get("/v1/labels", response_model=LabelsResponse)
def labels(model: ModelDep) -> LabelsResponse:
    """Every tag the model can return."""
    return LabelsResponse(model=model.ref, labels=list(model.labels))


@router.get("/v1/model", response_model=ModelResponse)
def model_info(model: ModelDep) -> ModelResponse:
    """The model's metadata: versions, corpus, configuration, thresholds, metrics."""
    meta = model.metadata
    return ModelResponse(name=meta["name"], version=meta["version"], metadata=meta)
