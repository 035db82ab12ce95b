"""Wire schemas of the HTTP API (separate from the library's types).

The request schema is made from the service's settings (``predict_request``), so each limit
is stated once, in ``api.settings.Settings``, and both enforced by validation and written
into the OpenAPI schema.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    create_model,
    model_validator,
)

from api.settings import Settings
from classifier.feedback import LISTS, Feedback, tag_problem
from classifier.registry import valid_name, valid_version
from classifier.workers import model_name

# One rule, used by the validator and written into the OpenAPI schema (so generated clients
# and schema-based tests agree with the service): a text has a character that is neither
# whitespace nor a control character, and no control character except tab and line breaks.
_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
_SPACES = r"\t\n\r\x0b\x0c\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
TEXT_PATTERN = rf"^[^{_CONTROLS}]*[^{_SPACES}{_CONTROLS}][^{_CONTROLS}]*$"
_TEXT_OK = re.compile(TEXT_PATTERN)
_CONTROL = re.compile(rf"[{_CONTROLS}]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _clean_text(text: str) -> str:
    bad = _CONTROL.search(text)
    if bad:
        raise ValueError(
            f"text contains control character U+{ord(bad.group()):04X} at position {bad.start()}"
        )
    if not _TEXT_OK.match(text):
        raise ValueError("text is empty or only whitespace")
    lone = _SURROGATE.search(text)
    if lone:
        raise ValueError(
            f"text contains an unpaired surrogate U+{ord(lone.group()):04X} at position "
            f"{lone.start()} (not a Unicode character)"
        )
    return text


def _integral(value: object) -> object:
    """JSON has one number type: 12.0 is the integer 12 (JSON Schema agrees)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class PredictRequest(BaseModel):
    """One text (``text``) or several (``texts``) to tag; the limits come from the settings
    (see ``predict_request``)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [{"text": "各国应加强学校教育，提高女童入学率。", "top_k": 3}],
            "oneOf": [{"required": ["text"]}, {"required": ["texts"]}],
        },
    )

    # Not nullable: leave the field out instead (exactly one of the two is required).
    text: str = Field(None, description="A document or paragraph, raw or pre-segmented.")  # type: ignore[assignment]
    texts: list[str] = Field(None, min_length=1, description="Several texts, tagged each.")  # type: ignore[assignment]
    top_k: Annotated[int | None, BeforeValidator(_integral)] = Field(
        None, ge=1, description="Most tags per text."
    )
    threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="Return exactly the tags scoring at least this (may be none). "
        "Default: the model's tuned threshold, and at least one tag.",
    )
    paragraphs: bool = Field(False, description="Also tag each paragraph of each text.")
    model: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="The model to tag with, by name (GET /v1/models); default: the first "
        "served. A name not served is refused (422) with the served ones named.",
    )
    explain: bool = Field(
        False,
        description="Give each tag its evidence: the terms of the text that raised its score "
        "most, with where they are written (per paragraph too with 'paragraphs').",
    )

    @model_validator(mode="after")
    def _one_input(self) -> PredictRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' or 'texts'")
        return self

    def inputs(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


def text_field(max_chars: int) -> Any:
    """A request's text: at most ``max_chars`` characters, not blank, no control characters
    (checked and documented in the schema)."""
    return Annotated[
        str,
        StringConstraints(max_length=max_chars),
        AfterValidator(_clean_text),
        WithJsonSchema({"type": "string", "pattern": TEXT_PATTERN, "maxLength": max_chars}),
    ]


def predict_request(settings: Settings) -> type[PredictRequest]:
    """``PredictRequest`` with this service's limits on text length, batch size and top_k,
    and the names of the models it serves."""
    text = text_field(settings.max_text_chars)
    names = [model_name(ref) for ref in settings.served()]
    fields = PredictRequest.model_fields
    return create_model(  # type: ignore[no-any-return,call-overload]
        "PredictRequest",
        __base__=PredictRequest,
        __doc__=PredictRequest.__doc__,
        text=(text, Field(None, description=fields["text"].description)),
        texts=(
            list[text],  # type: ignore[valid-type]
            Field(
                None,
                min_length=1,
                max_length=settings.max_batch,
                description=fields["texts"].description,
            ),
        ),
        top_k=(
            Annotated[int | None, BeforeValidator(_integral)],
            Field(None, ge=1, le=settings.max_top_k, description=fields["top_k"].description),
        ),
        model=(  # the served names, documented as the schema's choices
            Annotated[str | None, WithJsonSchema({"type": "string", "enum": names})],
            Field(None, min_length=1, max_length=64, description=fields["model"].description),
        ),
    )


class Evidence(BaseModel):
    """A term of the text and how much it raised a tag's score."""

    term: str = Field(description="A word, word pair or character n-gram, as the model reads it.")
    contribution: float = Field(
        gt=0.0, description="Its TF-IDF value times the tag's weight (decision value units)."
    )
    spans: list[tuple[int, int]] = Field(
        description="Where it is written: [start, end) offsets into the text as sent "
        "(text[start:end] is the term as written there), at most 16, in order."
    )


