"""Streaming featurisation: chunked fitting gives the same blocks, matrix and model as fitting
on every text at once, and holds no more than a couple of chunks at a time."""

from __future__ import annotations

import random
import weakref
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from classifier import dataset, fit
from classifier.config import TrainingConfig
from classifier.corpus import read_corpus
from classifier.dataset import prepare_corpus
from classifier.features import fit_features, fit_features_chunked
from classifier.fit import fit_classifier

WORDS = [f"w{i}" for i in range(200)] + ["联合国", "报告", "发展", "妇女", "教育"]
# the sample's documents cut into several paragraphs each (whole-document rows and views)
SHORT_PARAGRAPHS = TrainingConfig(max_paragraph_chars=400, min_paragraph_chars=100)
CONFIGS = {
    "default": TrainingConfig(),
    "min_df=1": TrainingConfig(min_df=1),
    "max_features": TrainingConfig(max_features=40),
    "bigrams, max_df": TrainingConfig(ngram_max=2, max_df=0.3),
    "characters": TrainingConfig(min_df=2, char_ngram_max=2),
}


def texts(n: int = 900, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    # some empty texts, some of one word, Zipf-like reuse of the words
    return [" ".join(rng.choices(WORDS, weights=range(205, 0, -1), k=rng.randint(0, 25)))
            for _ in range(n)]  # fmt: skip


def same_matrix(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("chunk", [1, 97, 10_000])
def test_chunked_fit_gives_the_same_terms_idf_and_matrix(name: str, chunk: int) -> None:
    rows = texts(300 if chunk == 1 else 900)
    whole, x = fit_features(rows, CONFIGS[name])
    chunked, y = fit_features_chunked(
        lambda: (rows[i : i + chunk] for i in range(0, len(rows), chunk)), CONFIGS[name]
    )
    assert len(whole.blocks) == len(chunked.blocks)
    for a, b in zip(whole.blocks, chunked.blocks, strict=True):
        assert a.terms == b.terms and a.analyzer == b.analyzer
        assert a.idf.dtype == b.idf.dtype and np.array_equal(a.idf, b.idf)
    assert same_matrix(x, y)


def test_chunked_fit_fails_as_the_whole_fit_does() -> None:
    for rows, cfg in ((["", " "], TrainingConfig()), (["a b", "c d"], TrainingConfig(min_df=2))):
        with pytest.raises(ValueError) as whole:
            fit_features(rows, cfg)
        with pytest.raises(ValueError) as chunked:
            fit_features_chunked(lambda rows=rows: ([r] for r in rows), cfg)
        assert str(whole.value) == str(chunked.value)


class Chunk(list):
    """A chunk of rows that can be watched (a plain list cannot be weakly referenced)."""


def test_chunked_fit_holds_at_most_two_chunks_at_once() -> None:
    rows = texts(2000)
    alive: list[int] = []
    watched: set[int] = set()

    def chunks() -> Iterator[Chunk]:
        for i in range(0, len(rows), 50):
            chunk = Chunk(rows[i : i + 50])
            watched.add(id(chunk))
            weakref.finalize(chunk, watched.discard, id(chunk))
            alive.append(len(watched))
            yield chunk

    fit_features_chunked(chunks, TrainingConfig(char_ngram_max=2))
    assert len(alive) == 2 * 40  # both passes read every chunk
    assert max(alive) <= 2  # the chunk being made, and the one before it not yet dropped


def test_a_spooled_corpus_keeps_no_text_and_gives_them_back_in_order(
    sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dataset, "BATCH_CHARS", 1_000)  # many chunks from the small corpus
    cfg = SHORT_PARAGRAPHS.resolved()
    held = prepare_corpus(read_corpus([sample_dir]), cfg.text)
    spooled = prepare_corpus(read_corpus([sample_dir]), cfg.text, spool=tmp_path / "spool")
    assert spooled.texts == [] and spooled.spool is not None and spooled.spool.n_chunks > 10
    assert [t for c in spooled.paragraph_chunks() for t in c] == held.texts
    assert list(spooled.par_doc) == list(held.par_doc)
    assert spooled.doc_ids == held.doc_ids and spooled.n_paragraphs == held.n_paragraphs
    counts = np.bincount(np.asarray(held.par_doc), minlength=held.n_documents)
    multi = np.flatnonzero(counts > 1)
    assert len(multi) > 3
    joined = held.joined()
    for data in (held, spooled):
        got = [t for c in data.document_chunks(multi, rows=3) for t in c]
        assert got == [joined[d] for d in multi]


def whole_fit(rows, cfg):  # what fit_cross_validated did before it featurised in chunks
    return fit_features([t for chunk in rows() for t in chunk], cfg)


@pytest.mark.parametrize("train_on_documents", [False, True])
def test_a_model_fitted_from_a_spool_is_the_model_fitted_from_all_the_texts(
    sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, train_on_documents: bool
) -> None:
    cfg = replace(SHORT_PARAGRAPHS, train_on_documents=train_on_documents).resolved()
    monkeypatch.setattr(dataset, "BATCH_CHARS", 20_000)
    spooled = prepare_corpus(read_corpus([sample_dir]), cfg.text, spool=tmp_path / "spool")
    streamed, _ = fit_classifier(spooled, cfg)
    with monkeypatch.context() as m:
        m.setattr(fit, "fit_features_chunked", whole_fit)
        reference, _ = fit_classifier(prepare_corpus(read_corpus([sample_dir]), cfg.text), cfg)
    assert streamed.labels == reference.labels
    a, b = streamed.scorer, reference.scorer
    for x, y in zip(a.features.blocks, b.features.blocks, strict=True):
        assert x.terms == y.terms and np.array_equal(x.idf, y.idf)
    assert same_matrix(a.weights.coef, b.weights.coef)
    assert np.array_equal(a.weights.intercept, b.weights.intercept)
    assert (a.calibration.a, a.calibration.b) == (b.calibration.a, b.calibration.b)
    assert streamed.thresholds.level == reference.thresholds.level
    assert streamed.stacker is not None and reference.stacker is not None
    assert same_matrix(streamed.stacker.weights.coef, reference.stacker.weights.coef)
