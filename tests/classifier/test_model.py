"""The model: label matrix, fitting, aggregation, decisions, validation split, predictions."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import jieba
import numpy as np
import pytest

from classifier.config import TrainingConfig
from classifier.corpus import read_corpus
from classifier.dataset import PreparedCorpus, validation_docs
from classifier.decision import decide, select, top_k, tune_threshold
from classifier.features import fit_features
from classifier.labels import choose_labels, label_matrix
from classifier.linear import fit_one_vs_rest
from classifier.model import MAX_SCORE_ROWS, aggregate, in_slices
from classifier.text import prepare_paragraph
from classifier.tokenizer import _SPACE_NEAR_CJK

# --- label matrix and fitting many labels ------------------------------------------------

N_MANY = 301  # well past the 127 an int8 index holds


def test_label_matrix_columns_beyond_127_labels() -> None:
    labels = [f"L{j}" for j in range(N_MANY)]
    last = N_MANY - 1
    tags = [(f"L{j}",) for j in range(N_MANY)] + [(f"L{last}", "L0", "unknown")]
    y = label_matrix(tags, labels)
    assert y.shape == (N_MANY + 1, N_MANY)
    dense = y.toarray()
    for j in range(N_MANY):
        expected = {j} | ({N_MANY} if j in (0, last) else set())
        assert set(np.flatnonzero(dense[:, j])) == expected
    assert dense.sum() == N_MANY + 2  # the unknown tag is ignored, no value wrapped


def test_fit_linear_keeps_label_columns_in_place_with_many_labels() -> None:
    """Label j's documents hold a unique token tokj: its weight must win column j."""
    texts, tags = [], []
    for j in range(N_MANY):
        for k in range(2):
            texts.append(f"tok{j} w{(j + k) % 5}")
            tags.append((f"L{j}",))
    labels = [f"L{j}" for j in range(N_MANY)]
    cfg = TrainingConfig(min_df=1, ngram_max=1, char_ngram_max=0)
    features, x = fit_features(texts, cfg)
    weights = fit_one_vs_rest(x, label_matrix(tags, labels), cfg)
    coef, intercept = weights.coef, weights.intercept
    assert coef.shape == (x.shape[1], N_MANY)
    assert intercept.shape == (N_MANY,)
    best = np.asarray(coef.toarray().argmax(axis=0)).ravel()
    vocabulary = features.blocks[0].vocabulary
    wrong = [j for j in range(N_MANY) if best[j] != vocabulary[f"tok{j}"]]
    assert wrong == []


@pytest.mark.parametrize("learner", ["svm", "logistic", "sgd"])
def test_every_learner_ranks_each_labels_own_token_first(learner: str) -> None:
    n = 12
    texts = [f"tok{j} w{(j + k) % 3}" for j in range(n) for k in range(3)]
    tags = [(f"L{j}",) for j in range(n) for _ in range(3)]
    labels = [f"L{j}" for j in range(n)]
    cfg = TrainingConfig(min_df=1, learner=learner, C=10.0)
    _, x = fit_features(texts, cfg)
    weights = fit_one_vs_rest(x, label_matrix(tags, labels), cfg)
    scores = np.asarray((x @ weights.coef).toarray()) + weights.intercept
    assert (scores.argmax(axis=1) == np.repeat(np.arange(n), 3)).all()


def test_pruning_drops_small_weights_only() -> None:
    texts = [f"tok{j} w{(j + k) % 3} common" for j in range(6) for k in range(3)]
    tags = [(f"L{j}",) for j in range(6) for _ in range(3)]
    labels = [f"L{j}" for j in range(6)]
    _, x = fit_features(texts, TrainingConfig(min_df=1))
    full = fit_one_vs_rest(x, label_matrix(tags, labels), TrainingConfig(min_df=1)).coef
    cfg = TrainingConfig(min_df=1, prune_below=0.1)
    pruned = fit_one_vs_rest(x, label_matrix(tags, labels), cfg).coef
    dense, kept = full.toarray(), pruned.toarray()
    assert pruned.nnz < full.nnz
    assert np.allclose(kept[np.abs(dense) > 0.1], dense[np.abs(dense) > 0.1])
    assert not kept[np.abs(dense) <= 0.1].any()


# --- labels and the validation split -----------------------------------------------------


