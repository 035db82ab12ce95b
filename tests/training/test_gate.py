"""The promotion gate (issue 13, requirement 5): a new version is served only if it is not
worse than the served one by more than the margin; otherwise it stays a candidate, with why."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from classifier import registry
from classifier.config import TrainingConfig
from classifier.registry import load_model, resolve, save_model
from training import gate as gate_module
from training.cli import app
from training.gate import DEFAULT_MARGIN, compare
from training.train import train

WORSE = TrainingConfig(C=0.001)  # 0.2 document micro-F1 on the test corpus, against 1.0


def record(models: Path) -> dict:
    return json.loads((models / "default" / registry.PROMOTION_FILE).read_text())


def served(models: Path) -> str:
    return resolve(models, "default").name


@pytest.fixture
def models(tmp_path: Path, trained_models_dir: Path) -> Path:
    shutil.copytree(trained_models_dir, tmp_path / "models")
    return tmp_path / "models"


def test_the_first_version_is_promoted_without_a_gate(trained_models_dir: Path) -> None:
    (version,) = registry.versions(trained_models_dir / "default")
    entry = record(trained_models_dir)["versions"][version]
    assert record(trained_models_dir)["served"] == version
    assert (entry["decision"], entry["by"]) == ("promoted", "first")
    assert "gate" not in entry


def test_an_equal_version_is_promoted_with_both_scores_recorded(
    models: Path, sample_dir: Path
) -> None:
    before = served(models)
    result = train([str(sample_dir)], models)
    assert result.gate is not None and result.gate.promoted
    assert served(models) == result.folder.name != before
    entry = record(models)["versions"][result.folder.name]
    assert entry["by"] == "gate" and entry["gate"]["against"] == f"default@{before}"
    scores = entry["gate"]
    assert set(scores["candidate"]) == set(scores["served"]) == {"micro", "macro"}
    assert scores["eval_set"]["documents"] == len(result.metadata["training"]["validation_ids"])
    assert record(models)["history"][-1] == {
        "at": entry["at"], "served": result.folder.name, "previous": before, "by": "gate",
    }  # fmt: skip


def test_a_worse_version_stays_a_candidate_with_the_reason(models: Path, sample_dir: Path) -> None:
    before = served(models)
    result = train([str(sample_dir)], models, config=WORSE)
    assert result.gate is not None and not result.gate.promoted
    assert served(models) == before  # latest still the served one
    assert resolve(models, "default@newest").name == result.folder.name
    entry = record(models)["versions"][result.folder.name]
    assert entry["decision"] == "refused"
    assert "micro-F1" in entry["reason"] and "below the served" in entry["reason"]
    assert entry["gate"]["candidate"]["micro"] < entry["gate"]["served"]["micro"] - DEFAULT_MARGIN


def test_promote_overrides_the_gate(models: Path, sample_dir: Path) -> None:
    result = train([str(sample_dir)], models, config=WORSE)
    ref = f"default@{result.folder.name}"
    out = CliRunner().invoke(app, ["promote", ref, "--models-dir", str(models)])
    assert out.exit_code == 0, out.output
    assert served(models) == result.folder.name
    assert load_model(models, "default").ref == ref
    assert record(models)["versions"][result.folder.name]["by"] == "override"


def test_promote_refuses_a_keyword_or_missing_version(models: Path) -> None:
    with pytest.raises(Exception, match="NAME@VERSION"):
        registry.promote(models, "default@newest")
    with pytest.raises(Exception, match="not found"):
        registry.promote(models, "default@20000101-000000-00000000")


def test_tagger_models_shows_served_candidates_and_why(models: Path, sample_dir: Path) -> None:
    worse = train([str(sample_dir)], models, config=WORSE).folder.name
    out = CliRunner().invoke(app, ["models", "--models-dir", str(models)], terminal_width=250)
    assert out.exit_code == 0, out.output
    rows = {line.split()[1]: line for line in out.output.splitlines() if "default@" in line}
    assert "served" in rows[f"default@{served(models)}"]
    assert "candidate" in rows[f"default@{worse}"] and "below the served" in out.output


def test_gate_corpus_is_the_evaluation_set(models: Path, sample_dir: Path, tmp_path: Path) -> None:
    gate_docs = tmp_path / "gate"
    gate_docs.mkdir()
    for path in sorted(sample_dir.glob("*.txt"))[:20]:
        shutil.copy(path, gate_docs / path.name)
    result = train([str(sample_dir)], models, gate_corpus=[str(gate_docs)])
    entry = record(models)["versions"][result.folder.name]["gate"]["eval_set"]
    assert entry["source"] == "gate corpus" and entry["documents"] == 20


def test_a_failed_gate_changes_nothing_served(
    models: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, kept = served(models), (models / "default" / registry.PROMOTION_FILE).read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("killed while scoring")

    monkeypatch.setattr(gate_module, "document_f1", broken)
    with pytest.raises(RuntimeError):
        train([str(sample_dir)], models)
    assert served(models) == before
    assert (models / "default" / registry.PROMOTION_FILE).read_bytes() == kept


def test_a_failed_record_write_keeps_the_old_record(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = served(models)
    parent = models / "default"
    kept = (parent / registry.PROMOTION_FILE).read_bytes()
    loaded = load_model(models, "default")
    meta = {k: v for k, v in loaded.metadata.items() if k not in ("name", "version", "saved_ns")}
    other = save_model(models, "default", loaded.model, meta, "20990101-000000-abcdef12").name

    def no_rename(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(registry.os, "replace", no_rename)
    with pytest.raises(OSError), registry.promotion_lock(models, "default"):
        registry.record_decision(parent, other, promoted=True, by="override", reason="x")
    assert (parent / registry.PROMOTION_FILE).read_bytes() == kept
    assert not list(parent.glob(".promotion.json.*"))  # no temporary left behind
    assert served(models) == before  # a version saved outside the gate is a candidate


def test_a_name_without_a_record_keeps_serving_its_newest(models: Path, sample_dir: Path) -> None:
    (models / "default" / registry.PROMOTION_FILE).unlink()  # as before records existed
    before = served(models)
    result = train([str(sample_dir)], models, config=WORSE)
    assert not result.gate.promoted and served(models) == before
    assert record(models)["versions"][before]["by"] == "adopted"


@pytest.mark.parametrize(
    ("candidate", "current", "passes"),
    [
        ({"micro": 0.80, "macro": 0.60}, {"micro": 0.80, "macro": 0.60}, True),
        ({"micro": 0.791, "macro": 0.60}, {"micro": 0.80, "macro": 0.60}, True),  # within
        ({"micro": 0.79, "macro": 0.59}, {"micro": 0.80, "macro": 0.60}, True),  # at margin
        ({"micro": 0.85, "macro": 0.50}, {"micro": 0.80, "macro": 0.60}, False),  # macro worse
        ({"micro": 0.70, "macro": 0.70}, {"micro": 0.80, "macro": 0.60}, False),  # micro worse
    ],
)
def test_compare_on_both_metrics_with_the_margin(candidate, current, passes) -> None:
    ok, reason = compare(candidate, current, 0.01)
    assert ok is passes
    assert ("below" in reason) is not passes
