"""The second level: fitted and applied deterministically, saved and loaded to the bit, and
worth having on a corpus where a label's own words are not enough."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier.config import TrainingConfig
from classifier.corpus import Document
from classifier.dataset import PreparedCorpus, document_folds, prepare_corpus
from classifier.decision import tune_rare_label_cuts
from classifier.errors import ClassifierError
from classifier.evaluate import evaluate_scores
from classifier.fit import fit_classifier
from classifier.linear import LinearWeights
from classifier.registry import load_model, save_model
from classifier.stacking import (
    OFF_CANDIDATE_DROP,
    _input_rows,
    apply_level2,
    best_k_mask,
    candidate_product,
    document_views,
    fit_stacker,
    global_micro_f1,
    inputs,
    level2_product,
)
from classifier.thresholds import fit_thresholds
from training.evaluate import evaluate_prepared

TOPICS = 6
CFG = TrainingConfig(segmenter="rjieba")


def synthetic(n_docs: int, seed: int) -> list[Document]:
    """Documents of one or two topics, one to three paragraphs each (about 400 characters a
    paragraph), every paragraph drawn from a document's topics' words and shared noise.
    Topic 5 ("both") is tagged on exactly the documents of topics 0 and 1 together: no word
    of its own, so only evidence of two other labels at once can find it."""
    rng = random.Random(seed)
    words = [[f"t{t}w{i}" for i in range(25)] for t in range(TOPICS - 1)]
    noise = [f"n{i}" for i in range(300)]
    docs = []
    for d in range(n_docs):
        pair = rng.random() < 0.3
        topics = [0, 1] if pair and rng.random() < 0.5 else rng.sample(range(TOPICS - 1), 1 + pair)
        tags = [f"topic{t}" for t in topics] + (["both"] if sorted(topics) == [0, 1] else [])
        paragraphs = []
        for _ in range(rng.choice([1, 1, 2, 3])):
            bag = [rng.choice(words[rng.choice(topics)]) for _ in range(16)]
            bag += [rng.choice(noise) for _ in range(70)]
            paragraphs.append(" ".join(bag))
        docs.append(Document(f"doc{seed}-{d}", "\n".join(paragraphs), tuple(sorted(tags))))
    return docs


@pytest.fixture(scope="module")
def corpus() -> tuple[PreparedCorpus, PreparedCorpus]:
    return (
        prepare_corpus(synthetic(300, 1), CFG.resolved().text),
        prepare_corpus(synthetic(150, 2), CFG.resolved().text),
    )


@pytest.fixture(scope="module")
def stacked(corpus):
    return fit_classifier(corpus[0], CFG.resolved())


def test_the_second_level_reads_three_views_of_multi_paragraph_documents(corpus, stacked):
    model, report = stacked
    assert corpus[0].n_paragraphs > 1.3 * corpus[0].n_documents
    assert model.stacker is not None and model.stacker.n_views == 3
    chosen = report.cross_validation["stacker"]
    assert (chosen["floor"], chosen["mix"]) in [(-1, 0), (-1, 0.5), (-0.75, 0), (-0.75, 0.5)]
    assert len(chosen["out_of_fold_micro_f1"]) == 4
    assert report.n_validation_documents == corpus[0].n_documents  # every one out of fold


def test_quality_on_held_out_documents_and_the_label_without_words(corpus, stacked):
    """Far above what always answering the most frequent labels gets; the label with no
    word of its own is found through the two labels it goes with."""
    model, _ = stacked
    test = corpus[1]
    scores = evaluate_prepared(model, test)["document"]
    assert scores["micro"]["f1"] >= 0.93
    assert scores["per_label"]["both"]["f1"] >= 0.7
    # the first level alone (same folds, thresholds out of fold) finds it far less often
    plain, _ = fit_classifier(corpus[0], CFG.replace(stacking=False).resolved())
    alone = evaluate_prepared(plain, test)["document"]
    assert alone["per_label"]["both"]["f1"] <= scores["per_label"]["both"]["f1"] - 0.2
    assert alone["micro"]["f1"] < scores["micro"]["f1"]
    constant = np.zeros((test.n_documents, model.n_labels))
    constant[:, :2] = [1.0, 0.9]  # the two most frequent labels, for every document
    trivial = evaluate_scores(constant, test.doc_tags, list(model.labels), 0.5, 1, 10)
    assert trivial["micro"]["f1"] < 0.5


def level2_problem(n: int = 200, labels: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three views of first-level values that tell each gold label apart noisily, its gold
    labels and 3 document folds: what the second level is fitted on."""
    rng = np.random.default_rng(0)
    gold = rng.random((n, labels)) < 0.25
    views = np.hstack([np.where(gold, 0.5, -1.0) + rng.normal(0, 0.6, (n, labels))] * 3)
    return views.astype(np.float32), gold, document_folds([f"d{i}" for i in range(n)], 3)