def test_choose_labels_drops_rare_labels_and_reports_them() -> None:
    doc_tags = [("A", "B"), ("A",), ("A", "C"), ("B",), ("D",)]
    kept, dropped = choose_labels(doc_tags, 2, "drop")
    assert kept == ["A", "B"]  # by document frequency, then name
    assert dropped == {"C": 1, "D": 1}
    kept, dropped = choose_labels(doc_tags, 3, "drop")
    assert (kept, dropped) == (["A"], {"B": 2, "C": 1, "D": 1})
    kept, dropped = choose_labels(doc_tags, 3, "keep")
    assert (kept, dropped) == (["A", "B", "C", "D"], {})


def test_validation_split_is_by_document() -> None:
    data = PreparedCorpus()
    for d in range(40):
        data.doc_ids.append(f"doc{d}")
        data.doc_tags.append(("A",))
        for p in range(d % 3 + 1):
            data.texts.append(f"text {d} {p}")
            data.par_doc.append(d)
            data.par_len.append(5)
    is_val = validation_docs(data.doc_ids, 0.3)
    assert 0 < is_val.sum() < 40
    fit = data.subset(np.flatnonzero(~is_val).tolist())
    val = data.subset(np.flatnonzero(is_val).tolist())
    assert not set(fit.doc_ids) & set(val.doc_ids)
    assert fit.n_documents + val.n_documents == 40
    assert fit.n_paragraphs + val.n_paragraphs == data.n_paragraphs
    for part in (fit, val):
        for text, d in zip(part.texts, part.par_doc, strict=True):
            assert text.split()[1] == part.doc_ids[d].removeprefix("doc")


def test_validation_split_is_stable() -> None:
    ids = [f"doc-{i}.txt" for i in range(200)]
    first = validation_docs(ids, 0.2)
    assert np.array_equal(first, validation_docs(ids, 0.2))
    # adding documents does not move the old ones
    grown = validation_docs(ids + [f"new-{i}" for i in range(50)], 0.2)
    assert np.array_equal(grown[:200], first)
    # and it does not depend on the process (no salted built-in hash)
    code = (
        "import json, sys; from classifier.dataset import validation_docs; "
        "print(json.dumps(validation_docs(json.loads(sys.argv[1]), 0.2).tolist()))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(ids)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out) == first.tolist()


def test_validation_split_edge_cases() -> None:
    assert not validation_docs(["a", "b", "c"], 0.0).any()
    assert not validation_docs(["a"], 0.5).any()
    two = validation_docs(["a", "b"], 0.99)
    assert two.sum() == 1  # never everything: something must be left to fit
    assert validation_docs(["a", "b"], 0.0001).sum() == 1  # never nothing when asked for some


# --- aggregation and decisions ------------------------------------------------------------

SCORES = np.array([[0.2, 0.8], [0.6, 0.4], [1.0, 0.0]], dtype=np.float32)
PAR_DOC = np.array([0, 0, 1])


@pytest.mark.parametrize(
    ("rule", "weights", "expected"),
    [
        ("mean", None, [[0.4, 0.6], [1.0, 0.0], [0.0, 0.0]]),
        ("max", None, [[0.6, 0.8], [1.0, 0.0], [0.0, 0.0]]),
        ("weighted", np.array([1.0, 3.0, 5.0]), [[0.5, 0.5], [1.0, 0.0], [0.0, 0.0]]),
        ("weighted", None, [[0.4, 0.6], [1.0, 0.0], [0.0, 0.0]]),
    ],
)
def test_aggregate(rule: str, weights, expected) -> None:
    out = aggregate(SCORES, PAR_DOC, 3, rule, weights)
    assert out.shape == (3, 2)
    np.testing.assert_allclose(out, np.array(expected), atol=1e-6)


def test_top_k_orders_best_first() -> None:
    scores = np.array([[0.1, 0.7, 0.5, 0.9], [0.3, 0.2, 0.1, 0.0]])
    idx, top = top_k(scores, 3)
    assert idx.tolist() == [[3, 1, 2], [0, 1, 2]]
    np.testing.assert_allclose(top, [[0.9, 0.7, 0.5], [0.3, 0.2, 0.1]])
    idx, _ = top_k(scores, 10)
    assert idx.shape == (2, 4)


@pytest.mark.parametrize("seed", range(40))
def test_top_k_of_one_row_is_its_row_of_a_batch_ties_and_all(seed: int) -> None:
    """One text takes a shorter path through ``top_k``: the same labels in the same order as
    its row in a batch, ties (scores rounded to few values) broken alike."""
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 900)), int(rng.integers(1, 12))
    batch = rng.random((3, n)).astype(np.float32)
    if seed % 2:
        batch = np.round(batch * 3) / 3
    for r in range(3):
        one_idx, one_top = top_k(batch[r : r + 1], k)
        idx, top = top_k(batch, k)
        assert np.array_equal(one_idx[0], idx[r]) and np.array_equal(one_top[0], top[r])


