"""The HTTP API: predictions, metadata routes, input validation, size limits, start-up."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

from api.main import create_app
from api.settings import Settings
from classifier.errors import IncompatibleModelError, ModelNotFoundError

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx.*")  # starlette's note about httpx2
    from fastapi.testclient import TestClient

EDU = "各国应加强学校教育，提高女童入学率，改善农村地区的教学条件和师资水平。"
EDU_SEGMENTED = (
    "各国 应 加强 学校 教育 ， 提高 女童 入学率 ， 改善 农村 地区 的 教学 条件 和 师资 水平 。"
)
PKO = "维和特派团在报告所述期间记录了侵犯人权事件，安全理事会延长了特派团的任务期限。"
TIGHT = {"max_body_bytes": 2048, "max_text_chars": 300, "max_batch": 3, "max_top_k": 5}
# the documented defaults, spelled out so that no TAGGER_* variable can change them
DEFAULTS = {
    "max_body_bytes": 4 * 1024 * 1024,
    "max_text_chars": 200_000,
    "max_batch": 256,
    "max_top_k": 100,
}


def test_documented_defaults() -> None:
    fields = Settings.model_fields
    assert {k: fields[k].default for k in DEFAULTS} == DEFAULTS


@pytest.fixture(scope="module")
def client(trained_models_dir: Path):
    settings = Settings(models_dir=trained_models_dir, model="default", **DEFAULTS)
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def tight_client(trained_models_dir: Path):
    settings = Settings(models_dir=trained_models_dir, model="default", **TIGHT)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def post(client, body: bytes | str, content_type: str = "application/json"):
    if isinstance(body, str):
        body = body.encode("utf-8")
    return client.post("/v1/predict", content=body, headers={"content-type": content_type})


def tag_scores(result: dict) -> list[tuple[str, float]]:
    return [(t["tag"], t["score"]) for t in result["tags"]]


# --- predictions --------------------------------------------------------------------------


def test_predict_one_text(client, trained) -> None:
    response = client.post("/v1/predict", json={"text": EDU})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == trained.ref
    (result,) = body["results"]
    assert result["tags"][0]["tag"] == "EDUCATION"
    assert all(0.0 <= t["score"] <= 1.0 for t in result["tags"])
    assert result.get("paragraphs") is None
    (expected,) = trained.model.predict([EDU])
    assert tag_scores(result) == [(t.tag, t.score) for t in expected.tags]


def test_predict_several_texts_in_order(client) -> None:
    response = client.post("/v1/predict", json={"texts": [PKO, EDU, PKO]})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["tags"][0]["tag"] for r in results] == [
        "PEACEKEEPING OPERATIONS",
        "EDUCATION",
        "PEACEKEEPING OPERATIONS",
    ]
    assert results[0] == results[2]


def test_big_batches_are_tagged_off_the_event_loop_with_the_same_answers(client) -> None:
    """Over INLINE_CHARS a request is tagged in the worker thread: same answers, in order,
    also when several such requests come at once."""
    from concurrent.futures import ThreadPoolExecutor

    from api.routes.predict import INLINE_CHARS

    texts = [EDU, PKO] * (INLINE_CHARS // min(len(EDU), len(PKO)))
    assert sum(map(len, texts)) > INLINE_CHARS
    singles = {t: client.post("/v1/predict", json={"text": t}).json()["results"][0] for t in texts}
    with ThreadPoolExecutor(4) as pool:
        responses = list(
            pool.map(lambda _: client.post("/v1/predict", json={"texts": texts}), range(4))
        )
    for response in responses:
        assert response.status_code == 200
        assert response.json()["results"] == [singles[t] for t in texts]


def test_predict_top_k_and_threshold(client) -> None:
    def tags(**options):
        response = client.post("/v1/predict", json={"text": PKO, **options})
        assert response.status_code == 200, response.text
        return response.json()["results"][0]["tags"]

    assert len(tags(top_k=1)) == 1
    three = tags(top_k=3, threshold=0.0)
    assert len(three) == 3
    assert [t["score"] for t in three] == sorted((t["score"] for t in three), reverse=True)
    assert all(t["score"] >= 0.5 for t in tags(threshold=0.5))
    assert tags(threshold=0.5) == [t for t in tags(threshold=0.0) if t["score"] >= 0.5]
    response = client.post("/v1/predict", json={"text": "xyz", "threshold": 1.0})
    assert response.json()["results"][0]["tags"] == []


def test_predict_paragraphs(client, model) -> None:
    # each paragraph long enough (min_paragraph_chars) to stand on its own
    edu, pko = EDU * 9, PKO * 9
    text = f"{edu}\n{pko}"
    response = client.post("/v1/predict", json={"text": text, "paragraphs": True, "top_k": 1})
    assert response.status_code == 200
    (result,) = response.json()["results"]
    assert [p["text"] for p in result["paragraphs"]] == model.split(text) == [edu, pko]
    assert [p["tags"][0]["tag"] for p in result["paragraphs"]] == [
        "EDUCATION",
        "PEACEKEEPING OPERATIONS",
    ]
    assert all(len(p["tags"]) == 1 for p in result["paragraphs"])


def test_raw_and_presegmented_text_answer_alike(client) -> None:
    raw = client.post("/v1/predict", json={"text": EDU, "threshold": 0.0}).json()
    seg = client.post("/v1/predict", json={"text": EDU_SEGMENTED, "threshold": 0.0}).json()
    assert raw["results"] == seg["results"]


# --- metadata routes ----------------------------------------------------------------------


def test_labels(client, trained) -> None:
    response = client.get("/v1/labels")
    assert response.status_code == 200
    assert response.json() == {"model": trained.ref, "labels": trained.metadata["labels"]}


def test_model_metadata(client, trained) -> None:
    response = client.get("/v1/model")
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["version"]) == ("default", trained.metadata["version"])
    assert body["metadata"]["labels"] == trained.metadata["labels"]
    assert body["metadata"]["decision"]["thresholds"] == trained.metadata["decision"]["thresholds"]


def test_healthz(client, trained) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "model": trained.ref}


def test_docs_and_openapi(client) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert {"/v1/predict", "/v1/labels", "/v1/model", "/healthz"} <= set(paths)
    assert "/" not in paths


def test_index_page(client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower() and "tagger" in response.text


# --- bad input: 4xx naming the field, never 5xx -------------------------------------------

BAD = [
    ('{"text": ""}', ["text"]),
    ('{"text": "  \\n\\t "}', ["text"]),
    ("{}", ["text", "texts"]),
    ('{"text": null, "texts": null}', ["text", "texts"]),
    ('{"text": "x", "texts": ["y"]}', ["text", "texts"]),
    ('{"text": 5}', ["text"]),
    ('{"text": ["x"]}', ["text"]),
    ('{"texts": "x"}', ["texts"]),
    ('{"texts": []}', ["texts"]),
    ('{"texts": ["ok", ""]}', ["texts", 1]),
    ('{"texts": ["ok", 3]}', ["texts", 1]),
    ('{"text": "x", "top_k": 0}', ["top_k"]),
    ('{"text": "x", "top_k": -1}', ["top_k"]),
    ('{"text": "x", "top_k": 1000000000}', ["top_k"]),
    ('{"text": "x", "top_k": 500}', ["top_k"]),  # over the service's max_top_k
    ('{"text": "x", "top_k": 1.5}', ["top_k"]),
    ('{"text": "x", "top_k": "3"}', ["top_k"]),
    ('{"text": "x", "top_k": true}', ["top_k"]),
    ('{"text": "x", "threshold": -0.1}', ["threshold"]),
    ('{"text": "x", "threshold": 1.5}', ["threshold"]),
    ('{"text": "x", "threshold": NaN}', ["threshold"]),
    ('{"text": "x", "threshold": Infinity}', ["threshold"]),
    ('{"text": "x", "threshold": "0.5"}', ["threshold"]),
    ('{"text": "x", "paragraphs": "yes"}', ["paragraphs"]),
    ('{"text": "a\\u0000b"}', ["text"]),
    ('{"texts": ["ok", "bell\\u0007"]}', ["texts", 1]),
    ('{"text": "x", "model": "other"}', ["model"]),
    ("[1, 2]", []),
    ("null", []),
    ('"just a string"', []),
    ('{"text": ', []),
    ("", []),
]


@pytest.mark.parametrize(("body", "loc"), BAD, ids=[b for b, _ in BAD])
def test_bad_input_is_a_4xx_naming_the_field(client, body: str, loc: list) -> None:
    response = post(client, body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail
    if loc == ["text", "texts"]:  # both fields named, by the pair rule's message or by loc
        named = json.dumps(detail)
        assert ("'text'" in named and "'texts'" in named) or {
            tuple(e["loc"][1:2]) for e in detail
        } >= {("text",), ("texts",)}
    elif loc:
        assert any(e["loc"][1 : 1 + len(loc)] == loc for e in detail), detail


def test_invalid_utf8_is_a_4xx(client) -> None:
    for body in (b'{"text": "\xff\xfe"}', b'\xff{"text": "x"}', b"\xc3\x28"):
        response = post(client, body)
        assert 400 <= response.status_code < 500, (body, response.status_code)


def test_control_character_is_named(client) -> None:
    response = post(client, '{"text": "ab\\u0000"}')
    assert response.status_code == 422
    assert "U+0000" in response.text


def test_lone_surrogate_is_a_4xx(tight_client) -> None:
    response = post(tight_client, '{"text": "教育\\ud800"}')
    assert 400 <= response.status_code < 500, response.text


def test_wrong_method_and_path(client) -> None:
    assert client.get("/v1/predict").status_code == 405
    assert client.get("/v1/nope").status_code == 404


# --- limits --------------------------------------------------------------------------------


def test_body_over_limit_with_content_length(tight_client) -> None:
    body = json.dumps({"text": "x" * 3000})
    response = post(tight_client, body)
    assert response.status_code == 413
    assert "2048" in response.json()["detail"]


def test_body_over_limit_streamed_without_length(tight_client) -> None:
    def chunks():
        yield b'{"text": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'

    response = tight_client.post(
        "/v1/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


def test_body_at_limit_is_accepted(tight_client) -> None:
    body = json.dumps({"text": EDU}, ensure_ascii=False).encode()
    body += b" " * (2048 - len(body))
    assert len(body) == 2048
    assert post(tight_client, body).status_code == 200


def test_streamed_body_under_limit_is_accepted(tight_client) -> None:
    def chunks():
        yield b'{"text": '
        yield json.dumps(EDU).encode()
        yield b"}"

    response = tight_client.post(
        "/v1/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json()["results"][0]["tags"][0]["tag"] == "EDUCATION"


def test_text_over_max_chars_names_its_index(tight_client) -> None:
    response = tight_client.post("/v1/predict", json={"texts": ["ok", "a" * 301, "b" * 300]})
    assert response.status_code == 422
    locs = [e["loc"] for e in response.json()["detail"]]
    assert locs == [["body", "texts", 1]]
    response = tight_client.post("/v1/predict", json={"text": "a" * 301})
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "text"]]
    assert tight_client.post("/v1/predict", json={"text": "a" * 300}).status_code == 200


def test_batch_over_max_batch(tight_client) -> None:
    response = tight_client.post("/v1/predict", json={"texts": ["a", "b", "c", "d"]})
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "texts"]]
    response = tight_client.post("/v1/predict", json={"texts": ["a", "b", "c"]})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 3


def test_top_k_over_service_limit(tight_client) -> None:
    response = tight_client.post("/v1/predict", json={"text": "x", "top_k": 6})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "top_k"]
    assert tight_client.post("/v1/predict", json={"text": "x", "top_k": 5}).status_code == 200


# --- start-up and settings -----------------------------------------------------------------


def test_start_up_without_model_fails(tmp_path: Path) -> None:
    app = create_app(Settings(models_dir=tmp_path, model="default"))
    with pytest.raises(ModelNotFoundError), TestClient(app):
        pass


def test_start_up_with_tampered_model_fails(tmp_path: Path, trained) -> None:
    folder = tmp_path / "default" / trained.folder.name
    shutil.copytree(trained.folder, folder)
    with (folder / "arrays.npz").open("ab") as f:
        f.write(b"\0")
    app = create_app(Settings(models_dir=tmp_path, model="default"))
    with pytest.raises(IncompatibleModelError), TestClient(app):
        pass


def test_start_up_with_explicit_version(trained_models_dir: Path, trained) -> None:
    settings = Settings(models_dir=trained_models_dir, model=trained.ref)
    with TestClient(create_app(settings)) as c:
        assert c.get("/healthz").json()["model"] == trained.ref


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TAGGER_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("TAGGER_MODEL", "other@latest")
    monkeypatch.setenv("TAGGER_MAX_BATCH", "7")
    settings = Settings()
    assert settings.models_dir == tmp_path
    assert settings.model == "other@latest"
    assert settings.max_batch == 7


def test_non_numeric_content_length_is_a_400(tight_client) -> None:
    response = tight_client.post(
        "/v1/predict",
        content=b'{"text": "x"}',
        headers={"content-type": "application/json", "content-length": "abc"},
    )
    assert response.status_code == 400
    assert "Content-Length" in response.json()["detail"]


def test_ten_megabyte_text_is_a_413_before_it_is_processed(client) -> None:
    body = json.dumps({"text": "教" * (10 * 1024 * 1024 // 3)})
    response = post(client, body)
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


def test_ten_thousand_texts_is_a_422_naming_texts(client) -> None:
    response = client.post("/v1/predict", json={"texts": ["学校教育"] * 10_000})
    assert response.status_code == 422
    assert any(e["loc"][:2] == ["body", "texts"] for e in response.json()["detail"])


def test_other_scripts_are_tagged_not_refused(client) -> None:
    for text in ("Образование и здравоохранение", "التعليم والصحة", "การศึกษา", "😀👍"):
        response = client.post("/v1/predict", json={"text": text})
        assert response.status_code == 200, text
        assert len(response.json()["results"][0]["tags"]) >= 1


def test_the_model_card_is_markdown_of_the_serving_version(client) -> None:
    response = client.get("/v1/model/card")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/markdown")
    version = client.get("/v1/model").json()["version"]
    assert version in response.text and response.text.lstrip().startswith("#")
    assert str(Path.cwd()) not in response.text and "/tmp/" not in response.text
