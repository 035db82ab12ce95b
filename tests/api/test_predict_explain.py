"""POST /v1/predict with "explain": evidence per tag, spans into the text as sent."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from api.main import create_app
from api.settings import Settings
from classifier.paragraphs import squash
from classifier.tokenizer import normalize

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx.*")
    from fastapi.testclient import TestClient

TRADITIONAL = "各國應加強學校教育，提高女童入學率，改善農村地區的教學條件和師資水平。"
SEGMENTED = "各国 应 加强 学校 教育 ， 提高 女童 入学率 ， 改善 农村 地区 的 教学 条件 。"


@pytest.fixture(scope="module")
def client(trained_models_dir: Path):
    settings = Settings(models_dir=trained_models_dir, model="default")
    with TestClient(create_app(settings)) as c:
        yield c


def _check(text: str, tags: list[dict]) -> None:
    for tag in tags:
        assert tag["evidence"], tag
        for e in tag["evidence"]:
            assert set(e) == {"term", "contribution", "spans"}
            assert e["contribution"] > 0
            for start, end in e["spans"]:
                assert squash(normalize(text[start:end], True)) == squash(e["term"])


@pytest.mark.parametrize("text", [TRADITIONAL, SEGMENTED])
def test_explain_gives_each_tag_its_evidence(client, text: str) -> None:
    plain = client.post("/v1/predict", json={"text": text}).json()
    body = client.post("/v1/predict", json={"text": text, "explain": True}).json()
    (result,) = body["results"]
    assert [(t["tag"], t["score"]) for t in result["tags"]] == [
        (t["tag"], t["score"]) for t in plain["results"][0]["tags"]
    ]
    _check(text, result["tags"])
    assert "evidence" not in plain["results"][0]["tags"][0]  # nothing added unless asked


def test_explain_per_paragraph_and_batch(client) -> None:
    text = f"1. {TRADITIONAL * 10}\n\n2. {SEGMENTED * 10}"
    body = client.post(
        "/v1/predict", json={"texts": [text, SEGMENTED], "explain": True, "paragraphs": True}
    ).json()
    first, second = body["results"]
    _check(text, first["tags"])
    assert len(first["paragraphs"]) == 2
    for paragraph in first["paragraphs"]:
        _check(text, paragraph["tags"])
    inside = [s for t in first["paragraphs"][1]["tags"] for e in t["evidence"] for s in e["spans"]]
    assert all(start > len(TRADITIONAL) * 10 for start, _ in inside)  # the whole text's offsets
    _check(SEGMENTED, second["tags"])


def test_openapi_documents_explain_and_evidence(client) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    request = next(v for k, v in schemas.items() if k.startswith("PredictRequest"))
    assert request["properties"]["explain"]["type"] == "boolean"
    assert "evidence" in schemas["TagScore"]["properties"]
    assert set(schemas["Evidence"]["required"]) == {"term", "contribution", "spans"}
    assert "[start, end)" in schemas["Evidence"]["properties"]["spans"]["description"]


def test_explain_must_be_a_boolean(client) -> None:
    response = client.post("/v1/predict", json={"text": SEGMENTED, "explain": "yes"})
    assert response.status_code == 422


def test_explain_gives_the_terms_a_tag_shares_with_its_name(tmp_path: Path) -> None:
    from tests.classifier.test_names import COMMON, RARE, SAYS_ITS_NAME, save_named_model

    save_named_model(tmp_path)
    text = SAYS_ITS_NAME
    with TestClient(create_app(Settings(models_dir=tmp_path, model="default"))) as c:
        body = c.post(
            "/v1/predict", json={"text": text, "explain": True, "top_k": 20, "threshold": 0.0}
        ).json()
        plain = c.post("/v1/predict", json={"text": text}).json()
        spec = c.get("/openapi.json").json()
    tags = {t["tag"]: t for t in body["results"][0]["tags"]}
    shared = tags[RARE[3]]["name_evidence"]
    assert shared[0]["term"] == RARE[3] and shared[0]["contribution"] > 0
    assert {text[a:b] for e in shared for a, b in e["spans"]} <= {RARE[3], *RARE[3]}
    assert "name_evidence" not in tags[COMMON[1]]  # 体育 is not said
    assert all("name_evidence" not in t for t in plain["results"][0]["tags"])  # only if asked
    properties = spec["components"]["schemas"]["TagScore"]["properties"]
    assert "name_evidence" in properties
    assert (
        "logit"
        in spec["components"]["schemas"]["NameEvidence"]["properties"]["contribution"][
            "description"
        ]
    )
