"""Against a live `tagger serve --workers 2`: 16 concurrent clients post feedback, and the
store (SQLite, then a real PostgreSQL) holds every record exactly once, field by field.

16 × 40 posts here, to keep `make test` short; `python -m bench.feedback` runs the full
16 × 500 on both stores (BENCHMARKS.md)."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import pytest
from test_supervisor import Served, free_port, wait_for

from bench.feedback import expected, post_concurrently, verify
from classifier.workers import reuse_port_supported

CLIENTS, POSTS = 16, 40
EDITOR = "live-editor-token"
pytestmark = pytest.mark.skipif(not reuse_port_supported(), reason="needs Linux SO_REUSEPORT")


def get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.loads(r.read())


def test_concurrent_clients_lose_nothing(
    feedback_db: str, tmp_path: Path, trained_models_dir: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(trained_models_dir, models)
    server = Served(
        models, free_port(), workers=2, TAGGER_EDITOR_TOKEN=EDITOR, TAGGER_FEEDBACK_DB=feedback_db
    )
    try:
        assert wait_for(server.ready, 90), server.stderr()
        model = get(server.port, "/healthz")["model"]
        labels = get(server.port, "/v1/labels")["labels"]
        posted = post_concurrently(server.port, EDITOR, CLIENTS, POSTS, labels, model)
    finally:
        assert server.stop() == 0, server.stderr()
    assert posted.statuses == {201: CLIENTS * POSTS}, posted.errors
    stored, missing, extra = verify(feedback_db, expected(CLIENTS, POSTS, labels, model))
    assert (stored, missing, extra) == (CLIENTS * POSTS, 0, 0)
