"""Features: character n-grams beside word n-grams, independent of the segmentation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier.config import TrainingConfig
from classifier.errors import ClassifierError
from classifier.features import TermBlock, fit_features, join_cjk
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


def rebuilt(block: TermBlock) -> TermBlock:
    """The block as a model file gives it back: from its terms and IDF alone."""
    return TermBlock(block.analyzer, block.ngram_range, block.terms, block.idf, block.sublinear_tf)


def test_word_and_character_blocks_are_stacked() -> None:
    texts = [prepare(t) for t in ["联合国的报告", "妇女的权利和教育", "联合国 教育 报告 2023"]]
    features, x = fit_features(texts, CHARS)
    words, chars = features.blocks
    assert x.shape[1] == words.n_features + chars.n_features == features.n_features
    assert "合国" in chars.vocabulary and "的报" in chars.vocabulary  # across a word boundary
    # each block is L2-normalised on its own
    assert np.allclose((x.multiply(x)).sum(axis=1), 2.0)
    assert (features.transform(texts) != x).nnz == 0
    assert (type(features)((rebuilt(words), rebuilt(chars))).transform(texts) != x).nnz == 0
    assert features.term(words.n_features) == chars.terms[0]


def test_characters_of_cjk_words_beside_the_words_by_default() -> None:
    blocks = fit_features(["联合国 报告 un"], TrainingConfig(min_df=1))[0].blocks
    assert [b.analyzer for b in blocks] == ["words", "cjk_chars"]
    words_only = TrainingConfig(min_df=1, char_ngram_max=0)
    assert len(fit_features(["联合国 报告"], words_only)[0].blocks) == 1


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
    fast, x = fit_features(texts, TrainingConfig(min_df=1, char_ngram_max=0))
    plain = TfidfVectorizer(
        tokenizer=split_prepared,
        token_pattern=None,
        lowercase=False,
        sublinear_tf=True,
        dtype=np.float32,
    )
    theirs = plain.fit_transform(texts)
    theirs.sort_indices()  # scikit-learn's fitted rows come unsorted
    assert np.array_equal(x.indices, theirs.indices)
    assert np.allclose(x.toarray(), theirs.toarray(), rtol=1e-6, atol=0)
    assert fast.blocks[0].vocabulary == plain.vocabulary_


_WORDS = st.sampled_from(["联合国", "的", "报告", "妇女", "教育", "un", "2030", "新词", "sdg"])


@given(
    st.lists(st.lists(_WORDS, max_size=12).map(" ".join), min_size=1, max_size=6),
    st.booleans(),
)
@settings(max_examples=200, deadline=None)
def test_bulk_unigram_tfidf_is_scikit_learns_transform(docs: list[str], sublinear: bool) -> None:
    """Same rows and columns as TfidfVectorizer.transform, and the same values up to the
    order NumPy sums a row's squares in (a relative 1e-6), unknown words and empty texts
    included."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from classifier.tokenizer import split_prepared

    train = ["联合国 的 报告 报告", "妇女 的 教育 2030", "un sdg 报告", "教育 教育 的"]
    vectorizer = TfidfVectorizer(
        analyzer=split_prepared, lowercase=False, sublinear_tf=sublinear, dtype=np.float32
    ).fit(train)
    terms = tuple(sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get))
    ours = TermBlock("words", (1, 1), terms, vectorizer.idf_, sublinear).transform(docs)
    theirs = vectorizer.transform(docs)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    assert np.array_equal(ours.indptr, theirs.indptr)
    assert np.array_equal(ours.indices, theirs.indices)
    assert np.allclose(ours.data, theirs.data, rtol=1e-6, atol=0)