class NameEvidence(Evidence):
    """A term the text shares with a tag's name, and how much it raised the tag's score."""

    contribution: float = Field(
        gt=0.0,
        description="Its part of the rise the tag's name gave the document's score (logit "
        "units): mean TF-IDF value over the paragraphs × the name's value × the name weight.",
    )


class TagScore(BaseModel):
    tag: str
    score: float = Field(ge=0.0, le=1.0)
    evidence: list[Evidence] | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="With 'explain': the terms that raised this tag's score most, highest first.",
    )
    name_evidence: list[NameEvidence] | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="With 'explain', for a document's tag whose name the text shares terms "
        "with (models that read the labels' names): those terms, highest first.",
    )


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
    model: str = Field(description="The default model, as NAME@VERSION.")
    models: list[str] | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="With several models served: each, as NAME@VERSION, the default first.",
    )


class ServedModel(BaseModel):
    name: str
    version: str
    labels: int = Field(description="How many tags it can return.")
    default: bool = Field(description="Whether a request naming no model gets this one.")


class ModelsResponse(BaseModel):
    models: list[ServedModel] = Field(description="Every model served, the default first.")


class ModelResponse(BaseModel):
    """The model's metadata file, as written at training time."""

    model_config = ConfigDict(extra="allow")
    name: str
    version: str
    metadata: dict[str, Any]


def _clean_tag(tag: str) -> str:
    problem = tag_problem(tag)
    if problem is not None:
        raise ValueError(problem)
    return tag


def _clean_id(doc_id: str) -> str:
    if not doc_id.strip() or doc_id != doc_id.strip():
        raise ValueError("id is empty or has leading or trailing whitespace")
    if bad := _ID_BAD.search(doc_id):
        raise ValueError(f"id contains U+{ord(bad.group()):04X} at position {bad.start()}")
    return doc_id


def _model_ref(ref: str) -> str:
    name, at, version = ref.partition("@")
    if not (at and valid_name(name) and valid_version(version)):
        raise ValueError("model must be NAME@VERSION, the model that made the suggestions")
    return ref


_ID_BAD = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class FeedbackRequest(BaseModel):
    """An editor's verdict on the tags suggested for a text; the limits come from the
    settings (see ``feedback_request``)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "report-17",
                    "text": "各国应加强学校教育，提高女童入学率。",
                    "accepted": ["EDUCATION"],
                    "rejected": ["HUMAN RIGHTS"],
                    "added": ["GIRLS"],
                    "model": "default@20260101-120000-0123abcd",
                }
            ]
        },
    )

    id: str | None = Field(
        None, description="The document's id (a corpus document's id overrides its tags)."
    )
    text: str = Field(description="The text the suggestions were made for.")
    accepted: list[str] = Field(default_factory=list, description="Suggestions kept.")
    rejected: list[str] = Field(default_factory=list, description="Suggestions refused.")
    added: list[str] = Field(default_factory=list, description="Tags the model missed.")
    model: str = Field(description="The model that suggested, as NAME@VERSION.")

    def record(self) -> Feedback:
        return Feedback(
            text=self.text,
            model=self.model,
            accepted=tuple(self.accepted),
            rejected=tuple(self.rejected),
            added=tuple(self.added),
            id=self.id,
        )


def feedback_request(settings: Settings) -> type[FeedbackRequest]:
    """``FeedbackRequest`` with this service's limits on text, id, tags and their number."""
    text = text_field(settings.max_text_chars)
    tag = Annotated[
        str,
        StringConstraints(min_length=1, max_length=settings.max_tag_chars),
        AfterValidator(_clean_tag),
    ]
    doc_id = Annotated[
        str,
        StringConstraints(min_length=1, max_length=settings.max_id_chars),
        AfterValidator(_clean_id),
    ]
    fields = FeedbackRequest.model_fields
    tags = {
        name: (
            list[tag],  # type: ignore[valid-type]
            Field(
                default_factory=list,
                max_length=settings.max_feedback_tags,
                description=fields[name].description,
            ),
        )
        for name in LISTS
    }
    return create_model(  # type: ignore[no-any-return,call-overload]
        "FeedbackRequest",
        __base__=FeedbackRequest,
        __doc__=FeedbackRequest.__doc__,
        id=(doc_id | None, Field(None, description=fields["id"].description)),
        text=(text, Field(description=fields["text"].description)),
        model=(
            Annotated[str, StringConstraints(max_length=200), AfterValidator(_model_ref)],
            Field(description=fields["model"].description),
        ),
        **tags,
    )


class FeedbackResponse(BaseModel):
    status: str
    seq: int = Field(description="The record's number in the store (later records: larger).")