def test_fitting_is_deterministic_and_processes_change_nothing(corpus) -> None:
    """Two processes (forced: these fits are far below the size that gets them) fit the very
    weights this one does."""
    views, gold, folds = level2_problem()
    one = fit_stacker(views, gold, folds, candidates=4, jobs=1)
    two = fit_stacker(views, gold, folds, candidates=4, jobs=2, parallel_rows=0)
    for a, b in ((one[0].weights.coef, two[0].weights.coef),):
        assert (a != b).nnz == 0
    assert np.array_equal(one[0].weights.intercept, two[0].weights.intercept)
    assert np.array_equal(one[1], two[1]) and one[2] == two[2]
    assert np.array_equal(one[0].scores(views), two[0].scores(views))


def test_applying_is_inputs_times_weights_on_the_candidates() -> None:
    rng = np.random.default_rng(1)
    n, labels = 60, 5
    gold = rng.random((n, labels)) < 0.3
    views = (np.where(gold, 0.4, -1.0) + rng.normal(0, 0.5, (n, labels))).astype(np.float32)
    stacker, _, _ = fit_stacker(views, gold, np.arange(n) % 3, candidates=2)
    w = stacker.weights
    raw = inputs(views, stacker.floor, labels, 2) @ w.coef.toarray() + w.intercept
    top2 = np.argsort(-views, axis=1)[:, :2]
    expected = views - OFF_CANDIDATE_DROP
    np.put_along_axis(expected, top2, np.take_along_axis(raw, top2, axis=1), axis=1)
    expected = (1 - stacker.mix) * expected + stacker.mix * views
    np.testing.assert_allclose(stacker.decision(views), expected, rtol=1e-5, atol=1e-5)


def test_views_and_the_global_cut() -> None:
    par = np.array([[1.0, -2.0], [3.0, -1.0], [0.5, 0.5]], dtype=np.float32)
    whole = np.array([[2.0, -1.5], [0.5, 0.5]], dtype=np.float32)
    views = document_views(par, np.array([0, 0, 1]), 2, whole)
    np.testing.assert_array_equal(views[0], [2.0, -1.5, 2.0, -1.5, 3.0, -1.0])
    np.testing.assert_array_equal(views[1], [0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    scores = np.array([[0.9, 0.8, 0.3], [0.2, 0.1, 0.05]])
    gold = np.array([[1, 1, 0], [1, 0, 0]], dtype=bool)
    # the best label of each row is forced in, then one cut between 0.8 and 0.3
    assert global_micro_f1(scores, gold) == pytest.approx(1.0)
    # without forcing, reaching 0.2 takes 0.3 too: 3 hits of 4 chosen, 3 gold
    assert global_micro_f1(scores, gold, min_labels=0) == pytest.approx(6 / 7)


def test_saved_and_loaded_to_the_bit(tmp_path: Path, corpus, stacked) -> None:
    model, _ = stacked
    folder = save_model(
        tmp_path, "stacked", model, {"labels": list(model.labels)}, "20240101-000000-aaaaaaaa"
    )
    again = load_model(tmp_path, "stacked").model
    assert again.stacker is not None and again.stacker.n_views == 3
    texts = ["\n".join(corpus[1].texts[:3]), corpus[1].texts[5]]
    assert np.array_equal(again.score_documents(texts)[0], model.score_documents(texts)[0])
    assert again.predict(texts, paragraphs=True) == model.predict(texts, paragraphs=True)
    assert (folder / "arrays.npz").exists()


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"cv_folds": 1}, ["'cv_folds'", "0", ">= 2"]),
        ({"cv_folds": 0}, ["'stacking'", "'cv_folds' >= 2"]),
        ({"neighbours": 5}, ["'neighbours'", "'cv_folds' = 0"]),
        ({"stack_candidates": 0}, ["'stack_candidates'", "from 1 to 1000"]),
        ({"cv_folds": 11}, ["'cv_folds'", "from 0 to 10"]),
        (
            {"rare_label_cuts": 5, "cv_folds": 0, "stacking": False, "label_names": False},
            ["'rare_label_cuts'"],
        ),
        ({"cv_folds": 0, "stacking": False}, ["'label_names'", "'cv_folds' >= 2"]),
    ],
)
def test_settings_that_cannot_work_are_refused(fields, words) -> None:
    with pytest.raises(ClassifierError) as info:
        TrainingConfig(**fields)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_one_validation_split_still_works(corpus) -> None:
    cfg = CFG.replace(cv_folds=0, stacking=False, rare_label_cuts=0, label_names=False).resolved()
    model, report = fit_classifier(corpus[0], cfg)
    assert model.stacker is None and report.n_validation_documents < corpus[0].n_documents
    assert evaluate_prepared(model, corpus[1])["document"]["micro"]["f1"] >= 0.8


