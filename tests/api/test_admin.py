"""POST /v1/admin/reload: token, verification, atomic swap, old model kept on failure."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from classifier.artifact import ARRAYS_FILE, FORMAT_VERSION, META_FILE
from classifier.registry import load_model, new_version, promote, save_model

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def models(tmp_path: Path, trained_models_dir: Path) -> Path:
    """A private copy of the session's models folder (tests here add versions to it)."""
    shutil.copytree(trained_models_dir, tmp_path / "models")
    return tmp_path / "models"


def second_version(models: Path) -> str:
    loaded = load_model(models, "default")
    keep = {k: v for k, v in loaded.metadata.items() if k not in ("name", "version", "saved_ns")}
    folder = save_model(models, "default", loaded.model, keep, new_version("b" * 64))
    return f"default@{folder.name}"


def client(models: Path, token: str | None = TOKEN) -> TestClient:
    return TestClient(create_app(Settings(models_dir=models, model="default", admin_token=token)))


def test_disabled_without_a_token(models: Path) -> None:
    with client(models, token=None) as c:
        response = c.post("/v1/admin/reload", headers=AUTH)
    assert response.status_code == 404
    assert "TAGGER_ADMIN_TOKEN" in response.json()["detail"]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}]
)
def test_wrong_or_missing_token_is_401(models: Path, headers: dict[str, str]) -> None:
    with client(models) as c:
        response = c.post("/v1/admin/reload", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_reload_swaps_to_the_requested_version(models: Path) -> None:
    with client(models) as c:
        before = c.get("/healthz").json()["model"]
        new = second_version(models)
        response = c.post("/v1/admin/reload", headers=AUTH, json={"model": new})
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "reloaded", "model": new, "previous": before}
        assert c.get("/healthz").json()["model"] == new
        assert c.post("/v1/predict", json={"text": "学校教育"}).json()["model"] == new


def test_reload_gives_back_the_memory_of_the_replaced_model(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import platform

    from api import loading

    if platform.libc_ver()[0] == "glibc":
        assert loading._malloc_trim() is not None
    trims: list[int] = []
    monkeypatch.setattr(loading, "_malloc_trim", lambda: trims.append)
    with client(models) as c:
        new = second_version(models)
        assert c.post("/v1/admin/reload", headers=AUTH, json={"model": new}).status_code == 200
        assert trims == [0]
        bad = c.post(
            "/v1/admin/reload", headers=AUTH, json={"model": "default@20000101-000000-00000000"}
        )
        assert bad.status_code == 404 and trims == [0]  # nothing swapped, nothing to give back


def test_reload_without_body_takes_the_latest_version(models: Path) -> None:
    """``latest`` is the promoted version: a version only saved is a candidate."""
    with client(models) as c:
        new = second_version(models)
        assert c.post("/v1/admin/reload", headers=AUTH).json()["model"] != new
        promote(models, new)
        response = c.post("/v1/admin/reload", headers=AUTH)
        assert response.status_code == 200
        assert response.json()["model"] == new


def test_tampered_version_is_refused_and_the_old_one_keeps_serving(models: Path) -> None:
    with client(models) as c:
        before = c.get("/healthz").json()["model"]
        new = second_version(models)
        path = models / "default" / new.split("@")[1] / ARRAYS_FILE
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        response = c.post("/v1/admin/reload", headers=AUTH, json={"model": new})
        assert response.status_code == 409
        assert "sha256" in response.json()["detail"] and before in response.json()["detail"]
        assert c.get("/healthz").json()["model"] == before
        assert c.post("/v1/predict", json={"text": "学校教育"}).status_code == 200


def test_wrong_format_version_is_refused(models: Path) -> None:
    with client(models) as c:
        new = second_version(models)
        meta = models / "default" / new.split("@")[1] / META_FILE
        text = meta.read_text()
        meta.write_text(text.replace(f'"format_version": {FORMAT_VERSION}', '"format_version": 99'))
        response = c.post("/v1/admin/reload", headers=AUTH, json={"model": new})
        assert response.status_code == 409
        assert "format version" in response.json()["detail"]


@pytest.mark.parametrize("ref", ["../outside", "default@../../etc", "/etc/passwd", "a/b"])
def test_paths_are_never_taken_from_the_request(models: Path, ref: str) -> None:
    with client(models) as c:
        response = c.post("/v1/admin/reload", headers=AUTH, json={"model": ref})
    assert response.status_code == 422


def test_unknown_version_is_404_and_nothing_changes(models: Path) -> None:
    with client(models) as c:
        before = c.get("/healthz").json()["model"]
        response = c.post(
            "/v1/admin/reload", headers=AUTH, json={"model": "default@20000101-000000-00000000"}
        )
        assert response.status_code == 404
        assert c.get("/healthz").json()["model"] == before


def test_requests_during_a_swap_all_succeed(models: Path) -> None:
    """Clients predicting while versions are swapped back and forth see no failure."""
    with client(models) as c:
        first = c.get("/healthz").json()["model"]
        second = second_version(models)
        failures: list[int] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                r = c.post("/v1/predict", json={"texts": ["学校教育", "疫苗接种"]})
                if r.status_code != 200 or r.json()["model"] not in (first, second):
                    failures.append(r.status_code)

        workers = [threading.Thread(target=load) for _ in range(4)]
        for w in workers:
            w.start()
        for ref in [second, first] * 5:
            assert c.post("/v1/admin/reload", headers=AUTH, json={"model": ref}).status_code == 200
        stop.set()
        for w in workers:
            w.join()
        assert failures == []
