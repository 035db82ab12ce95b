"""POST /v1/feedback in process: the editor token (closed when unset, checked before the
body), every field validated with a 422 naming it, records stored whole in SQLite and
PostgreSQL, and a store failure a 503, never a 500."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from api.main import create_app
from api.settings import Settings
from classifier.feedback import open_store
from classifier.registry import load_model, new_version, save_model

EDITOR = "editor-token"
ADMIN = "admin-token"
AUTH = {"Authorization": f"Bearer {EDITOR}"}


@pytest.fixture
def models(tmp_path: Path, trained_models_dir: Path) -> Path:
    shutil.copytree(trained_models_dir, tmp_path / "models")
    return tmp_path / "models"


def client(models: Path, db: str, token: str | None = EDITOR, **limits: int) -> TestClient:
    settings = Settings(
        models_dir=models, editor_token=token, admin_token=ADMIN, feedback_db=db, **limits
    )
    return TestClient(create_app(settings))


def good(c: TestClient) -> dict[str, object]:
    model = c.get("/healthz").json()["model"]
    labels = c.get("/v1/labels").json()["labels"]
    return {
        "id": "doc-7",
        "text": "各国应加强学校教育，提高女童入学率。",
        "accepted": labels[:2],
        "rejected": [labels[2]],
        "added": ["新 标签"],
        "model": model,
    }


def counted(c: TestClient) -> float:
    """tagger_feedback_total in /metrics (records stored by this process)."""
    found = re.search(r"^tagger_feedback_total (\S+)$", c.get("/metrics").text, re.M)
    assert found is not None
    return float(found.group(1))


def test_a_record_is_stored_whole_and_counted(models: Path, feedback_db: str) -> None:
    with client(models, feedback_db) as c:
        before = counted(c)
        body = good(c)
        response = c.post("/v1/feedback", json=body, headers=AUTH)
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "stored"
        del body["id"]  # optional
        assert c.post("/v1/feedback", json=body, headers=AUTH).status_code == 201
        assert counted(c) == before + 2
    store = open_store(feedback_db)
    first, second = store.records()
    assert store.count() == 2
    store.close()
    assert (first.id, second.id) == ("doc-7", None)
    assert (first.text, first.model) == (body["text"], body["model"])
    assert [list(first.accepted), list(first.rejected), list(first.added)] == [
        body["accepted"],
        body["rejected"],
        body["added"],
    ]


def test_closed_without_an_editor_token(models: Path, tmp_path: Path) -> None:
    db = tmp_path / "never.sqlite3"
    with client(models, str(db), token=None) as c:
        response = c.post("/v1/feedback", json={}, headers=AUTH)
    assert response.status_code == 403
    assert "TAGGER_EDITOR_TOKEN" in response.json()["detail"]
    assert not db.exists()  # no store is opened while feedback is disabled


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": f"Bearer {ADMIN}"},  # the admin token is not an editor's
        {"Authorization": f"Basic {EDITOR}"},
        {"Authorization": "Bearer wrong"},
    ],
)
def test_wrong_token_is_401_before_the_body_is_read(
    models: Path, tmp_path: Path, headers: dict[str, str]
) -> None:
    with client(models, str(tmp_path / "f.sqlite3")) as c:
        too_big = c.post("/v1/feedback", content=b"x" * (5 << 20), headers=headers)
        not_json = c.post("/v1/feedback", content=b"<xml/>", headers=headers)
    for response in (too_big, not_json):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


def test_editor_and_admin_tokens_must_differ() -> None:
    with pytest.raises(ValidationError, match="must differ"):
        Settings(editor_token="same", admin_token="same")


LONG = "长" * 21


@pytest.fixture(scope="module")
def small(trained_models_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """One app with small limits for the validation cases (none of them stores anything)."""
    db = tmp_path_factory.mktemp("fb") / "f.sqlite3"
    limits = {"max_text_chars": 1000, "max_id_chars": 20, "max_tag_chars": 20}
    with client(trained_models_dir, str(db), max_feedback_tags=5, **limits) as c:
        yield c


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"text": None}, "text", "Field required"),
        ({"text": 5}, "text", "string"),
        ({"text": " \n "}, "text", "empty or only whitespace"),
        ({"text": "字" * 1001}, "text", "at most 1000"),
        ({"text": "a\x00b"}, "text", "U+0000"),
        ({"text": "a\ud800"}, "text", "unicode"),
        ({"added": ["a\udfff"]}, "added", "unicode"),
        ({"id": ""}, "id", "at least 1"),
        ({"id": "a" * 21}, "id", "at most 20"),
        ({"id": "a\x00"}, "id", "U+0000"),
        ({"id": 7}, "id", "string"),
        ({"accepted": "EDUCATION"}, "accepted", "list"),
        ({"added": ["A|B"]}, "added", "contains '|'"),
        ({"added": [" A"]}, "added", "whitespace"),
        ({"added": [""]}, "added", "at least 1"),
        ({"added": [LONG]}, "added", "at most 20"),
        ({"added": [f"T{i}" for i in range(6)]}, "added", "at most 5"),
        ({"added": [1]}, "added", "string"),
        ({"accepted": ["NOT A LABEL"]}, "accepted", "not among the labels"),
        ({"rejected": ["NOT A LABEL"]}, "rejected", "not among the labels"),
        ({"added": ["X", "X"]}, "added", "twice"),
        ({"model": "default"}, "model", "NAME@VERSION"),
        ({"model": "default@20000101-000000-00000000"}, "model", "not found"),
        ({"model": "../x@20000101-000000-00000000"}, "model", "NAME@VERSION"),
        ({"extra": 1}, "extra", "not permitted"),
    ],
)
def test_every_field_is_checked_and_named(
    small: TestClient, change: dict[str, object], field: str, says: str
) -> None:
    body = good(small)
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    raw = json.dumps(body).encode()  # ASCII escapes: a lone surrogate can be sent
    headers = {**AUTH, "content-type": "application/json"}
    response = small.post("/v1/feedback", content=raw, headers=headers)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    text = str(detail)
    assert field in text and says in text, text


def test_a_conflict_between_lists_names_both(models: Path, tmp_path: Path) -> None:
    with client(models, str(tmp_path / "f.sqlite3")) as c:
        body = good(c)
        body["rejected"] = [body["accepted"][0]]  # type: ignore[index]
        response = c.post("/v1/feedback", json=body, headers=AUTH)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "rejected"] and "also in accepted" in error["msg"]


def test_another_version_s_labels_are_checked(models: Path, tmp_path: Path) -> None:
    """Suggestions made by a version that no longer serves are still checked against it."""
    loaded = load_model(models, "default")
    meta = {k: v for k, v in loaded.metadata.items() if k not in ("name", "version", "saved_ns")}
    folder = save_model(models, "default", loaded.model, meta, new_version("e" * 64))
    with client(models, str(tmp_path / "f.sqlite3")) as c:
        body = good(c)
        body["model"] = f"default@{folder.name}"
        assert c.post("/v1/feedback", json=body, headers=AUTH).status_code == 201


def test_a_store_that_fails_is_503(models: Path, tmp_path: Path) -> None:
    db = tmp_path / "f.sqlite3"
    with client(models, str(db)) as c:
        body = good(c)
        with sqlite3.connect(db) as raw:
            raw.execute("DROP TABLE feedback")
        response = c.post("/v1/feedback", json=body, headers=AUTH)
    assert response.status_code == 503
    assert "cannot write to the feedback store" in response.json()["detail"]


_TAGS = st.lists(
    st.one_of(
        st.sampled_from(["EDUCATION", "FOOD SECURITY", "X", "a|b", " ", "", "\x00"]),
        st.text(max_size=25),
    ),
    max_size=7,
)
_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30))


@settings(max_examples=150)
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "id": st.one_of(st.text(max_size=25), _VALUES),
            "text": st.one_of(st.text(max_size=40), _VALUES),
            "accepted": st.one_of(_TAGS, _VALUES),
            "rejected": st.one_of(_TAGS, _VALUES),
            "added": st.one_of(_TAGS, _VALUES),
            "model": st.one_of(st.sampled_from(["default@latest", "a@b"]), _VALUES),
            "other": _VALUES,
        },
    )
)
def test_any_body_is_stored_or_refused_never_a_server_error(small: TestClient, body: dict) -> None:
    if body.get("model") == "default@latest":
        body["model"] = small.get("/healthz").json()["model"]
    raw = json.dumps(body).encode()  # NaN and lone surrogates included (ASCII escapes)
    response = small.post(
        "/v1/feedback", content=raw, headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code in (201, 422), response.text
    if response.status_code == 422:
        assert all(e["loc"][0] == "body" for e in response.json()["detail"])
