"""GET /metrics (issue 13, requirement 6): Prometheus text that prometheus_client's parser
reads, counting requests by route and status, in one process and summed over workers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from test_follow import free_port, wait_for  # a sibling test module

from api import metrics
from api.main import create_app
from api.settings import Settings
from classifier.workers import reuse_port_supported

ROOT = Path(__file__).resolve().parents[2]


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def requests(found: dict, route: str, status: str, method: str = "GET") -> float:
    key = ("tagger_requests_total", (("method", method), ("route", route), ("status", status)))
    return found.get(key, 0.0)


@pytest.fixture
def client(trained_models_dir: Path):
    with TestClient(create_app(Settings(models_dir=trained_models_dir))) as c:
        yield c


def test_metrics_count_requests_by_route_and_status(client: TestClient, trained) -> None:
    before = samples(client.get("/metrics").text)
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert client.post("/v1/predict", json={"text": "各国应加强学校教育"}).status_code == 200
    assert client.get("/no/such/page").status_code == 404
    assert (
        client.post("/v1/predict", content=b"x", headers={"content-type": "text/plain"}).status_code
        == 415
    )
    answer = client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain; version=")
    after = samples(answer.text)
    delta = lambda *key: requests(after, *key) - requests(before, *key)  # noqa: E731
    assert delta("/healthz", "200") == 3
    assert delta("/v1/predict", "200", "POST") == 1
    assert delta("/v1/predict", "415", "POST") == 1
    assert delta("unmatched", "404") == 1
    count = ("tagger_request_duration_seconds_count", (("route", "/healthz"),))
    assert after[count] - before.get(count, 0) == 3
    tags = ("tagger_tags_per_request_count", ())
    assert after[tags] - before.get(tags, 0) == 1
    name, version = trained.ref.split("@")
    assert after[("tagger_model_info", (("name", name), ("version", version)))] == 1
    assert ("tagger_feedback_total", ()) in after


def test_the_feedback_hook_counts(client: TestClient) -> None:
    key = ("tagger_feedback_total", ())
    before = samples(client.get("/metrics").text)[key]
    metrics.count_feedback(2)
    assert samples(client.get("/metrics").text)[key] == before + 2


def test_metrics_can_be_turned_off(trained_models_dir: Path) -> None:
    with TestClient(create_app(Settings(models_dir=trained_models_dir, metrics=False))) as c:
        assert c.get("/metrics").status_code == 404


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read().decode()


@pytest.mark.skipif(not reuse_port_supported(), reason="needs Linux SO_REUSEPORT")
def test_metrics_are_summed_over_every_worker(tmp_path: Path, trained_models_dir: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(trained_models_dir, models)
    port, log = free_port(), tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAGGER_", "PROMETHEUS"))}
    server = subprocess.Popen(
        [sys.executable, "-m", "training.cli", "serve", "--models-dir", str(models),
         "--port", str(port), "--workers", "2"],
        env=env | {"PYTHONPATH": str(ROOT)}, cwd=ROOT, stderr=log.open("wb"),
        stdin=subprocess.DEVNULL,
    )  # fmt: skip

    def up() -> bool:
        try:
            return bool(get(port, "/healthz"))
        except OSError:
            return False

    try:
        assert wait_for(up, 90), log.read_text()
        assert wait_for(lambda: "(2 workers)" in log.read_text(), 30)
        n = 40  # fresh connections: the kernel spreads them over both workers
        for _ in range(n):
            get(port, "/v1/labels")
        for _ in range(6):  # whichever worker answers the scrape gives the same sum
            found = samples(get(port, "/metrics"))
            assert requests(found, "/v1/labels", "200") == n
        info = [v for (name, _), v in found.items() if name == "tagger_model_info"]
        assert info == [1.0]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