def test_other_blocks_transform_as_scikit_learn_fitted_them() -> None:
    """Word bigrams and character n-grams are counted by scikit-learn; a block rebuilt from
    its terms and IDF (as a model file gives it back) counts the same features."""
    texts = [prepare(t) for t in ["联合国的报告", "妇女的权利和教育", "联合国 教育 报告 2023"]]
    for cfg in (TrainingConfig(min_df=1, ngram_max=2), CHARS):
        features, x = fit_features(texts, cfg)
        assert (features.transform(texts) != x).nnz == 0
        again = type(features)(tuple(rebuilt(b) for b in features.blocks))
        assert (again.transform(texts) != x).nnz == 0
    bigrams = fit_features(texts, TrainingConfig(min_df=1, ngram_max=2))[0].blocks[0]
    assert "联合国 的" in bigrams.vocabulary  # bigrams of prepared tokens


_MIXED = st.sampled_from(
    ["联合国", "的", "报告", "妇女", "教育", "un", "2030", "sdg", "a", "x", "新", "𠀀", "é"]
)


@given(
    st.lists(st.lists(_MIXED, max_size=10).map(" ".join), min_size=1, max_size=8),
    st.lists(st.lists(_MIXED, max_size=10).map(" ".join), min_size=1, max_size=8),
    st.sampled_from([(1, 1), (1, 2), (2, 2), (1, 3), (2, 3)]),
    st.integers(1, 2),
)
@settings(max_examples=150, deadline=None)
def test_character_ngrams_are_scikit_learns_char_wb(
    train: list[str], test: list[str], ngram_range: tuple[int, int], min_df: int
) -> None:
    """Terms, IDF and rows as TfidfVectorizer(analyzer="char_wb", preprocessor=join_cjk)
    gives them, for prepared texts (words apart by single spaces) of CJK and Latin words,
    empty texts and characters never seen."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    reference = TfidfVectorizer(
        analyzer="char_wb",
        preprocessor=join_cjk,
        lowercase=False,
        ngram_range=ngram_range,
        min_df=min_df,
        sublinear_tf=True,
        dtype=np.float32,
    )
    try:
        x = reference.fit_transform(train)
    except ValueError:  # nothing frequent enough: ours refuses too
        with pytest.raises(ValueError):
            fit_features(
                train,
                TrainingConfig(
                    min_df=1,
                    char_ngram_min=ngram_range[0],
                    char_ngram_max=ngram_range[1],
                    char_scope="all",
                ).replace(min_df=min_df),
            )
        return
    cfg = TrainingConfig(
        min_df=min_df,
        char_ngram_min=ngram_range[0],
        char_ngram_max=ngram_range[1],
        char_scope="all",
    )
    block = TermBlock(
        "chars",
        ngram_range,
        tuple(sorted(reference.vocabulary_, key=reference.vocabulary_.get)),
        reference.idf_,
    )
    from classifier.features import _fit_chars

    fitted = _fit_chars(train, "chars", ngram_range, cfg)
    assert fitted.terms == block.terms
    assert np.array_equal(fitted.idf, reference.idf_)
    # the same entries; values up to the order a row's squares are summed in (NumPy's here;
    # scikit-learn leaves fitted rows unsorted after renumbering its columns)
    ours, theirs = fitted.transform(test), reference.transform(test)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    assert np.array_equal(ours.indptr, theirs.indptr)
    assert np.array_equal(ours.indices, theirs.indices)
    assert np.allclose(ours.data, theirs.data, rtol=1e-6, atol=0)
    ours, theirs = fitted.transform(train), x.copy()
    theirs.sort_indices()
    assert np.array_equal(ours.indptr, theirs.indptr)
    assert np.array_equal(ours.indices, theirs.indices)
    assert np.allclose(ours.data, theirs.data, rtol=1e-6, atol=0)


def test_character_ngrams_of_every_word_too_rare_are_refused() -> None:
    """The reproduction of a hypothesis case: "all" refuses a block with no frequent term;
    "cjk" leaves it out (the words are the model)."""
    train = ["联合国 的 联合国", "的"]
    cfg = TrainingConfig(min_df=2, char_ngram_min=2, char_ngram_max=2, char_scope="all")
    with pytest.raises(ValueError):
        fit_features(train, cfg)
    features, _ = fit_features(train, cfg.replace(char_scope="cjk"))
    assert [b.analyzer for b in features.blocks] == ["words"]