def test_rare_label_cuts_lower_a_rare_label_scored_low_and_keep_the_others() -> None:
    rng = np.random.default_rng(3)
    n = 300
    gold = np.zeros((n, 3), dtype=bool)
    gold[:, 0] = rng.random(n) < 0.5
    gold[:, 1] = ~gold[:, 0]
    gold[rng.choice(n, 6, replace=False), 2] = True  # rare, and scored low when present
    scores = np.where(gold, 0.8, 0.1) + rng.normal(0, 0.05, (n, 3))
    scores[:, 2] = np.where(gold[:, 2], 0.3, 0.05) + rng.normal(0, 0.02, n)
    base = np.full(3, 0.5, dtype=np.float32)
    folds = np.arange(n) % 3
    cuts = tune_rare_label_cuts(scores, gold, folds, base, max_positives=10, min_labels=1)
    assert cuts[0] == cuts[1] == np.float32(0.5)  # frequent labels keep the base threshold
    assert 0.05 < cuts[2] < 0.3  # the rare one is found below the global threshold
    found = scores[:, 2] >= cuts[2]
    assert (found == gold[:, 2]).all()
    cfg = TrainingConfig(rare_label_cuts=10)
    labels = ["a", "b", "c"]
    tags = [tuple(t for t, g in zip(labels, row, strict=True) if g) for row in gold]
    _, none = fit_thresholds(scores, tags, labels, TrainingConfig())
    _, vector = fit_thresholds(scores, tags, labels, cfg, folds)
    assert none is None and vector is not None and vector[2] < 0.3


def test_shrunk_cuts_move_n_over_n_plus_m_of_the_way_from_the_global_threshold() -> None:
    rng = np.random.default_rng(5)
    n = 240
    gold = np.zeros((n, 3), dtype=bool)
    gold[:, 0] = rng.random(n) < 0.5
    gold[rng.choice(n, 6, replace=False), 1] = True  # 6 positives
    gold[rng.choice(n, 30, replace=False), 2] = True  # 30 positives
    scores = np.where(gold, 0.35, 0.05) + rng.normal(0, 0.02, (n, 3))
    scores[:, 0] = np.where(gold[:, 0], 0.8, 0.1)
    base = np.full(3, 0.5, dtype=np.float32)
    folds = np.arange(n) % 3
    own = tune_rare_label_cuts(scores, gold, folds, base, max_positives=50, min_labels=1)
    shrunk = tune_rare_label_cuts(
        scores, gold, folds, base, max_positives=50, min_labels=1, shrinkage=10.0
    )
    assert own[0] == shrunk[0] == np.float32(0.5)  # not rare: untouched
    assert (own[1:] < 0.35).all()  # both found below the global threshold
    for j, positives in ((1, 6), (2, 30)):
        expected = 0.5 + positives / (positives + 10) * (own[j] - 0.5)
        assert shrunk[j] == pytest.approx(expected, abs=1e-6)
    # the label of few positives is pulled back further than the one of many
    assert (shrunk[1] - own[1]) / (0.5 - own[1]) > (shrunk[2] - own[2]) / (0.5 - own[2])


