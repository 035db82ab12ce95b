"""The hyperparameter search: validation only, a margin before leaving the base value."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifier import tune as tune_module
from classifier.config import TrainingConfig
from classifier.corpus import Document, read_corpus
from classifier.tune import tune


@pytest.fixture(scope="module")
def documents(sample_dir: Path) -> list[Document]:
    return list(read_corpus([sample_dir]))


def test_search_scores_the_base_then_every_candidate(documents: list[Document]) -> None:
    grid = {"C": [0.5, 2.0], "char_ngram_max": [0, 2]}
    result = tune(documents, TrainingConfig(segmenter="rjieba"), grid)
    params = [t["params"] for t in result.trials]
    assert params[0] == {"C": 1.0, "char_ngram_max": 2}  # the base first
    # each distinct configuration is fitted once: base, C=0.5, C=2, then char_ngram_max=0
    # (char_ngram_max=2 with the C kept is a configuration already scored)
    assert len(params) == len({tuple(sorted(p.items())) for p in params}) == 4
    best = {"C": result.best.C, "char_ngram_max": result.best.char_ngram_max}
    assert result.best_score == next(t["score"] for t in result.trials if t["params"] == best)
    assert result.best.refit_on_all  # the base's setting comes back for the final fit


def test_a_change_must_beat_the_best_by_the_margin(
    documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a margin larger than any F1 difference, the base configuration wins."""
    monkeypatch.setattr(tune_module, "MIN_GAIN", 1.0)
    result = tune(documents, TrainingConfig(segmenter="rjieba"), {"C": [0.25, 4.0]})
    assert result.best.C == 1.0
    assert result.best_score == result.trials[0]["score"]


def test_without_margin_the_best_validation_score_wins(
    documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tune_module, "MIN_GAIN", -1.0)  # always move to the last candidate
    result = tune(documents, TrainingConfig(segmenter="rjieba"), {"C": [0.25, 4.0]})
    assert result.best.C == 4.0
