"""The compiled feature counting against scikit-learn's vectorizers, whitespace of every kind
and very long texts included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier import native
from classifier.features import Features, TermBlock, cjk_words, join_cjk
from classifier.tokenizer import split_prepared


def test_whitespace_is_what_str_split_cuts_at() -> None:
    points = np.arange(0x110000, dtype=np.uint32)
    ours = native.spaces(points)
    theirs = np.fromiter((chr(c).isspace() for c in range(0x110000)), dtype=bool)
    assert np.array_equal(ours, theirs), np.flatnonzero(ours != theirs)[:10]


_TOKENS = st.sampled_from(["联合国", "的", "报告", "妇女", "un", "2030", "sdg", "𠀀", "é", "新"])
_GAPS = st.sampled_from([" ", " ", " ", "  ", "\t", "\u3000", "\n", "\xa0 ", " \x1c"])


@st.composite
def texts(draw: st.DrawFn) -> str:
    tokens = draw(st.lists(_TOKENS, max_size=10))
    gaps = draw(st.lists(_GAPS, min_size=len(tokens) + 1, max_size=len(tokens) + 1))
    return "".join(g + t for g, t in zip(gaps, tokens + [""], strict=True))


def _vectorizers(train: list[str], ngram_range: tuple[int, int], preprocessor=join_cjk):
    from sklearn.feature_extraction.text import TfidfVectorizer

    common = {"lowercase": False, "sublinear_tf": True, "dtype": np.float32}
    words = TfidfVectorizer(analyzer=split_prepared, **common).fit(train)
    chars = TfidfVectorizer(
        analyzer="char_wb", preprocessor=preprocessor, ngram_range=ngram_range, **common
    ).fit(train)
    return words, chars


def _block(analyzer: str, ngram_range: tuple[int, int], v) -> TermBlock:
    terms = tuple(sorted(v.vocabulary_, key=v.vocabulary_.get))
    return TermBlock(analyzer, ngram_range, terms, v.idf_)


@given(
    st.lists(texts(), min_size=1, max_size=6),
    st.lists(texts(), min_size=1, max_size=6),
    st.sampled_from([(1, 1), (1, 2), (2, 3)]),
    st.sampled_from(["chars", "cjk_chars"]),
)
@settings(max_examples=150, deadline=None)
def test_rows_are_scikit_learns_whatever_the_whitespace(
    train: list[str], test: list[str], ngram_range: tuple[int, int], analyzer: str
) -> None:
    """Tokens apart by any whitespace ``str.split`` knows; one plain space between two CJK
    characters joins them for the character n-grams, any other gap does not; "cjk_chars"
    takes the n-grams of the words holding a CJK character only."""
    train = [*train, "联合国 的 报告 un"]  # never an empty vocabulary
    preprocessor = cjk_words if analyzer == "cjk_chars" else join_cjk
    words, chars = _vectorizers(train, ngram_range, preprocessor)
    w, c = _block("words", (1, 1), words), _block(analyzer, ngram_range, chars)
    for ours, theirs in (
        (w.transform(test), words.transform(test)),
        (c.transform(test), chars.transform(test)),
    ):
        assert np.array_equal(ours.indptr, theirs.indptr)
        assert np.array_equal(ours.indices, theirs.indices)
        assert np.allclose(ours.data, theirs.data, rtol=1e-6, atol=0)
    both = Features((w, c)).transform(test)
    apart = np.hstack([w.transform(test).toarray(), c.transform(test).toarray()])
    assert np.array_equal(both.toarray(), apart)


def test_long_texts_and_many_of_them_count_linearly() -> None:
    """A text longer than any scratch array starts with, and more texts than one chunk: the
    same rows as one text at a time."""
    train = ["联合国 的 报告 un sdg", "妇女 的 教育 2030 报告"]
    words, chars = _vectorizers(train, (1, 2))
    features = Features((_block("words", (1, 1), words), _block("chars", (1, 2), chars)))
    long = " ".join(["联合国 的 报告 un"] * 20_000)
    many = ["联合国 的 报告", "", "un 2030 新"] * (native.CHUNK_TEXTS // 3 + 1) + [long]
    x = features.transform(many)
    assert x.shape == (len(many), features.n_features)
    for i in (0, 1, 2, native.CHUNK_TEXTS, len(many) - 1):
        assert (x[i] != features.transform([many[i]])).nnz == 0
    one = features.transform([long])
    assert one[0, features.blocks[0].vocabulary["报告"]] == pytest.approx(
        words.transform([long])[0, words.vocabulary_["报告"]], rel=1e-6
    )


@pytest.mark.parametrize("ngram_range", [(1, 2), (1, 3)])
def test_both_table_layouts_count_what_scikit_learn_counts(ngram_range: tuple[int, int]) -> None:
    """Keys of up to 31 bits go in the packed table (one int64 a slot), longer ones in the
    wide one: 3,000 characters need 12 bits each, so bigrams are packed, trigrams not; both
    give scikit-learn's rows."""
    rng = np.random.default_rng(5)
    chars = [chr(0x4E00 + i) for i in range(3000)]
    train = ["".join(rng.choice(chars, 40)) for _ in range(200)]
    test = ["".join(rng.choice(chars, 60)) for _ in range(20)] + [train[0]]
    _, reference = _vectorizers(train, ngram_range)
    block = _block("chars", ngram_range, reference)
    assert block._table.packed is (ngram_range[1] == 2)
    ours, theirs = block.transform(test), reference.transform(test)
    assert np.array_equal(ours.indices, theirs.indices)
    assert np.allclose(ours.data, theirs.data, rtol=1e-6, atol=0)