@pytest.mark.parametrize(
    ("threshold", "min_labels", "max_labels", "expected"),
    [
        (0.6, 1, 10, [(3, 0.9), (1, 0.7)]),
        (0.6, 1, 1, [(3, 0.9)]),
        (0.95, 1, 10, [(3, 0.9)]),  # none reaches it: the best one anyway
        (0.95, 0, 10, []),
        (0.95, 2, 10, [(3, 0.9), (1, 0.7)]),
        (0.0, 0, 10, [(3, 0.9), (1, 0.7), (2, 0.5), (0, 0.1)]),
    ],
)
def test_decide(threshold, min_labels, max_labels, expected) -> None:
    scores = np.array([[0.1, 0.7, 0.5, 0.9]])
    (row,) = decide(scores, threshold, min_labels, max_labels)
    assert [i for i, _ in row] == [i for i, _ in expected]
    np.testing.assert_allclose([s for _, s in row], [s for _, s in expected])


def test_select_forces_min_labels() -> None:
    top = np.array([[0.9, 0.4, 0.1]])
    assert select(top, 0.5, 0).tolist() == [[True, False, False]]
    assert select(top, 0.95, 2).tolist() == [[True, True, False]]


def test_tune_threshold_picks_best_micro_f1() -> None:
    top = np.array([[0.9, 0.4], [0.8, 0.3]])
    hits = np.array([[True, False], [True, False]])
    # F1 is 4/6 at t <= 0.3, 0.8 at t <= 0.4, 1.0 for 0.4 < t <= 0.8, 2/3 above: first best wins
    t, f1 = tune_threshold(top, hits, n_gold=2, min_labels=0)
    assert t == pytest.approx(0.41)
    assert f1 == pytest.approx(1.0)
    # gold labels no row ranks count as misses: recall can no longer be perfect
    t, f1 = tune_threshold(top, hits, n_gold=4, min_labels=0)
    assert (t, f1) == (pytest.approx(0.41), pytest.approx(2 * 2 / (2 + 4)))
    # with one label forced per row, thresholds above 0.8 tie with 0.41; the first best wins
    t, f1 = tune_threshold(top, hits, n_gold=2, min_labels=1)
    assert (t, f1) == (pytest.approx(0.41), pytest.approx(1.0))
    # all rows wrong at rank 1, right at rank 2: only a low threshold finds them
    t, f1 = tune_threshold(top, ~hits, n_gold=2, min_labels=0)
    assert (t, f1) == (pytest.approx(0.01), pytest.approx(2 * 2 / (4 + 2)))


# --- the trained session model ------------------------------------------------------------

TEXTS = [
    "各国应加强学校教育，提高女童入学率，改善农村地区的教学条件。",
    "维和特派团在报告所述期间记录了侵犯人权事件。\n安全理事会延长了特派团的任务期限。",
    "xyz",
    "。",
    "粮食 安全 和 营养 问题 依然 严峻 ， 干旱 导致 作物 歉收 。",
]


def test_scores_are_probabilities(model) -> None:
    texts = [*TEXTS, "教育" * 2000, "妇女 权利 " * 500]
    scores = model.score_paragraphs(texts)
    assert scores.shape == (len(texts), model.n_labels)
    assert np.isfinite(scores).all()
    assert (scores >= 0).all() and (scores <= 1).all()
    docs, splits, par_scores = model.score_documents(texts)
    assert (docs >= 0).all() and (docs <= 1).all()
    assert par_scores.shape[0] == sum(len(s) for s in splits)


def test_predict_returns_at_least_one_tag_by_default(model) -> None:
    predictions = model.predict(TEXTS)
    assert len(predictions) == len(TEXTS)
    labels = set(model.labels)
    for pred in predictions:
        assert 1 <= len(pred.tags) <= model.config.max_labels
        assert {t.tag for t in pred.tags} <= labels
        scores = [t.score for t in pred.tags]
        assert scores == sorted(scores, reverse=True)
        assert pred.paragraphs is None


@pytest.mark.parametrize("threshold", [0.0, 0.2, 0.5, 0.8, 1.0])
def test_predict_with_threshold_returns_exactly_the_tags_reaching_it(model, threshold) -> None:
    docs, _, _ = model.score_documents(TEXTS)
    for row, pred in zip(docs, model.predict(TEXTS, threshold=threshold), strict=True):
        expected = {model.labels[j] for j in np.flatnonzero(row >= threshold)}
        assert {t.tag for t in pred.tags} == expected
        assert all(t.score >= threshold - 1e-6 for t in pred.tags)


