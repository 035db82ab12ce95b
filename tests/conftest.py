"""Shared fixtures: repository paths and one small model trained once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
VENV_BIN = ROOT / ".venv" / "bin"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def trained_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding one ``default`` model trained on the sample corpus."""
    from training.train import train

    models_dir = tmp_path_factory.mktemp("models")
    train([str(SAMPLE)], models_dir, name="default", jobs=1)
    return models_dir


@pytest.fixture(scope="session")
def trained(trained_models_dir: Path):
    """The loaded session model (a ``LoadedModel``); tests must not mutate it."""
    from classifier.persistence import load_model

    return load_model(trained_models_dir, "default")


@pytest.fixture(scope="session")
def model(trained):
    """The session ``TopicClassifier``."""
    return trained.model


def _write_seed(path: Path, tags: str, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"%%%{tags}\n\n{text}", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def write_seed():
    """A function writing a seed-format document (header, blank line, text) as UTF-8."""
    return _write_seed