def test_a_term_listed_twice_or_too_long_is_refused() -> None:
    idf = np.ones(2, dtype=np.float32)
    with pytest.raises(ValueError, match="twice"):
        TermBlock("chars", (1, 2), ("联", "联"), idf)
    with pytest.raises(ValueError, match="characters"):
        TermBlock("chars", (1, 3), ("联合国家", "联"), idf)


@given(st.lists(texts(), min_size=1, max_size=8), st.sampled_from(["chars", "cjk_chars"]))
@settings(max_examples=100, deadline=None)
def test_fitted_terms_are_scikit_learns(train: list[str], analyzer: str) -> None:
    from classifier.config import TrainingConfig
    from classifier.features import fit_features

    train = [*train, "联合国 的 报告 un"]
    preprocessor = cjk_words if analyzer == "cjk_chars" else join_cjk
    _, reference = _vectorizers(train, (1, 2), preprocessor)
    cfg = TrainingConfig(min_df=1, char_ngram_max=2, char_scope="all")
    cfg = cfg.replace(char_scope="cjk" if analyzer == "cjk_chars" else "all")
    block = fit_features(train, cfg)[0].blocks[1]
    assert block.analyzer == analyzer
    assert block.terms == tuple(sorted(reference.vocabulary_, key=reference.vocabulary_.get))
    assert np.array_equal(block.idf, reference.idf_)


def test_cjk_characters_leave_latin_words_to_the_word_block() -> None:
    from classifier.config import TrainingConfig
    from classifier.features import fit_features, fit_features_chunked

    cfg = TrainingConfig(min_df=1, char_ngram_max=2, char_scope="cjk")
    features, x = fit_features(["联合国 报告 un sdg", "un report"], cfg)
    terms = features.blocks[1].terms
    assert "联合" in terms and not any(c.isascii() and c.isalnum() for t in terms for c in t)
    english = ["world bank report", "un sdg report"]
    for fit in (fit_features, lambda texts, c: fit_features_chunked(lambda: [texts], c)):
        features, x = fit(english, cfg)
        assert [b.analyzer for b in features.blocks] == ["words"]
        assert x.shape == (2, features.n_features)


def test_cjk_characters_all_pruned_leave_the_words_alone_on_both_fit_paths() -> None:
    from classifier.config import TrainingConfig
    from classifier.features import fit_features, fit_features_chunked

    rows = ["联合国 报告 un", "联合国 报告 sdg", "联合国 报告 un"]  # every CJK n-gram in all rows
    cfg = TrainingConfig(min_df=1, max_df=0.5, char_ngram_max=2, char_scope="cjk")
    whole, _ = fit_features(rows, cfg)
    chunked, _ = fit_features_chunked(lambda: ([r] for r in rows), cfg)
    assert [b.analyzer for b in whole.blocks] == [b.analyzer for b in chunked.blocks] == ["words"]


@pytest.mark.parametrize("scope", ["all", "cjk"])
def test_an_empty_chunk_adds_nothing_to_a_chunked_fit(scope: str) -> None:
    from classifier.config import TrainingConfig
    from classifier.features import fit_features, fit_features_chunked

    rows = ["联合国 报告 un", "妇女 的 教育 sdg", "联合国 的 教育"]
    cfg = TrainingConfig(min_df=1, char_ngram_max=2, char_scope=scope)
    whole, x = fit_features(rows, cfg)
    chunked, y = fit_features_chunked(lambda: iter([rows[:1], [], rows[1:]]), cfg)
    assert [b.terms for b in whole.blocks] == [b.terms for b in chunked.blocks]
    assert (x != y).nnz == 0


def _random_csr(rng: np.random.Generator, shape: tuple[int, int], most: int):
    """A CSR matrix of up to ``most`` entries a row, in any order, a column possibly listed
    twice (SciPy's products sum both)."""
    import scipy.sparse as sp

    counts = rng.integers(0, most + 1, shape[0])
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = rng.integers(0, shape[1], indptr[-1]).astype(np.int32)
    data = rng.normal(size=indptr[-1]).astype(np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=shape)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(0, 6),
    features=st.integers(1, 12),
    labels=st.integers(1, 9),
    most=st.integers(0, 15),
    seed=st.integers(0, 2**16),
    wide=st.booleans(),
)
def test_the_dense_product_is_scipys_sparse_product_to_the_bit(
    rows: int, features: int, labels: int, most: int, seed: int, wide: bool
) -> None:
    """Any shapes and densities (empty rows, empty matrices), int32 or int64 indices, a
    column listed twice: the same float32 sums as SciPy's product, in the same order."""
    rng = np.random.default_rng(seed)
    x = _random_csr(rng, (rows, features), most)
    w = _random_csr(rng, (features, labels), most)
    if wide:
        for m in (x, w):
            m.indices, m.indptr = m.indices.astype(np.int64), m.indptr.astype(np.int64)
    ours = native.dense_product(x, w)
    assert ours.dtype == np.float32 and ours.shape == (rows, labels)
    assert np.array_equal(ours, np.asarray((x @ w).toarray(), dtype=np.float32))
