"""Shared fixtures: the test corpus and one small model trained once per session.

The tests train on ``tests/data/sample`` (72 documents, 8 tags), a small corpus kept for
them alone; ``data/sample`` is the larger demo corpus ``make run`` trains on, free to change
without touching a test."""

from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "sample"  # the tests' corpus, not the demo's
_DATABASES = itertools.count(1)  # names of the PostgreSQL databases made for tests

# Nothing is written into the repository: no example database, and hypothesis's own caches
# go to a per-user temporary folder rather than ./.hypothesis.
set_hypothesis_home_dir(
    os.path.join(tempfile.gettempdir(), f"tagger-tests-hypothesis-{os.getuid()}")
)
settings.register_profile("tagger", database=None, deadline=None)  # shared CI machines are slow
settings.load_profile("tagger")


@pytest.fixture(autouse=True)
def _no_tagger_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set the TAGGER_* variables they need; none leaks in from the caller's shell."""
    for name in [n for n in os.environ if n.startswith("TAGGER_")]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def dask_client():
    """A client of a LocalCluster of two worker processes, started once for the tests that
    ask for it (skipped without dask.distributed)."""
    pytest.importorskip("distributed")
    from classifier.cluster import connect

    with connect("local:2") as client:
        yield client


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
    from classifier.registry import load_model

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


@pytest.fixture(scope="session")
def postgres_cluster():
    """The URL of a throw-away PostgreSQL cluster, started once a session (tests/pgcluster.py);
    skipped when PostgreSQL or psycopg is missing, failing instead under CI."""
    from pgcluster import INSTALL_HINT, Cluster, server_bin, unavailable, wait_ready

    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("psycopg is not installed: pip install -e '.[test]'")
    bindir = server_bin()
    if bindir is None:
        unavailable(f"no PostgreSQL server binaries: {INSTALL_HINT}")
    cluster = Cluster(bindir)
    try:
        url = cluster.start()
        wait_ready(url)
    except (RuntimeError, OSError) as exc:
        cluster.stop()
        unavailable(f"the throw-away cluster did not start: {exc}")
    yield url
    cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: str, request: pytest.FixtureRequest) -> str:
    """A new empty database in the session's cluster, for one test."""
    from pgcluster import fresh_database

    return fresh_database(postgres_cluster, f"t{next(_DATABASES)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def feedback_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A feedback store target of each kind: a SQLite file path, a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "feedback.sqlite3")
    return str(request.getfixturevalue("postgres_url"))


# A second vocabulary over the same documents (issue 13.8, several models in one service):
# each of the sample's eight tags belongs to one of three sectors.
SECTORS = {
    "WOMEN'S RIGHTS": "SOCIAL",
    "HUMAN RIGHTS": "SOCIAL",
    "EDUCATION": "SOCIAL",
    "PUBLIC HEALTH": "SOCIAL",
    "ECONOMIC DEVELOPMENT": "ECONOMY",
    "FOOD SECURITY": "ECONOMY",
    "ENVIRONMENT": "ECONOMY",
    "PEACEKEEPING OPERATIONS": "SECURITY",
}


@pytest.fixture(scope="session")
def two_models_dir(tmp_path_factory: pytest.TempPathFactory, trained_models_dir: Path) -> Path:
    """A models folder with the session's ``default`` model and ``sectors``, trained on the
    sample's documents with their tags mapped to three sectors."""
    import shutil

    from training.train import train

    corpus = tmp_path_factory.mktemp("sectors-corpus")
    for path in sorted(SAMPLE.glob("*.txt")):
        header, _, text = path.read_text(encoding="utf-8").partition("\n\n")
        tags = {SECTORS[t] for t in header.removeprefix("%%%").split("|") if t}
        _write_seed(corpus / path.name, "|".join(sorted(tags)), text)
    models_dir = tmp_path_factory.mktemp("two-models") / "models"
    shutil.copytree(trained_models_dir, models_dir)
    train([str(corpus)], models_dir, name="sectors", jobs=1)
    return models_dir
