"""Feature extraction over prepared text: TF-IDF blocks of word n-grams and character n-grams.

A fitted block is plain data (its terms in column order and their IDF), so a model file holds
arrays and JSON only. Word unigrams and character n-grams are counted by compiled code
(``classifier.native``, both blocks in one pass), the same rows as scikit-learn's
``TfidfVectorizer`` gives; word n-grams longer than one are counted by a scikit-learn
vectorizer rebuilt from the block's terms.

Character n-grams are taken from the prepared text with the segmenter's word boundaries
inside CJK runs removed again (``join_cjk``), so they do not depend on how a text was
segmented: a word the dictionary splits differently in two contexts still shares its
character bigrams. Latin words keep their boundaries (``char_wb`` pads each word).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from classifier import native, tokenizer
from classifier.tokenizer import CJK

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from classifier.config import TrainingConfig

# character n-grams of every word ("chars"), or of the words holding a CJK character only
# ("cjk_chars": Latin words are left to the word block)
Analyzer = Literal["words", "chars", "cjk_chars"]
ANALYZERS = ("words", "chars", "cjk_chars")
_SPACE_IN_CJK = re.compile(rf"(?<=[{CJK}]) (?=[{CJK}])")
_A_CJK = re.compile(rf"[{CJK}]")


def join_cjk(prepared: str) -> str:
    """Undo the segmentation inside CJK runs of a prepared text (``联合国 的`` → ``联合国的``)."""
    return _SPACE_IN_CJK.sub("", prepared)


def cjk_words(prepared: str) -> str:
    """``join_cjk``'s words that hold a CJK character: what "cjk_chars" takes n-grams of."""
    return " ".join(w for w in join_cjk(prepared).split() if _A_CJK.search(w))


@dataclass(frozen=True)
class TermBlock:
    """One block of features: L2-normalised (sublinear) TF-IDF over its terms.

    ``terms[j]`` is the term of column j; ``analyzer`` and ``ngram_range`` say how terms are
    made from a prepared text (word n-grams, or character n-grams of ``join_cjk``'s text).
    """

    analyzer: Analyzer
    ngram_range: tuple[int, int]
    terms: tuple[str, ...]
    idf: NDArray[np.float32]
    sublinear_tf: bool = True
    _table: native.WordTable | native.CharTable | None = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.analyzer not in ANALYZERS:
            raise ValueError(f"analyzer must be one of {ANALYZERS}")
        if len(self.idf) != len(self.terms):
            raise ValueError("one IDF value per term")
        table: native.WordTable | native.CharTable | None = None
        if self.analyzer != "words":
            cjk_only = self.analyzer == "cjk_chars"
            table = native.CharTable.of(self.terms, self.ngram_range, cjk_only)
        elif self.unigrams:
            table = native.WordTable.of(self.terms)
        object.__setattr__(self, "_table", table)

    @cached_property
    def vocabulary(self) -> dict[str, int]:
        """Each term's column."""
        return dict(zip(self.terms, range(len(self.terms)), strict=True))

    @property
    def n_features(self) -> int:
        return len(self.terms)

    @property
    def unigrams(self) -> bool:
        return self.analyzer == "words" and tuple(self.ngram_range) == (1, 1)

    def transform(self, prepared: Sequence[str]) -> sp.csr_matrix:
        """TF-IDF rows of prepared texts (float32, one row a text)."""
        if isinstance(self._table, native.WordTable):
            return native.tfidf_rows(prepared, self._table, None, self.idf32, self.sublinear_tf)
        if isinstance(self._table, native.CharTable):
            return native.tfidf_rows(prepared, None, self._table, self.idf32, self.sublinear_tf)
        from sklearn import config_context

        # scikit-learn's input checks skipped: our own code made the input
        with config_context(assume_finite=True, skip_parameter_validation=True):
            return sp.csr_matrix(self._vectorizer.transform(prepared), dtype=np.float32)

    @cached_property
    def idf32(self) -> NDArray[np.float32]:
        return np.ascontiguousarray(self.idf, dtype=np.float32)

    @cached_property
    def _vectorizer(self) -> TfidfVectorizer:
        """A scikit-learn vectorizer counting exactly this block's terms."""
        v = _vectorizer(self.analyzer, self.ngram_range, self.sublinear_tf, self.vocabulary)
        v.idf_ = self.idf
        return v


