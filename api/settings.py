"""Service settings, read from ``TAGGER_*`` environment variables (typed, with limits)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """What the service loads and the limits it enforces on requests."""

    model_config = SettingsConfigDict(env_prefix="TAGGER_", extra="ignore")

    models_dir: Path = Path("models")
    model: str = "default"
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_text_chars: int = Field(200_000, ge=1)
    max_batch: int = Field(256, ge=1)
    max_top_k: int = Field(100, ge=1)
    # Bearer token of POST /v1/admin/reload; the endpoint is disabled when unset.
    admin_token: SecretStr | None = None


@lru_cache
def get_settings() -> Settings:
    return Settings()
