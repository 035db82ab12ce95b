"""`tagger eval --report` and the model card (issue 13, requirement 6)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from classifier.card import model_card
from classifier.evaluate import evaluate_scores
from classifier.labels import label_matrix
from training.cli import app
from training.evaluate import evaluate_scored
from training.html_report import PLOTS, threshold_curve


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, trained_models_dir: Path, sample_dir: Path):
    path = tmp_path_factory.mktemp("report") / "report.html"
    args = ["eval", str(sample_dir), "--models-dir", str(trained_models_dir), "--report", str(path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return path.read_text(encoding="utf-8")


def test_the_report_is_self_contained(report: str) -> None:
    assert not re.search(r"""(?:src|href|url)\s*[=(]\s*["']?\s*(?:https?:)?//""", report)
    assert "<script" not in report and "<link" not in report
    assert "http://" not in report and "https://" not in report


@pytest.mark.parametrize("plot", PLOTS)
def test_the_report_holds_each_plot_as_an_embedded_png(report: str, plot: str) -> None:
    found = re.search(
        rf'<figure id="{plot}"><img alt="{plot}" src="data:image/png;base64,([^"]+)"', report
    )
    assert found, plot
    assert base64.b64decode(found.group(1))[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_report_holds_the_tables_and_the_card(report: str) -> None:
    for heading in ("Metrics", "Labels (document level)", "Most confused pairs", "Model card"):
        assert f"<h2>{heading}</h2>" in report
    assert "EDUCATION" in report and "micro-F1" in report


def test_the_threshold_curve_agrees_with_the_metrics(trained, sample_dir: Path) -> None:
    result, scored = evaluate_scored(trained, [str(sample_dir)])
    labels, cfg = list(trained.labels), trained.model.config
    gold = label_matrix(scored.data.doc_tags, labels).toarray().astype(bool)
    curve = threshold_curve(scored.doc_scores, gold, cfg.min_labels, cfg.max_labels)
    for i in (10, 40, 70):
        t = curve["threshold"][i]
        m = evaluate_scores(
            scored.doc_scores, scored.data.doc_tags, labels, t, cfg.min_labels, cfg.max_labels
        )
        assert np.isclose(curve["micro"][i], m["micro"]["f1"])
        assert np.isclose(curve["macro"][i], m["macro"]["f1"])


def test_models_card_prints_data_settings_metrics_and_limits(trained_models_dir: Path) -> None:
    out = CliRunner().invoke(
        app, ["models", "--card", "default", "--models-dir", str(trained_models_dir)]
    )
    assert out.exit_code == 0, out.output
    for section in (
        "# Model card: default@",
        "## Data",
        "## Settings",
        "## Metrics",
        "## Known limits",
    ):
        assert section in out.output
    assert "Status: **served**" in out.output


def test_a_card_names_rare_and_dropped_labels() -> None:
    meta = {
        "name": "m", "version": "v", "labels": ["A", "B"],
        "labels_dropped": {"labels": {"RARE": 1}},
        "training": {"label_documents": {"A": 3, "B": 50}, "validation_documents": 12},
    }  # fmt: skip
    card = model_card(meta)
    assert "RARE" in card and "fewer than 10 documents" in card and ": A" in card
    assert "12 documents only" in card