@dataclass(frozen=True)
class Features:
    """Feature blocks side by side: the columns of each block, one after the other."""

    blocks: tuple[TermBlock, ...]

    @property
    def n_features(self) -> int:
        return sum(b.n_features for b in self.blocks)

    def transform(self, prepared: Sequence[str]) -> sp.csr_matrix:
        if len(self.blocks) == 1:
            return self.blocks[0].transform(prepared)
        if self._one_pass is not None:
            words, chars = self.blocks
            return native.tfidf_rows(
                prepared, words._table, chars._table, self._one_pass, words.sublinear_tf
            )
        return sp.csr_matrix(
            sp.hstack([b.transform(prepared) for b in self.blocks], format="csr"),
            dtype=np.float32,
        )

    @cached_property
    def _one_pass(self) -> NDArray[np.float32] | None:
        """Both blocks' IDF when the compiled code counts them in one pass (word unigrams,
        then character n-grams, alike in TF), else None."""
        if len(self.blocks) != 2:
            return None
        words, chars = self.blocks
        if not (words.unigrams and chars.analyzer != "words"):
            return None
        if words.sublinear_tf != chars.sublinear_tf:
            return None
        return np.concatenate([words.idf32, chars.idf32])

    def term(self, column: int) -> str:
        """The term of a feature column (a word n-gram, or a character n-gram)."""
        for block in self.blocks:
            if column < block.n_features:
                return block.terms[column]
            column -= block.n_features
        raise IndexError(column)


def normalize_rows(x: sp.csr_matrix) -> sp.csr_matrix:
    """Scale each row of a float32 CSR matrix to unit L2 norm, in place (zero rows stay).

    As scikit-learn's ``inplace_csr_row_normalize_l2`` does (squares in float32 summed in
    float64, each value divided in float64), in NumPy: serving a model then never imports
    scikit-learn, which costs a worker about 2 s and 60 MB. The sums' order is NumPy's, so a
    value may differ from scikit-learn's in its last bit.
    """
    data = x.data
    lengths = np.diff(x.indptr)
    rows = lengths > 0
    sums = np.zeros(x.shape[0], dtype=np.float64)
    if data.size:
        sums[rows] = np.add.reduceat((data * data).astype(np.float64), x.indptr[:-1][rows])
    norms = np.sqrt(sums)
    norms[norms == 0] = 1.0
    data[:] = data / np.repeat(norms, lengths)
    return x


def idf_of(document_frequency: NDArray[np.integer], n_documents: int) -> NDArray[np.float32]:
    """Smoothed IDF, ``ln((1 + n) / (1 + df)) + 1``, computed as scikit-learn does in float32."""
    df = document_frequency.astype(np.float32) + np.float32(1)
    idf = np.full_like(df, fill_value=n_documents + 1, dtype=np.float32)
    idf /= df
    np.log(idf, out=idf)
    idf += np.float32(1.0)
    return idf