def test_a_fold_whose_model_never_saw_the_label_places_no_cut() -> None:
    """A label on one fold's documents only: the other folds' models never saw it, so the
    fold holding it is scored by a model that knows nothing of it (a constant score). No cut
    is made from such folds, nor from folds without a positive: the label keeps the base
    threshold, rather than the mean of "above every score" and "below every score"."""
    rng = np.random.default_rng(7)
    n = 300
    folds = np.arange(n) % 3
    gold = np.zeros((n, 2), dtype=bool)
    gold[:, 0] = rng.random(n) < 0.5
    gold[[2, 5, 8], 1] = True  # all in fold 2
    scores = np.where(gold, 0.8, 0.1) + rng.normal(0, 0.05, (n, 2))
    scores[:, 1] = rng.uniform(0.0, 0.04, n)  # the folds that scored it had no positive
    scores[folds == 2, 1] = 1e-7  # the model of fold 2 never saw it: one constant value
    base = np.full(2, 0.5, dtype=np.float32)
    cuts = tune_rare_label_cuts(scores, gold, folds, base, max_positives=10, min_labels=1)
    assert cuts[1] == np.float32(0.5)


def test_a_cut_never_falls_inside_a_tie() -> None:
    """Saturated scores tie by the hundred; a cut counted between two tied rows (the
    positive first) would in fact choose every row of the tie. Here each fold's positive
    ties with 30 negatives: the only cuts are above the tie (nothing) or below it (the
    positive and 30 false positives), and the second costs more micro-F1 than it brings."""
    rng = np.random.default_rng(11)
    n = 300
    folds = np.arange(n) % 3
    gold = np.zeros((n, 2), dtype=bool)
    gold[:, 0] = rng.random(n) < 0.5
    scores = np.where(gold, 0.8, 0.1) + rng.normal(0, 0.05, (n, 2))
    scores[:, 1] = 0.01
    tied = np.concatenate([np.flatnonzero(folds == f)[:31] for f in range(3)])
    scores[tied, 1] = 0.02
    gold[[np.flatnonzero(folds == f)[0] for f in range(3)], 1] = True  # first of each tie
    base = np.full(2, 0.5, dtype=np.float32)
    cuts = tune_rare_label_cuts(scores, gold, folds, base, max_positives=10, min_labels=1)
    assert cuts[1] > 0.02  # above the tie: not the 93 rows a cut inside it would choose


def test_the_level2_product_is_the_sparse_product_and_ignores_the_batch() -> None:
    """Gathered in float64: equal to SciPy's product, and a row scores the same alone, in a
    batch or in a batch split to bound memory (so one text and a batch agree to the bit)."""
    rng = np.random.default_rng(0)
    n, labels, n_views = 40, 30, 3
    views = rng.normal(-1, 1, (n, n_views * labels)).astype(np.float32)
    views[[0, -1]] = -5  # rows with no input at all
    coef = sp.random(n_views * labels, labels, density=0.3, format="csr", random_state=1)
    coef = coef.astype(np.float32)
    rows = _input_rows(views, -1.0, labels, 5)
    batch = level2_product(rows, coef)
    expected = (inputs(views, -1.0, labels, 5) @ coef).toarray()
    np.testing.assert_allclose(batch, expected, rtol=1e-5, atol=1e-5)
    alone = [level2_product(_input_rows(views[i : i + 1], -1.0, labels, 5), coef) for i in range(n)]
    assert np.array_equal(batch, np.vstack(alone))
    assert np.array_equal(batch, level2_product(rows, coef, max_entries=10))


def test_the_candidates_product_is_the_whole_product_at_the_candidates_to_the_bit() -> None:
    """From dense weights, only each row's candidates: the very values of the whole gathered
    product there (ties at the k-th candidate included, rows with no input), so
    ``apply_level2`` answers the same with or without dense weights."""
    rng = np.random.default_rng(3)
    n, labels, n_views, k = 50, 25, 3, 4
    views = rng.normal(-1, 1, (n, n_views * labels)).astype(np.float32)
    views[[0, -1]] = -5  # no input
    views[1, :labels] = 0.5  # every label tied: all are candidates
    coef = sp.random(n_views * labels, labels, density=0.3, format="csr", random_state=2)
    coef = coef.astype(np.float32)
    dense = coef.toarray()
    mean_mask = best_k_mask(views[:, :labels], k)
    rows = _input_rows(views, -1.0, labels, k)
    full = level2_product(rows, coef)
    at = np.nonzero(mean_mask)
    assert np.array_equal(candidate_product(rows, dense, mean_mask), full[at])
    weights = LinearWeights(coef, rng.normal(0, 1, labels).astype(np.float32))
    for mix in (0.0, 0.5):
        assert np.array_equal(
            apply_level2(views, weights, -1.0, mix, k),
            apply_level2(views, weights, -1.0, mix, k, dense),
        )


