"""The labels' names as evidence: the arithmetic of the boost, the rule that chooses it, and
a corpus of rare labels that say their own names, fitted, saved and loaded."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from classifier.config import TrainingConfig
from classifier.corpus import Document
from classifier.dataset import PreparedCorpus, prepare_corpus
from classifier.errors import IncompatibleModelError
from classifier.fit import fit_classifier
from classifier.names import NAME_PRIOR_DOCS, NAME_WEIGHTS, boost, choose, label_weights
from classifier.registry import load_model, save_model
from training.evaluate import evaluate_prepared

CFG = TrainingConfig(segmenter="rjieba")


@pytest.mark.parametrize("dense", [False, True], ids=["sparse (training)", "dense (prediction)"])
def test_the_boost_moves_a_score_in_logit_space_only_where_a_name_is_said(dense: bool) -> None:
    scores = np.array([[0.2, 0.6, 0.9], [0.5, 0.01, 0.3]], dtype=np.float32)
    similarity = np.array([[0.0, 0.5, 0.0], [1.0, 0.0, 0.25]], dtype=np.float32)
    if not dense:
        similarity = sp.csr_matrix(similarity)
    weight = np.array([2.0, 4.0, 0.0], dtype=np.float32)
    out = boost(scores, similarity, weight)
    expected = scores.astype(np.float64).copy()
    for r, c in ((0, 1), (1, 0), (1, 2)):
        z = np.log(scores[r, c] / (1 - scores[r, c])) + weight[c] * similarity[r, c]
        expected[r, c] = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out[0, 0] == scores[0, 0] and out[0, 2] == scores[0, 2]  # no name said: as it was
    assert out[1, 2] == pytest.approx(scores[1, 2], rel=1e-6)  # a weight of zero: as it was
    nothing = np.zeros(scores.shape, dtype=np.float32)
    assert np.array_equal(
        boost(scores, nothing if dense else sp.csr_matrix(nothing), weight), scores
    )
    if dense:  # the same numbers as the sparse path's
        assert np.array_equal(out, boost(scores, sp.csr_matrix(similarity), weight))


def test_a_name_counts_less_the_more_training_documents_a_label_has() -> None:
    w = label_weights(np.array([0, 10, 100]), 10.0, 8.0)
    np.testing.assert_allclose(w, [8.0, 4.0, 8.0 / 11.0], rtol=1e-6)


def test_names_are_chosen_only_for_more_macro_f1_at_no_loss_of_micro_f1() -> None:
    scores = np.full((2, 2), 0.5, dtype=np.float32)
    similarity = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 0.0]], dtype=np.float32))
    positives = np.array([1, 1])

    def measure_with(micro_drop: float):
        def measure(s: np.ndarray) -> tuple[float, float]:
            lift = float(s[0, 0] - 0.5)  # grows with the weight tried
            return 0.8 - micro_drop * lift, 0.4 + lift

        return measure

    weight, report = choose(scores, similarity, positives, measure_with(0.0))
    assert report["chosen"] == {"prior_docs": NAME_PRIOR_DOCS[-1], "weight": NAME_WEIGHTS[-1]}
    assert weight is not None
    assert weight[0] == pytest.approx(NAME_WEIGHTS[-1] / (1 + 1 / NAME_PRIOR_DOCS[-1]))
    assert len(report["tried"]) == 1 + len(NAME_PRIOR_DOCS) * len(NAME_WEIGHTS)
    weight, report = choose(scores, similarity, positives, measure_with(1e-3))
    assert weight is None and report["chosen"] is None  # every weight costs micro-F1


NOISE = [f"杂{i}" for i in range(200)]
COMMON = ["经济", "体育", "教育"]
RARE = [
    "火山",
    "冰川",
    "沙漠",
    "森林",
    "海洋",
    "草原",
    "峡谷",
    "湖泊",
    "河流",
    "岛屿",
    "高原",
    "盆地",
]


def named_corpus(seed: int, rare_docs: int) -> list[Document]:
    """Three common labels with words of their own, and twelve rare labels (``rare_docs``
    documents each) whose documents say the label's name and nothing else of theirs."""
    rng = random.Random(seed)
    docs = []
    for d in range(240):
        topic = d % 3
        words = [f"{COMMON[topic]}词{rng.randrange(20)}" for _ in range(12)]
        words += rng.choices(NOISE, k=40)
        tags = [COMMON[topic]]
        if d < rare_docs * len(RARE):
            rare = RARE[d % len(RARE)]
            words += [rare] * 2
            tags.append(rare)
        rng.shuffle(words)
        docs.append(Document(f"n{seed}-{d}", " ".join(words), tuple(sorted(tags))))
    return docs


# a text that says one rare label's name twice and nothing else of any label's
SAYS_ITS_NAME = " ".join([RARE[3], *NOISE[:20], RARE[3]])


def save_named_model(models_dir: Path) -> None:
    """A model of ``named_corpus`` (its labels' names read) saved as ``default`` in
    ``models_dir``, for the tests of the service, the CLI and the page."""
    cfg = CFG.resolved()
    model, _ = fit_classifier(prepare_corpus(named_corpus(1, 2), cfg.text), cfg)
    assert model.names is not None
    save_model(
        models_dir, "default", model, {"labels": list(model.labels)}, "20240101-000000-aaaaaaaa"
    )


