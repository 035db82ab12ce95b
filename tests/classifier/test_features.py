"""Features: character n-grams beside word n-grams, independent of the segmentation."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier.config import TrainingConfig
from classifier.errors import ClassifierError
from classifier.features import build_vectorizer, join_cjk, transform, unigram_tfidf
from classifier.tokenizer import prepare

CHARS = TrainingConfig(min_df=1, char_ngram_min=1, char_ngram_max=2)


def test_join_cjk_undoes_segmentation_inside_cjk_runs_only() -> None:
    assert join_cjk("联合国 的 报告 sdg 4 年") == "联合国的报告 sdg 4 年"
    assert join_cjk("world bank 报告") == "world bank 报告"


@given(st.lists(st.sampled_from(["联合国", "的", "报告", "妇女", "教育", "un", "2030", "。"])))
def test_character_features_do_not_depend_on_the_segmentation(words: list[str]) -> None:
    raw = "".join(f" {w} " if w.isascii() else w for w in words)  # Latin words stay apart
    spaced = " ".join(words)
    assert join_cjk(prepare(raw)) == join_cjk(prepare(spaced))


def test_word_and_character_blocks_are_stacked(tmp_path: Path) -> None:
    texts = [prepare(t) for t in ["联合国的报告", "妇女的权利和教育", "联合国 教育 报告 2023"]]
    vectorizer = build_vectorizer(CHARS)
    x = vectorizer.fit_transform(texts)
    words, chars = vectorizer.parts
    assert x.shape[1] == len(words.vocabulary_) + len(chars.vocabulary_)
    assert "合国" in chars.vocabulary_ and "的报" in chars.vocabulary_  # across a word boundary
    # each block is L2-normalised on its own
    assert np.allclose((x.multiply(x)).sum(axis=1), 2.0)
    joblib.dump(vectorizer, tmp_path / "v.joblib")
    assert (joblib.load(tmp_path / "v.joblib").transform(texts) != x).nnz == 0
    assert (build_vectorizer(CHARS).fit(texts).transform(texts) != x).nnz == 0


def test_words_only_by_default() -> None:
    assert not hasattr(build_vectorizer(TrainingConfig()), "parts")
    assert len(build_vectorizer(CHARS).parts) == 2


@pytest.mark.parametrize(
    "values", [{"char_ngram_min": 0}, {"char_ngram_min": 3, "char_ngram_max": 2}]
)
def test_invalid_character_ranges_are_refused(values: dict) -> None:
    with pytest.raises(ClassifierError, match="char_ngram"):
        TrainingConfig(**values)


def test_unigram_analyzer_gives_the_features_of_the_tokenizer_form() -> None:
    """Unigrams take the prepared tokens as the analyzer; bigrams go through the tokenizer."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from classifier.tokenizer import split_prepared

    texts = [prepare(t) for t in ["联合国的报告", "妇女的权利和教育 2030", "联合国 教育 报告 sdg"]]
    fast = build_vectorizer(TrainingConfig(min_df=1))
    plain = TfidfVectorizer(
        tokenizer=split_prepared,
        token_pattern=None,
        lowercase=False,
        sublinear_tf=True,
        dtype=np.float32,
    )
    assert (fast.fit_transform(texts) != plain.fit_transform(texts)).nnz == 0
    assert fast.vocabulary_ == plain.vocabulary_


_WORDS = st.sampled_from(["联合国", "的", "报告", "妇女", "教育", "un", "2030", "新词", "sdg"])


@given(
    st.lists(st.lists(_WORDS, max_size=12).map(" ".join), min_size=1, max_size=6),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["l2", None]),
)
@settings(max_examples=200, deadline=None)
def test_bulk_unigram_tfidf_is_scikit_learns_transform(
    docs: list[str], sublinear: bool, binary: bool, norm: str | None
) -> None:
    """Same rows, columns and values (to the bit) as TfidfVectorizer.transform, unknown words
    and empty texts included."""
    train = ["联合国 的 报告 报告", "妇女 的 教育 2030", "un sdg 报告", "教育 教育 的"]
    vectorizer = build_vectorizer(TrainingConfig(min_df=1, sublinear_tf=sublinear))
    vectorizer.set_params(binary=binary, norm=norm).fit(train)
    ours, theirs = unigram_tfidf(vectorizer, docs), vectorizer.transform(docs)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    assert np.array_equal(ours.indptr, theirs.indptr)
    assert np.array_equal(ours.indices, theirs.indices)
    assert np.array_equal(ours.data, theirs.data)


def test_transform_in_bulk_for_word_analyzer_unigrams_of_older_models() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from classifier.tokenizer import split_prepared

    texts = [prepare(t) for t in ["联合国的报告", "妇女的权利和教育 2030", "联合国 教育 报告 sdg"]]
    older = TfidfVectorizer(
        tokenizer=split_prepared, token_pattern=None, lowercase=False, dtype=np.float32
    ).fit(texts)
    assert np.array_equal(transform(older, texts).data, unigram_tfidf(older, texts).data)
    assert (transform(older, texts) != older.transform(texts)).nnz == 0


def test_transform_uses_scikit_learn_for_other_features() -> None:
    texts = [prepare(t) for t in ["联合国的报告", "妇女的权利和教育"]]
    for cfg in (TrainingConfig(min_df=1, ngram_max=2), CHARS):
        vectorizer = build_vectorizer(cfg).fit(texts)
        assert (transform(vectorizer, texts) != vectorizer.transform(texts)).nnz == 0
