"""POST /v1/predict: tag texts, optionally per paragraph."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError

from api.dependencies import ModelDep, SettingsDep
from api.schemas import ParagraphResult, PredictRequest, PredictResponse, TagScore, TextResult
from api.settings import Settings
from classifier.model import Prediction

router = APIRouter(prefix="/v1", tags=["predict"])


def check_limits(request: PredictRequest, settings: Settings) -> None:
    """Apply the configured batch, length and top-k limits; name the offending field."""
    errors = []
    if request.texts is not None and len(request.texts) > settings.max_batch:
        errors.append(
            _error(("texts",), f"at most {settings.max_batch} texts per request", "too_long")
        )
    for loc, text in _located(request):
        if len(text) > settings.max_text_chars:
            errors.append(
                _error(
                    loc, f"text longer than {settings.max_text_chars} characters", "string_too_long"
                )
            )
    if request.top_k is not None and request.top_k > settings.max_top_k:
        errors.append(
            _error(("top_k",), f"top_k must be at most {settings.max_top_k}", "less_than_equal")
        )
    if errors:
        raise RequestValidationError(errors[:10])


def _located(request: PredictRequest) -> list[tuple[tuple[str | int, ...], str]]:
    if request.text is not None:
        return [(("text",), request.text)]
    return [(("texts", i), t) for i, t in enumerate(request.texts or [])]


def _error(loc: tuple[str | int, ...], msg: str, kind: str) -> dict[str, object]:
    return {"loc": ("body", *loc), "msg": msg, "type": kind}


def _result(pred: Prediction) -> TextResult:
    tags = [TagScore(tag=t.tag, score=t.score) for t in pred.tags]
    if pred.paragraphs is None:
        return TextResult(tags=tags)
    return TextResult(
        tags=tags,
        paragraphs=[
            ParagraphResult(text=p.text, tags=[TagScore(tag=t.tag, score=t.score) for t in p.tags])
            for p in pred.paragraphs
        ],
    )


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses={
        400: {"description": "Invalid Content-Length header."},
        413: {"description": "Request body larger than the configured limit."},
    },
)
def predict(request: PredictRequest, model: ModelDep, settings: SettingsDep) -> PredictResponse:
    """Tag one text or a batch; scores are in [0, 1]. Runs in the thread pool, off the loop."""
    check_limits(request, settings)
    predictions = model.model.predict(
        request.inputs(),
        top_k=request.top_k,
        threshold=request.threshold,
        paragraphs=request.paragraphs,
    )
    return PredictResponse(model=model.ref, results=[_result(p) for p in predictions])