def test_rows_with_no_input_at_all_score_from_the_intercepts() -> None:
    """A text of no known term on a model whose first level is negative everywhere: no row
    has an input (NumPy's bincount then answers int64 zeros); the second level still scores
    every label, from its intercepts, in float32."""
    labels, n_views = 4, 3
    views = np.full((2, n_views * labels), -5.0, dtype=np.float32)
    coef = sp.random(n_views * labels, labels, density=0.5, format="csr", random_state=0)
    weights = LinearWeights(coef.astype(np.float32), np.full(labels, -0.5, dtype=np.float32))
    product = level2_product(_input_rows(views, -1.0, labels, 2), weights.coef)
    assert product.dtype == np.float64 and not product.any()
    out = apply_level2(views, weights, -1.0, 0.0, 2)
    assert out.dtype == np.float32 and out.shape == (2, labels) and np.isfinite(out).all()


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 6),
    labels=st.integers(1, 6),
    low=st.floats(-20, 2),
    floor=st.sampled_from([-2.0, -1.0, -0.75]),
    k=st.integers(1, 6),
)
def test_any_views_score_every_label_in_float32(rows, labels, low, floor, k) -> None:
    """Whatever the first level gave (inputs for many labels, a few, or none at all), the
    second level answers finite float32 scores for every row and label."""
    rng = np.random.default_rng(rows * 100 + labels)
    views = rng.uniform(low, low + 3, (rows, 3 * labels)).astype(np.float32)
    coef = sp.random(3 * labels, labels, density=0.5, format="csr", random_state=0)
    weights = LinearWeights(coef.astype(np.float32), rng.normal(0, 1, labels).astype(np.float32))
    out = apply_level2(views, weights, floor, 0.5, k)
    assert out.dtype == np.float32 and out.shape == (rows, labels) and np.isfinite(out).all()
    dense = apply_level2(views, weights, floor, 0.5, k, coef.astype(np.float32).toarray())
    assert np.array_equal(out, dense)


def dense_inputs(views: np.ndarray, floor: float, labels: int, k: int) -> np.ndarray:
    """The definition of level 2's inputs, dense: ``max(view - floor, 0)`` with each view
    cut to each row's ``k`` best entries (ties with the k-th kept)."""
    z = np.maximum(views - floor, 0).astype(np.float32)
    for v in range(views.shape[1] // labels):
        block = slice(v * labels, (v + 1) * labels)
        z[:, block][~best_k_mask(views[:, block], k)] = 0
    return z


@settings(max_examples=80, deadline=None)
@given(
    rows=st.integers(0, 7),
    labels=st.integers(1, 9),
    n_views=st.sampled_from([1, 3]),
    k=st.integers(1, 10),
    floor=st.sampled_from([-1.0, -0.75, np.float64(-0.3)]),
    ties=st.booleans(),
    wide=st.booleans(),
)
def test_compiled_inputs_are_the_definition_to_the_bit(
    rows, labels, n_views, k, floor, ties, wide
) -> None:
    """``native.level2_inputs`` gives the rows of ``dense_inputs`` (zeros left out, in row
    order) and the candidates of ``best_k_mask`` of the first view, for float32 and float64
    views, ties at the k-th, k beyond the labels and rows of no input."""
    from classifier.native import level2_inputs

    rng = np.random.default_rng(rows * 1000 + labels * 10 + k)
    views = rng.normal(-1, 1, (rows, n_views * labels))
    if ties:
        views = np.round(views)  # many equal values, at the cut too
    if rows:
        views[0] = -5  # no input
    views = views.astype(np.float64 if wide else np.float32)
    (indptr, indices, data), (first, columns) = level2_inputs(views, floor, labels, k)
    expected = sp.csr_matrix(dense_inputs(views, floor, labels, k))
    assert np.array_equal(indptr, expected.indptr)
    assert np.array_equal(indices, expected.indices)
    assert data.dtype == np.float32 and np.array_equal(data, expected.data)
    mask = best_k_mask(views[:, :labels], k)
    at_rows, at_cols = np.nonzero(mask)
    assert np.array_equal(columns, at_cols)
    assert np.array_equal(np.repeat(np.arange(rows), np.diff(first)), at_rows)
