"""Retraining from feedback: `tagger feedback export` writes the latest correction of each
document as a corpus; `tagger train --feedback` learns the corpus with the corrections
applied (override, add, remove) and records how many were used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from classifier.feedback import Feedback, open_store
from training.cli import app

MODEL = "default@20260101-000000-abcdef12"  # the store does not check it (the API does)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "feedback.sqlite3"
    store = open_store(path)
    politics = "001_women_in_politics.txt"
    store.add(Feedback("旧的判断", MODEL, accepted=("HUMAN RIGHTS",), id=politics))
    store.add(
        Feedback(
            "妇女 参政 议政 教育 培训", MODEL, ("WOMEN'S RIGHTS",), (), ("EDUCATION",), politics
        )
    )
    store.add(Feedback("沙漠化 防治 与 植树 造林", MODEL, added=("ENVIRONMENT",), id="new-1"))
    store.add(Feedback("海洋 保护 区 与 渔业", MODEL, added=("ENVIRONMENT",), id="new-2"))
    store.add(Feedback("死刑", MODEL, rejected=("HUMAN RIGHTS",), id="008_death_penalty.txt"))
    store.close()
    return path


def test_export_writes_the_latest_correction_of_each_document(
    store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fixes.jsonl"
    result = CliRunner().invoke(
        app, ["feedback", "export", "--db", str(store_path), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "wrote 3 corrections" in result.stdout
    assert "left out 1 with no tag left" in result.stderr
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines == [
        {
            "id": "001_women_in_politics.txt",
            "text": "妇女 参政 议政 教育 培训",
            "tags": ["WOMEN'S RIGHTS", "EDUCATION"],
        },
        {"id": "new-1", "text": "沙漠化 防治 与 植树 造林", "tags": ["ENVIRONMENT"]},
        {"id": "new-2", "text": "海洋 保护 区 与 渔业", "tags": ["ENVIRONMENT"]},
    ]


def test_export_of_a_missing_store_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite3"
    result = CliRunner().invoke(app, ["feedback", "export", "--db", str(missing), "--out", "x"])
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception) and "no feedback store" in str(result.exception)
    assert not missing.exists()


def test_train_learns_the_corrections_and_counts_them(
    store_path: Path, tmp_path: Path, sample_dir: Path
) -> None:
    models = tmp_path / "models"
    result = CliRunner().invoke(
        app,
        ["train", str(sample_dir), "--feedback", str(store_path), "--models-dir", str(models)],
    )
    assert result.exit_code == 0, result.output
    assert "learnt 3 of 4 corrections" in result.stderr
    (folder,) = [p for p in (models / "default").iterdir() if p.is_dir()]  # not the record
    meta = json.loads((folder / "metadata.json").read_text())
    fb = meta["feedback"]
    assert (fb["corrections"], fb["used"], fb["overrode"], fb["added"], fb["removed"]) == (
        4,
        3,
        1,
        2,
        1,
    )
    assert fb["store"].endswith("feedback.sqlite3")
    training = meta["training"]
    # 72 corpus documents read, one removed (no tag left), two added
    assert meta["corpus"]["documents_read"] == 72
    assert training["fit_documents"] + training["validation_documents"] == 73


def test_serve_with_a_bad_store_fails_before_any_worker_starts(
    monkeypatch: pytest.MonkeyPatch, trained_models_dir: Path
) -> None:
    monkeypatch.setenv("TAGGER_EDITOR_TOKEN", "editor")
    monkeypatch.setenv("TAGGER_FEEDBACK_DB", "mysql://h/db")  # restored after the test
    monkeypatch.setenv("TAGGER_MODELS_DIR", str(trained_models_dir))
    monkeypatch.setenv("TAGGER_MODEL", "default")
    result = CliRunner().invoke(app, ["serve", "--models-dir", str(trained_models_dir)])
    assert result.exit_code != 0
    assert "unsupported feedback database 'mysql'" in str(result.exception)
