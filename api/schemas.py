"""Wire schemas of the HTTP API (separate from the library's types)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

MAX_TOP_K = 1000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _clean_text(text: str) -> str:
    if not text.strip():
        raise ValueError("text is empty or only whitespace")
    bad = _CONTROL.search(text)
    if bad:
        raise ValueError(
            f"text contains control character U+{ord(bad.group()):04X} at position {bad.start()}"
        )
    lone = _SURROGATE.search(text)
    if lone:
        raise ValueError(
            f"text contains an unpaired surrogate U+{ord(lone.group()):04X} at position "
            f"{lone.start()} (not a Unicode character)"
        )
    return text


Text = Annotated[str, AfterValidator(_clean_text)]


class PredictRequest(BaseModel):
    """One text (``text``) or several (``texts``) to tag."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [{"text": "各国应加强学校教育，提高女童入学率。", "top_k": 3}]
        },
    )

    text: Text | None = Field(None, description="A document or paragraph, raw or pre-segmented.")
    texts: list[Text] | None = Field(None, min_length=1, description="Several texts, tagged each.")
    top_k: int | None = Field(None, ge=1, le=MAX_TOP_K, description="Most tags per text.")
    threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="Return exactly the tags scoring at least this (may be none). "
        "Default: the model's tuned threshold, and at least one tag.",
    )
    paragraphs: bool = Field(False, description="Also tag each paragraph of each text.")

    @model_validator(mode="after")
    def _one_input(self) -> PredictRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' or 'texts'")
        return self

    def inputs(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


class TagScore(BaseModel):
    tag: str
    score: float = Field(ge=0.0, le=1.0)


class ParagraphResult(BaseModel):
    text: str
    tags: list[TagScore]


class TextResult(BaseModel):
    tags: list[TagScore]
    paragraphs: list[ParagraphResult] | None = None


class PredictResponse(BaseModel):
    model: str = Field(description="The model that answered, as NAME@VERSION.")
    results: list[TextResult]


class LabelsResponse(BaseModel):
    model: str
    labels: list[str]


class HealthResponse(BaseModel):
    status: str
    model: str


class ModelResponse(BaseModel):
    """The model's metadata file, as written at training time."""

    model_config = ConfigDict(extra="allow")
    name: str
    version: str
    metadata: dict[str, Any]