def test_predict_threshold_may_return_no_tag(model) -> None:
    assert [p.tags for p in model.predict(["xyz"], threshold=1.0)] == [[]]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_k_caps_the_number_of_tags(model, k: int) -> None:
    docs, _, _ = model.score_documents(TEXTS)
    for pred in model.predict(TEXTS, top_k=k):
        assert 1 <= len(pred.tags) <= k
    for row, pred in zip(docs, model.predict(TEXTS, top_k=k, threshold=0.0), strict=True):
        best = [model.labels[j] for j in np.argsort(-row, kind="stable")[:k]]
        assert [t.tag for t in pred.tags] == best


def test_one_paragraph_document_scores_like_the_paragraph(model) -> None:
    """Without a second level a one-paragraph document scores as its paragraph; with one,
    as the second level over that paragraph's values (its mean, whole and max views)."""
    text = "各国应加强学校教育，提高女童入学率，改善农村地区的教学条件和师资水平。"
    assert model.split(text) == [text]
    docs, splits, _ = model.score_documents([text])
    assert splits == [[text]]
    if model.stacker is None:
        expected = model.score_paragraphs([text])[0]
    else:
        prepared = [prepare_paragraph(text, model.config.text)]
        values = model.scorer.decisions(prepared)
        views = np.hstack([values] * model.stacker.n_views)
        expected = model.stacker.scores(views)[0]
    np.testing.assert_allclose(docs[0], expected, rtol=0, atol=1e-6)


def test_predict_paragraphs(model) -> None:
    text = TEXTS[1]
    (pred,) = model.predict([text], paragraphs=True, threshold=0.0, top_k=2)
    assert [p.text for p in pred.paragraphs] == model.split(text)
    assert all(len(p.tags) == 2 for p in pred.paragraphs)


_MARK = re.compile(r"((?:^|\s)\d{1,3}\.\s)")


def _segmented(text: str) -> str:
    """jieba-segment each line with single spaces, keeping ` 1. ` paragraph markers intact."""
    lines = []
    for line in text.split("\n"):
        parts = _MARK.split(line)
        lines.append(
            "".join(
                p if i % 2 else " ".join(w for w in jieba.cut(p) if w.strip())
                for i, p in enumerate(parts)
            )
        )
    return "\n".join(lines)


def _raw(text: str) -> str:
    """Undo segmentation: drop whitespace next to CJK, except around paragraph markers."""
    parts = _MARK.split(text)
    return "".join(p if i % 2 else _SPACE_NEAR_CJK.sub("", p) for i, p in enumerate(parts))


def test_raw_and_presegmented_sample_documents_predict_alike(model, sample_dir) -> None:
    mismatches = []
    docs = list(read_corpus([sample_dir]))
    assert len(docs) == 72
    for doc in docs:
        presegmented = doc.text.count(" ") > 50
        raw, seg = (_raw(doc.text), doc.text) if presegmented else (doc.text, _segmented(doc.text))
        assert raw != seg
        a, b = model.predict([raw, seg], threshold=0.0, top_k=3)
        if [(t.tag, t.score) for t in a.tags] != [(t.tag, t.score) for t in b.tags]:
            mismatches.append(doc.id)
    assert mismatches == []


def test_raw_and_presegmented_enumeration_predict_alike(model) -> None:
    raw = (
        "各国应加强学校教育，提高女童入学率，改善农村地区的教学条件和师资水平，保障儿童的受教育权利。"
        "当前小学一、二年级学生的阅读能力普遍不足，粮食不安全和营养不良也影响了他们的学习成绩。"
    )
    seg = _segmented(raw)
    assert "小学 一 、 二年级" in seg
    a, b = model.predict([raw, seg])
    assert [(t.tag, t.score) for t in a.tags] == [(t.tag, t.score) for t in b.tags]


def test_scoring_in_slices_calls_bounded_rows_and_keeps_their_order() -> None:
    """A batch of any length is scored ``MAX_SCORE_ROWS`` rows at a time, in order."""
    sizes = []

    def score(rows):
        sizes.append(len(rows))
        return np.array([float(r) for r in rows], dtype=np.float32).reshape(-1, 1)

    for n in (0, 1, MAX_SCORE_ROWS, MAX_SCORE_ROWS + 1, 2 * MAX_SCORE_ROWS + 7):
        sizes.clear()
        out = in_slices(score, [str(i) for i in range(n)])
        assert out.shape == (n, 1) and np.array_equal(out[:, 0], np.arange(n))
        assert sum(sizes) == n and max(sizes) <= MAX_SCORE_ROWS