@pytest.fixture(scope="module")
def named() -> tuple[PreparedCorpus, PreparedCorpus]:
    text = CFG.resolved().text
    return prepare_corpus(named_corpus(1, 2), text), prepare_corpus(named_corpus(2, 1), text)


def test_rare_labels_that_say_their_names_are_found_and_survive_a_save(
    named, tmp_path: Path
) -> None:
    model, report = fit_classifier(named[0], CFG.resolved())
    chosen = report.cross_validation["names"]["chosen"]
    assert chosen is not None and model.names is not None
    without, _ = fit_classifier(named[0], CFG.replace(label_names=False).resolved())
    assert without.names is None
    ours, theirs = evaluate_prepared(model, named[1]), evaluate_prepared(without, named[1])
    assert ours["document"]["macro"]["f1"] > theirs["document"]["macro"]["f1"] + 0.05
    assert ours["document"]["micro"]["f1"] >= theirs["document"]["micro"]["f1"] - 0.01
    save_model(tmp_path, "named", model, {"labels": list(model.labels)}, "20240101-000000-aaaaaaaa")
    again = load_model(tmp_path, "named").model
    assert again.names is not None
    assert np.array_equal(again.names.weight, model.names.weight)
    assert (again.names.vectors != model.names.vectors).nnz == 0
    texts = [named[1].texts[0], " ".join([RARE[3], *NOISE[:30]])]
    assert again.predict(texts) == model.predict(texts)


@pytest.mark.parametrize(
    "weight", [[-1.0], [float("nan")], "short"], ids=["negative", "nan", "wrong length"]
)
def test_a_crafted_names_weight_is_refused(named, tmp_path: Path, weight) -> None:
    model, _ = fit_classifier(named[0], CFG.resolved())
    folder = save_model(
        tmp_path, "named", model, {"labels": list(model.labels)}, "20240101-000000-aaaaaaaa"
    )
    with np.load(folder / "arrays.npz") as npz:
        arrays = dict(npz)
    n = len(model.labels)
    arrays["names.weight"] = (
        np.ones(n - 1, dtype=np.float32)
        if weight == "short"
        else np.full(n, weight[0], dtype=np.float32)
    )
    np.savez_compressed(folder / "arrays.npz", **arrays)
    _rehash(folder)
    with pytest.raises(IncompatibleModelError, match="names.weight"):
        load_model(tmp_path, "named")


def _rehash(folder: Path) -> None:
    """The metadata's size and checksum of arrays.npz made right again (the tampering
    under test is of the content, not of the checksum)."""
    from classifier.artifact import ARRAYS_FILE, META_FILE, sha256_file

    meta = json.loads((folder / META_FILE).read_text())
    meta["files"][ARRAYS_FILE] = {
        "bytes": (folder / ARRAYS_FILE).stat().st_size,
        "sha256": sha256_file(folder / ARRAYS_FILE),
    }
    (folder / META_FILE).write_text(json.dumps(meta))


def test_the_rise_a_name_gave_is_explained_by_the_terms_shared_with_it(named) -> None:
    from dataclasses import replace

    from classifier.explain import MIN_NAME_SHIFT, explain_predictions
    from classifier.names import LabelNames
    from classifier.text import prepare_text

    model, _ = fit_classifier(named[0], CFG.resolved())
    assert model.names is not None
    name = RARE[3]
    text = " ".join([name, *NOISE[:20], name, f"{COMMON[0]}词1"])
    (prediction,) = model.predict([text], top_k=20, threshold=0.0)
    (why,) = explain_predictions(model, [text], [prediction], n_terms=20)
    assert COMMON[1] in {t.tag for t in prediction.tags}
    assert name in why.names and COMMON[1] not in why.names  # 体育 is not in the text
    evidence = why.names[name]
    assert {text[a:b] for e in evidence for a, b in e.spans} >= {name}
    assert all(text[a:b] in name for e in evidence for a, b in e.spans)
    # the parts add up to the logit shift the name gave the score, but for the n-gram of
    # the padding space alone (" "), which is no text to show
    x = model.scorer.transform(prepare_text(text, model.config.text).tokens)
    j = model.labels.index(name)
    shift = float(model.names.paragraph_similarity_dense(x)[:, j].mean() * model.names.weight[j])
    terms = [t for b in model.scorer.features.blocks for t in b.terms]
    pad = [f for f, t in enumerate(terms) if not t.strip(" ")]
    padding = float((x[:, pad] @ model.names.vectors[pad, j]).toarray().mean())
    padding *= float(model.names.weight[j])
    assert shift >= MIN_NAME_SHIFT
    assert sum(e.contribution for e in evidence) == pytest.approx(shift - padding, rel=1e-4)
    # a name that moved the score by less than MIN_NAME_SHIFT is not given as a reason
    faint = replace(
        model,
        names=LabelNames(model.names.vectors, model.names.weight * (0.5 * MIN_NAME_SHIFT / shift)),
    )
    (quiet,) = explain_predictions(faint, [text], faint.predict([text], top_k=20, threshold=0.0))
    assert name not in quiet.names
