"""Service settings, read from ``TAGGER_*`` environment variables (typed, with limits).

Every limit the service enforces is stated here, once: the request schema, the middlewares,
the HTTP server's timeouts and the tagging budget all read it from ``Settings``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from classifier.feedback import DEFAULT_DB

# The most models one service serves (each worker holds every one of them)
MAX_MODELS = 16


class Settings(BaseSettings):
    """What the service loads and the limits it enforces on requests."""

    model_config = SettingsConfigDict(env_prefix="TAGGER_", extra="ignore")

    models_dir: Path = Path("models")
    model: str = "default"
    # Several models served side by side (``TAGGER_MODELS=subjects,places``, NAME[@VERSION]
    # each, distinct names): the first is the default of every request. Empty: ``model``.
    models: Annotated[list[str], NoDecode] = Field(default_factory=list, max_length=MAX_MODELS)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_text_chars: int = Field(200_000, ge=1)
    max_batch: int = Field(256, ge=1)
    max_top_k: int = Field(100, ge=1)
    # The longest a request may hold a worker, waiting for its turn included: past it the
    # tagging stops between two slices of the work and the answer is a 503.
    request_budget_s: float = Field(20.0, gt=0, le=3600)
    # From a connection's first byte (or the end of the previous answer) to the end of the
    # request headers; then from the headers to the last byte of the body (408 past it).
    header_timeout_s: float = Field(10.0, gt=0, le=600)
    body_timeout_s: float = Field(20.0, gt=0, le=600)
    # Under tagger serve's supervisor: a worker whose event loop has not run for this long
    # (stuck in one step that no checkpoint reaches, or stopped) is killed and restarted.
    stall_timeout_s: float = Field(120.0, ge=1, le=3600)
    # GET /metrics and the request counters (api.metrics); off only to measure their cost
    metrics: bool = True
    # Bearer token of POST /v1/admin/*; the endpoints are disabled when unset or blank.
    admin_token: SecretStr | None = None
    # Bearer token of POST /v1/feedback (editors, not administrators); disabled when unset.
    editor_token: SecretStr | None = None
    # Where feedback is kept: a SQLite file path or a database URL (postgresql://…).
    feedback_db: str = Field(str(DEFAULT_DB), min_length=1)
    # A feedback record: tags in each of accepted, rejected and added; characters of a tag
    # and of a document id.
    max_feedback_tags: int = Field(100, ge=1, le=1000)
    max_tag_chars: int = Field(200, ge=1, le=10_000)
    max_id_chars: int = Field(200, ge=1, le=10_000)

    @field_validator("models", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("models", mode="after")
    @classmethod
    def _distinct_names(cls, models: list[str]) -> list[str]:
        names = [m.partition("@")[0] for m in models]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"each model is served once, by name: {', '.join(twice)} twice")
        return models

    def served(self) -> list[str]:
        """The models to serve, NAME[@VERSION] each, the default first."""
        return list(self.models) or [self.model]

    @field_validator("admin_token", "editor_token", mode="after")
    @classmethod
    def _blank_token_is_none(cls, token: SecretStr | None) -> SecretStr | None:
        if token is None or not token.get_secret_value().strip():
            return None
        return token

    @model_validator(mode="after")
    def _tokens_differ(self) -> Settings:
        admin, editor = self.admin_token, self.editor_token
        if admin and editor and admin.get_secret_value() == editor.get_secret_value():
            raise ValueError("TAGGER_EDITOR_TOKEN must differ from TAGGER_ADMIN_TOKEN")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
