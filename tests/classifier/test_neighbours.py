"""Nearest training documents blended with the linear scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from classifier import neighbours
from classifier.config import NEIGHBOUR_WEIGHTS, TrainingConfig
from classifier.corpus import read_corpus
from classifier.dataset import PreparedCorpus, prepare_corpus
from classifier.fit import fit_classifier
from classifier.labels import label_matrix
from classifier.neighbours import NeighbourIndex, unit_rows
from classifier.registry import load_model

# neighbours are weighed on one validation split (not on folds, without a second level)
RJIEBA = TrainingConfig(
    segmenter="rjieba", cv_folds=0, stacking=False, rare_label_cuts=0, label_names=False
)

DOCS = sp.csr_matrix(
    np.array(
        [[1, 0, 0, 0], [0.9, 0.1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 1]],
        dtype=np.float32,
    )
)
TAGS = label_matrix([("a",), ("a", "b"), ("b",), ("c",), ("c", "d")], ["a", "b", "c", "d"])


def test_unit_rows_keeps_zero_rows() -> None:
    x = unit_rows(sp.csr_matrix(np.array([[3, 4], [0, 0]], dtype=np.float32)))
    assert np.allclose(x.toarray(), [[0.6, 0.8], [0, 0]])


def test_one_neighbour_gives_its_tags() -> None:
    index = NeighbourIndex.build(DOCS, TAGS, k=1)
    query = sp.csr_matrix(np.array([[0, 2, 0, 0], [0, 0, 5, 5]], dtype=np.float32))
    assert np.allclose(index.scores(query), [[0, 1, 0, 0], [0, 0, 1, 0]])


def test_votes_are_similarity_weighted_shares() -> None:
    index = NeighbourIndex.build(DOCS, TAGS, k=2)
    got = index.scores(sp.csr_matrix(np.array([[1, 0, 0, 0]], dtype=np.float32)))
    s0, s1 = 1.0, 0.9 / np.hypot(0.9, 0.1)  # cosine similarities of the two nearest
    assert np.allclose(got, [[1.0, s1 / (s0 + s1), 0, 0]], atol=1e-6)
    assert ((got >= 0) & (got <= 1)).all()


def test_a_text_sharing_no_feature_scores_zero() -> None:
    index = NeighbourIndex.build(DOCS, TAGS, k=3)
    assert not index.scores(sp.csr_matrix((2, 4), dtype=np.float32)).any()


def test_rows_are_scored_alike_in_any_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    query = sp.random(50, 4, density=0.5, random_state=rng, dtype=np.float32).tocsr()
    index = NeighbourIndex.build(DOCS, TAGS, k=2)
    whole = index.scores(query)
    monkeypatch.setattr(neighbours, "CHUNK_ROWS", 7)
    assert np.allclose(index.scores(query), whole)


@pytest.fixture(scope="module")
def sample_corpus(sample_dir: Path) -> PreparedCorpus:
    return prepare_corpus(read_corpus([sample_dir]), RJIEBA.text, jobs=1)


def test_fixed_weight_blends_linear_and_neighbour_scores(
    sample_dir: Path, sample_corpus: PreparedCorpus, tmp_path: Path
) -> None:
    from training.train import train

    cfg = TrainingConfig(
        neighbours=3,
        neighbour_weight=0.5,
        cv_folds=0,
        stacking=False,
        rare_label_cuts=0,
        label_names=False,
    )
    result = train([sample_dir], tmp_path, name="nb", config=cfg)
    assert result.metadata["decision"]["neighbours"]["k"] == 3
    assert result.metadata["decision"]["neighbours"]["weight"] == 0.5
    model = load_model(tmp_path, "nb").model  # the index survives saving and loading
    scorer = model.scorer
    assert scorer.neighbours is not None and scorer.neighbour_weight == 0.5
    assert scorer.neighbours.n_docs == sample_corpus.n_documents  # refit on all of train
    texts = sample_corpus.texts[:5]
    x = scorer.transform(texts)
    linear = scorer.calibration.apply(scorer.weights.decision(x))
    expected = 0.5 * linear + 0.5 * scorer.neighbours.scores(x)
    assert np.allclose(model.score_prepared(texts), expected, atol=1e-6)
    assert not np.allclose(linear, expected, atol=1e-3)


def test_weight_is_chosen_on_validation(sample_corpus: PreparedCorpus) -> None:
    model, report = fit_classifier(sample_corpus, RJIEBA.replace(neighbours=3))
    tried = report.neighbours["tried"]
    assert set(tried) == {f"{w:g}" for w in NEIGHBOUR_WEIGHTS}
    best = max(tried.values())
    assert tried[f"{report.neighbours['chosen']:g}"] == best
    assert model.scorer.neighbour_weight == report.neighbours["chosen"]
    assert (model.scorer.neighbours is None) == (model.scorer.neighbour_weight == 0)


def test_weight_zero_drops_the_index(sample_corpus: PreparedCorpus) -> None:
    cfg = RJIEBA.replace(neighbours=3, neighbour_weight=0.0)
    model, _ = fit_classifier(sample_corpus, cfg)
    assert model.scorer.neighbours is None
    plain, _ = fit_classifier(sample_corpus, RJIEBA)
    texts = sample_corpus.texts[:5]
    assert np.allclose(model.score_prepared(texts), plain.score_prepared(texts))


@pytest.mark.parametrize("values", [{"neighbours": -1}, {"neighbour_weight": 1.5}])
def test_invalid_neighbour_settings_are_refused(values: dict) -> None:
    from classifier.errors import ClassifierError

    with pytest.raises(ClassifierError, match="neighbour"):
        TrainingConfig(**values)
