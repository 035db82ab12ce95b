"""Issue 13.8, several vocabularies in one service: two models served side by side, requests
routed by name, a reload of one leaving the other, in process and under `tagger serve`."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from test_review_page import browser  # noqa: F401 (fixture: the module's headless Chromium)
from test_two_phase import FakeConn, FakeProcess, answer

from api.main import create_app
from api.settings import Settings
from classifier.registry import load_model, new_version, promote, save_model, served_ref
from classifier.workers import ReloadResult, Supervisor, reuse_port_supported, target
from training.cli import served_specs, serving_plan

TOKEN = "multi-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TEXT = "各国应加强学校教育，提高女童入学率。"


@pytest.fixture
def models(tmp_path: Path, two_models_dir: Path) -> Path:
    """A private copy of the two-model folder (tests here add versions to it)."""
    shutil.copytree(two_models_dir, tmp_path / "models")
    return tmp_path / "models"


def add_version(models: Path, name: str, tag: str) -> str:
    loaded = load_model(models, name)
    keep = {k: v for k, v in loaded.metadata.items() if k not in ("name", "version", "saved_ns")}
    return f"{name}@{save_model(models, name, loaded.model, keep, new_version(tag * 64)).name}"


def client(models: Path, served: list[str] | None = None) -> TestClient:
    settings = Settings(
        models_dir=models, models=served or ["default", "sectors"], admin_token=TOKEN
    )
    return TestClient(create_app(settings))


# --- in one process -----------------------------------------------------------------------
def test_predict_is_routed_by_name_and_defaults_to_the_first(models: Path) -> None:
    default, sectors = served_ref(models, "default"), served_ref(models, "sectors")
    with client(models) as c:
        plain = c.post("/v1/predict", json={"text": TEXT}).json()
        named = c.post("/v1/predict", json={"text": TEXT, "model": "sectors"}).json()
        first = c.post("/v1/predict", json={"text": TEXT, "model": "default"}).json()
    assert plain["model"] == first["model"] == default
    assert named["model"] == sectors
    assert {t["tag"] for t in named["results"][0]["tags"]} <= {"SOCIAL", "ECONOMY", "SECURITY"}
    assert plain["results"][0]["tags"][0]["tag"] == "EDUCATION"


def test_an_unknown_name_is_refused_naming_the_served_ones(models: Path) -> None:
    with client(models) as c:
        response = c.post("/v1/predict", json={"text": TEXT, "model": "places"})
        labels = c.get("/v1/labels", params={"model": "places"})
    assert response.status_code == 422 and labels.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "model"]
    assert error["msg"] == "model 'places' is not served here; served: default, sectors"
    assert labels.json()["detail"][0]["loc"] == ["query", "model"]


def test_models_lists_what_is_served_without_paths(models: Path) -> None:
    with client(models) as c:
        listed = c.get("/v1/models").json()
        health = c.get("/healthz").json()
    refs = [served_ref(models, "default"), served_ref(models, "sectors")]
    assert listed == {
        "models": [
            {"name": "default", "version": refs[0].split("@")[1], "labels": 8, "default": True},
            {"name": "sectors", "version": refs[1].split("@")[1], "labels": 3, "default": False},
        ]
    }
    assert health == {"status": "ok", "model": refs[0], "models": refs}
    assert str(models) not in str(listed)


def test_metadata_routes_take_a_model_name(models: Path) -> None:
    with client(models) as c:
        labels = c.get("/v1/labels", params={"model": "sectors"}).json()
        default_labels = c.get("/v1/labels").json()
        meta = c.get("/v1/model", params={"model": "sectors"}).json()
        card = c.get("/v1/model/card", params={"model": "sectors"})
    assert sorted(labels["labels"]) == ["ECONOMY", "SECURITY", "SOCIAL"]
    assert len(default_labels["labels"]) == 8
    assert meta["name"] == "sectors" and card.status_code == 200 and "sectors" in card.text


def test_a_reload_of_one_model_leaves_the_other(models: Path) -> None:
    with client(models) as c:
        before = c.get("/healthz").json()["models"]
        new = add_version(models, "sectors", "c")
        response = c.post("/v1/admin/reload", headers=AUTH, json={"model": new})
        after = c.get("/healthz").json()["models"]
        answered = c.post("/v1/predict", json={"text": TEXT, "model": "sectors"}).json()["model"]
        unknown = c.post("/v1/admin/reload", headers=AUTH, json={"model": "nothing"})
    assert response.json() == {"status": "reloaded", "model": new, "previous": before[1]}
    assert after == [before[0], new] and answered == new
    assert unknown.status_code == 404


def test_one_model_behaves_as_before(models: Path) -> None:
    with client(models, ["default"]) as c:
        health = c.get("/healthz").json()
        listed = c.get("/v1/models").json()["models"]
    assert set(health) == {"status", "model"}  # no 'models' list with one model
    assert [m["name"] for m in listed] == ["default"]


def test_settings_read_a_comma_list_and_refuse_a_name_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TAGGER_MODELS", "subjects, places@latest")
    assert Settings().served() == ["subjects", "places@latest"]
    monkeypatch.delenv("TAGGER_MODELS")
    assert Settings(model="x").served() == ["x"]
    with pytest.raises(ValidationError, match="served once"):
        Settings(models=["a", "a@latest"])


def test_the_command_line_plans_each_model(models: Path) -> None:
    assert served_specs({"TAGGER_MODELS": "a,b", "TAGGER_MODEL": "c"}) == ["a", "b"]
    assert served_specs({"TAGGER_MODEL": "c"}) == ["c"] and served_specs({}) == ["default"]
    pinned, follows = serving_plan(models, ["default", f"{served_ref(models, 'sectors')}"])
    assert pinned == [served_ref(models, "default"), served_ref(models, "sectors")]
    assert follows[0] is not None and follows[0]() == pinned[0] and follows[1] is None
    with pytest.raises(Exception, match="served once"):
        serving_plan(models, ["default", "default@latest"])


# --- the supervisor, with stand-in workers -------------------------------------------------
def fake_supervisor(follow=None) -> Supervisor:
    sup = Supervisor("app:f", "127.0.0.1", 1, 2, ["a@1", "b@1"], follow=follow)
    for i, slot in enumerate(sup.slots):
        slot.process, slot.conn, slot.state = FakeProcess(100 + i), FakeConn(), "ready"  # type: ignore[assignment]
    return sup


def reload(sup: Supervisor, ref: str) -> ReloadResult:
    thread = threading.Thread(target=sup.reload, args=(sup.slots[0], 7, ref))
    thread.start()
    while thread.is_alive():
        answer(sup)  # every worker prepares and commits
        time.sleep(0.01)
    return [m for m in sup.slots[0].conn.sent if m[0] == "reply"][-1][2]  # type: ignore[union-attr]


def test_the_supervisor_moves_the_pin_of_the_named_model_only() -> None:
    assert target(["a@1", "b@1"], "b@2") == 1 and target(["a@1"], "z@2") == 0
    assert target(["a@1", "b@1"], "z@2") is None
    sup = fake_supervisor()
    assert reload(sup, "b@2").ok and sup.models == ["a@1", "b@2"] and sup.model == "a@1"
    refused = reload(sup, "z@1")
    assert not refused.ok and "served: a, b" in refused.reason()
    assert sup.models == ["a@1", "b@2"]


def test_the_supervisor_follows_each_model_on_its_own() -> None:
    served = {"a": "a@1", "b": "b@1"}
    sup = fake_supervisor([lambda: served["a"], lambda: served["b"]])
    served["b"] = "b@2"
    with sup.state:
        sup.follow_registry(time.monotonic())
    while sup.reloading:
        with sup.state:
            for slot in sup.slots:
                for kind, ident, *_ in slot.conn.sent:  # type: ignore[union-attr]
                    sup.replies.setdefault(ident, None) if kind != "reply" else None
            sup.state.notify_all()
        time.sleep(0.01)
    assert sup.models == ["a@1", "b@2"]
    assert [m[2] for m in sup.slots[0].conn.sent if m[0] == "prepare"] == ["b@2"]  # type: ignore[union-attr]


# --- under tagger serve, two workers --------------------------------------------------------
@pytest.mark.skipif(not reuse_port_supported(), reason="needs Linux SO_REUSEPORT")
def test_two_models_in_every_worker_of_a_live_service(models: Path) -> None:
    from test_supervisor import TOKEN as LIVE_TOKEN
    from test_supervisor import Served, call, free_port, wait_for, worker_pids

    args = ("--model", "default", "--model", "sectors")
    server = Served(models, free_port(), workers=2, args=args)
    try:
        assert wait_for(server.ready, 90), server.stderr()
        port = server.port
        refs = [served_ref(models, "default"), served_ref(models, "sectors")]
        assert len(worker_pids(server.proc)) == 2
        status, listed = call(port, "GET", "/v1/models")
        assert status == 200 and [m["name"] for m in listed["models"]] == ["default", "sectors"]
        # fresh connections land on the workers by hash: 30 of them reach both
        for _ in range(30):
            assert call(port, "POST", "/v1/predict", {"text": TEXT})[1]["model"] == refs[0]
            named = call(port, "POST", "/v1/predict", {"text": TEXT, "model": "sectors"})
            assert named[1]["model"] == refs[1]
        status, body = call(port, "POST", "/v1/predict", {"text": TEXT, "model": "places"})
        assert status == 422 and "served: default, sectors" in body["detail"][0]["msg"]
        # a reload of one model reaches every worker and leaves the other as it was
        new = add_version(models, "sectors", "e")
        status, body = call(port, "POST", "/v1/admin/reload", {"model": new}, token=LIVE_TOKEN)
        assert status == 200 and body == {"status": "reloaded", "model": new, "previous": refs[1]}
        for _ in range(30):
            assert call(port, "GET", "/healthz")[1]["models"] == [refs[0], new]
        # a promotion of the other is followed by every worker, the reloaded one untouched
        promoted = promote(models, add_version(models, "default", "f"))
        both = [promoted, new]
        assert wait_for(lambda: call(port, "GET", "/healthz")[1]["models"] == both, 30)
        for _ in range(30):
            assert call(port, "GET", "/healthz")[1]["models"] == both
    finally:
        assert server.stop() == 0


# --- the page's model chooser, in headless Chromium ----------------------------------------
@pytest.fixture
def page_server(models: Path):
    from test_supervisor import Served, free_port, wait_for

    server = Served(models, free_port(), workers=1, args=("--model", "default", "-m", "sectors"))
    try:
        assert wait_for(server.ready, 90), server.stderr()
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def test_the_page_chooses_the_model_and_keeps_each_documents_labels(
    browser,  # noqa: F811 (the fixture imported above)
    page_server: str,
) -> None:
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_server + "/")
    page.wait_for_selector("body[data-ready]", state="attached")
    assert page.is_visible("#chooser")
    options = page.locator("#models option").all_inner_texts()
    assert options == ["default (8 tags)", "sectors (3 tags)"]

    def tag(n: int):
        page.fill("#text", TEXT)
        page.click("#go")
        page.wait_for_function(f"() => document.querySelectorAll('article.doc').length >= {n}")
        doc = page.locator("article.doc").nth(n - 1)  # not .last: that follows later ones
        return doc, doc.locator("li.sugg").evaluate_all("els => els.map(e => e.dataset.tag)")

    first, first_tags = tag(1)
    assert first_tags[0] == "EDUCATION"
    page.select_option("#models", "sectors")
    page.wait_for_selector("body[data-ready]", state="attached")
    assert "sectors@" in page.inner_text("#model")
    second, second_tags = tag(2)
    assert set(second_tags) <= {"SOCIAL", "ECONOMY", "SECURITY"} and second_tags
    assert "sectors@" in second.locator("header .meta").inner_text()
    # each document's add-a-tag box offers the labels of the model that tagged it
    for doc, typed, offered in ((first, "EDU", "EDUCATION"), (second, "SEC", "SECURITY")):
        doc.locator("input[role=combobox]").fill(typed)
        doc.locator("li[role=option]").first.wait_for()
        assert offered in doc.locator("li[role=option]").all_inner_texts()
    assert not errors