def _vectorizer(
    analyzer: Analyzer,
    ngram_range: tuple[int, int],
    sublinear_tf: bool,
    vocabulary: dict[str, int] | None = None,
    **fit_options: object,
) -> TfidfVectorizer:
    """The scikit-learn vectorizer of a block kind (fitting options only when fitting)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    common = {
        "token_pattern": None,
        "lowercase": False,
        "ngram_range": tuple(ngram_range),
        "sublinear_tf": sublinear_tf,
        "dtype": np.float32,
        "vocabulary": vocabulary,
        **fit_options,
    }
    if analyzer != "words":
        preprocessor = cjk_words if analyzer == "cjk_chars" else join_cjk
        return TfidfVectorizer(analyzer="char_wb", preprocessor=preprocessor, **common)
    if tuple(ngram_range) == (1, 1):
        # Unigrams: the prepared text's tokens are the features, so they go to the vectorizer
        # as its analyzer, skipping scikit-learn's preprocess/tokenize/n-gram steps.
        return TfidfVectorizer(analyzer=tokenizer.split_prepared, **common)
    return TfidfVectorizer(analyzer="word", tokenizer=tokenizer.split_prepared, **common)


def block_specs(cfg: TrainingConfig) -> list[tuple[Analyzer, tuple[int, int]]]:
    """The feature blocks a configuration asks for: word n-grams, then character n-grams."""
    specs: list[tuple[Analyzer, tuple[int, int]]] = [("words", (1, cfg.ngram_max))]
    if cfg.char_ngram_max:
        analyzer: Analyzer = "cjk_chars" if cfg.char_scope == "cjk" else "chars"
        specs.append((analyzer, (cfg.char_ngram_min, cfg.char_ngram_max)))
    return specs


def fit_features(prepared: Sequence[str], cfg: TrainingConfig) -> tuple[Features, sp.csr_matrix]:
    """Fit the configured blocks on prepared texts; return them and the texts' feature rows
    (the rows prediction will make).

    Raises ``ValueError`` when a block is left with no term (``min_df`` too high for a tiny
    corpus, or no text with a token). A "cjk_chars" block with no term (a corpus without CJK
    text) is left out: the words are the whole model then.
    """
    blocks = []
    for analyzer, ngram_range in block_specs(cfg):
        if analyzer != "words":
            block = _fit_chars(prepared, analyzer, ngram_range, cfg)
            if block is not None:
                blocks.append(block)
            continue
        options: dict[str, object] = {"min_df": cfg.min_df, "max_df": cfg.max_df}
        if analyzer == "words":
            options["max_features"] = cfg.max_features
        v = _vectorizer(analyzer, ngram_range, cfg.sublinear_tf, **options)
        v.fit(prepared)
        terms = sorted(v.vocabulary_, key=v.vocabulary_.__getitem__)
        blocks.append(TermBlock(analyzer, ngram_range, tuple(terms), v.idf_, cfg.sublinear_tf))
    features = Features(tuple(blocks))
    return features, features.transform(prepared)


def _fit_chars(
    prepared: Sequence[str], analyzer: Analyzer, ngram_range: tuple[int, int], cfg: TrainingConfig
) -> TermBlock | None:
    """The character n-gram block scikit-learn's ``char_wb`` vectorizer would fit (None: a
    "cjk_chars" block with no term)."""
    cjk_only = analyzer == "cjk_chars"
    terms, df = native.fit_terms(prepared, ngram_range, cfg.min_df, cfg.max_df, cjk_only)
    if not terms:
        if cjk_only:
            return None
        raise ValueError("no character n-gram is frequent enough")
    idf = idf_of(df, len(prepared))
    return TermBlock(analyzer, ngram_range, tuple(terms), idf, cfg.sublinear_tf)


# Streaming fit: the same blocks as ``fit_features``, from rows given in chunks, read twice
# (once to count terms, once to make the rows); no chunk is kept past its turn.
RowChunks = Callable[[], Iterable[Sequence[str]]]


class TermCounts:
    """Per-term document frequency (and total count, for ``max_features``) merged over
    chunks: what a vectorizer's ``fit`` learns, without holding the texts or their counts."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.df = np.zeros(0, dtype=np.int64)
        self.tf = np.zeros(0, dtype=np.int64)
        self.n_rows = 0

    def add(self, terms: Sequence[str], df: NDArray[np.integer], tf: NDArray[np.integer]) -> None:
        index = self.index
        ids = np.fromiter(
            (index.setdefault(t, len(index)) for t in terms), dtype=np.int64, count=len(terms)
        )
        if len(index) > len(self.df):
            grow = max(len(index), 2 * len(self.df)) - len(self.df)
            self.df = np.concatenate([self.df, np.zeros(grow, dtype=np.int64)])
            self.tf = np.concatenate([self.tf, np.zeros(grow, dtype=np.int64)])
        np.add.at(self.df, ids, np.asarray(df, dtype=np.int64))
        np.add.at(self.tf, ids, np.asarray(tf, dtype=np.int64))

    def kept(
        self, min_df: int, max_df: float, max_features: int | None
    ) -> tuple[list[str], NDArray[np.int64]]:
        """The terms scikit-learn's vectorizer keeps, in its column order (sorted), and their
        document frequencies: the same ``min_df``/``max_df``/``max_features`` rules."""
        if not self.index:
            raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
        terms = sorted(self.index)
        at = np.fromiter(map(self.index.__getitem__, terms), dtype=np.int64, count=len(terms))
        df, tf = self.df[at], self.tf[at]
        high = max_df if isinstance(max_df, int) else max_df * self.n_rows
        if high < min_df:
            raise ValueError("max_df corresponds to < documents than min_df")
        mask = (df <= high) & (df >= min_df)
        if max_features is not None and mask.sum() > max_features:
            # as scikit-learn ranks them: float32 totals, the same (unstable) argsort
            tfs = tf.astype(np.float32)
            picked = np.where(mask)[0][(-tfs[mask]).argsort()[:max_features]]
            mask = np.zeros(len(df), dtype=bool)
            mask[picked] = True
        if not mask.any():
            raise ValueError(
                "After pruning, no terms remain. Try a lower min_df or a higher max_df."
            )
        keep = np.flatnonzero(mask)
        return [terms[i] for i in keep], df[keep]


def _count_chunk(
    analyzer: Analyzer, ngram_range: tuple[int, int], chunk: Sequence[str]
) -> tuple[list[str], NDArray[np.int64], NDArray[np.int64]]:
    """A chunk's distinct terms, the number of its rows holding each, and their total count."""
    if analyzer != "words":
        terms, df = native.fit_terms(chunk, ngram_range, 1, 1.0, analyzer == "cjk_chars")
        return terms, df, df  # max_features applies to the word block only
    from sklearn.feature_extraction.text import CountVectorizer

    analyze = _vectorizer(analyzer, ngram_range, True).build_analyzer()
    vectorizer = CountVectorizer(analyzer=analyze, dtype=np.int64)
    try:
        counts = sp.csc_matrix(vectorizer.fit_transform(chunk))
    except ValueError:  # no term in this chunk: it adds nothing
        return [], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
    return terms, np.diff(counts.indptr), np.asarray(counts.sum(axis=0)).ravel()


def fit_features_chunked(rows: RowChunks, cfg: TrainingConfig) -> tuple[Features, sp.csr_matrix]:
    """``fit_features`` over the rows ``rows()`` yields in chunks (it is called twice): the same
    blocks (terms, IDF) and the same matrix, without all the texts at once.

    The first pass counts each block's terms chunk by chunk (their document frequencies
    merged; the vocabulary counted grows with the distinct terms, not the rows); the second
    makes each chunk's rows and stacks them. The matrix is the one thing held whole: the fits
    need it.
    """
    specs = block_specs(cfg)
    counts = _count_terms(rows, specs)
    blocks = []
    for (analyzer, ngram_range), c in zip(specs, counts, strict=True):
        if analyzer != "words":
            try:
                if not c.index:
                    raise ValueError("no character n-gram is frequent enough")
                terms, df = c.kept(cfg.min_df, cfg.max_df, None)
            except ValueError:
                if analyzer == "cjk_chars":
                    continue  # no CJK term kept: as fit_features, the words alone
                raise
        else:
            terms, df = c.kept(cfg.min_df, cfg.max_df, cfg.max_features)
        idf = idf_of(df, c.n_rows)
        blocks.append(TermBlock(analyzer, ngram_range, tuple(terms), idf, cfg.sublinear_tf))
    features = Features(tuple(blocks))
    return features, stacked(features.transform(chunk) for chunk in rows())


def _count_terms(
    rows: RowChunks, specs: list[tuple[Analyzer, tuple[int, int]]]
) -> list[TermCounts]:
    """Each block's terms counted over the chunks (a function of its own, so that no chunk
    outlives the pass)."""
    counts = [TermCounts() for _ in specs]
    for chunk in rows():
        for (analyzer, ngram_range), c in zip(specs, counts, strict=True):
            c.n_rows += len(chunk)
            c.add(*_count_chunk(analyzer, ngram_range, chunk))
    return counts


def stacked(parts: Iterable[sp.csr_matrix]) -> sp.csr_matrix:
    """Row blocks one under the other, as one float32 CSR matrix.

    Each block's values and column numbers go to a temporary file as it comes, and are read
    back into the final arrays at the end: the peak is the matrix and one block, not the
    blocks and their stacked copy (twice the matrix).
    """
    with tempfile.TemporaryFile() as values, tempfile.TemporaryFile() as columns:
        ends: list[NDArray[np.int64]] = []
        nnz, n_cols, last = 0, 0, None
        for part in parts:
            last = part
            values.write(np.ascontiguousarray(part.data, dtype=np.float32).tobytes())
            columns.write(np.ascontiguousarray(part.indices, dtype=np.int32).tobytes())
            ends.append(part.indptr[1:].astype(np.int64) + nnz)
            nnz, n_cols = nnz + part.nnz, part.shape[1]
        if last is not None and len(ends) == 1:
            return last
        index = np.int32 if nnz < 2**31 else np.int64
        indptr = np.concatenate([np.zeros(1, dtype=np.int64), *ends]).astype(index)
        del ends
        values.seek(0)
        columns.seek(0)
        data = np.fromfile(values, dtype=np.float32, count=nnz)
        indices = np.fromfile(columns, dtype=np.int32, count=nnz).astype(index, copy=False)
    return sp.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, n_cols), copy=False)
