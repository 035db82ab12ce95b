"""Character n-grams counted in bulk over code points: scikit-learn's ``char_wb`` features at
array speed.

``char_wb`` pads each word with a space on both sides and takes every n-gram inside the
padded word. Here a batch of texts becomes one array of code points (words padded, words and
texts apart by a separator no text holds), each character is replaced by its number in an
alphabet (0 for a character outside it, so any n-gram holding one is skipped), and every
n-gram is the number ``((c1 << b) | c2) << b | c3``, computed for the whole batch at once.
Counting sorts plain integers (one number holds the n-gram and its text), which NumPy does
several times faster than an argsort, and only the batch's distinct n-grams are looked up.
No Python code runs per character or per n-gram.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

MAX_N = 3
SEPARATOR = "\x00"  # never in a prepared text (nor in a term)
# texts counted at once: bounds a batch's memory and the bits a text's number needs
CHUNK_TEXTS = 4096
_TEXT_BITS = 13  # CHUNK_TEXTS < 2 ** _TEXT_BITS
_COL_BITS = 24  # up to 16 million terms
_COUNT_BITS = 63 - _TEXT_BITS - _COL_BITS  # 26: a term up to 67 million times in a text


_SPACE, _NEWLINE = 0x20, 0x0A
# CJK unified ideographs, extension A and compatibility ideographs (tokenizer.CJK)
_CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))


def _is_cjk(points: NDArray[np.uint32]) -> NDArray[np.bool_]:
    out = np.zeros(len(points), dtype=bool)
    for lo, hi in _CJK_RANGES:
        out |= (points >= lo) & (points <= hi)
    return out


def padded_points(prepared: Sequence[str]) -> tuple[NDArray[np.uint32], NDArray[np.int64]]:
    """The code points ``char_wb`` takes n-grams of, for a batch of prepared texts at once,
    and the number of the text each belongs to.

    A prepared text is tokens apart by single spaces (other whitespace is made so first). As
    in ``features.join_cjk``, a space between two CJK characters is dropped (the segmentation
    undone); every other space becomes a word's closing space, the separator and the next
    word's opening space; texts are apart in the same way, and the first and last words get
    their outer spaces.
    """
    nonempty = [i for i, t in enumerate(prepared) if not t.isspace() and t]
    if not nonempty:
        return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64)
    joined = "\n".join(" ".join(prepared[i].split()) for i in nonempty)
    points = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    cjk = _is_cjk(points)
    inner = np.zeros(len(points), dtype=bool)
    inner[1:-1] = (points[1:-1] == _SPACE) & cjk[:-2] & cjk[2:]
    points = points[~inner]
    gap = (points == _SPACE) | (points == _NEWLINE)
    # each gap becomes (space, separator, space); one opening and one closing space around all
    width = np.where(gap, 3, 1)
    where = np.cumsum(width) - width + 1
    out = np.full(int(width.sum()) + 2, _SPACE, dtype=np.uint32)
    out[where[~gap]] = points[~gap]
    out[where[gap] + 1] = ord(SEPARATOR)
    # a text starts at the opening space after each newline's separator
    starts = np.zeros(len(out), dtype=np.int64)
    starts[where[points == _NEWLINE] + 2] = 1
    text_of = np.asarray(nonempty, dtype=np.int64)[np.cumsum(starts)]
    return out, text_of


def _runs(sorted_values: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The distinct values of a sorted array and how many times each occurs."""
    first = np.ones(len(sorted_values), dtype=bool)
    first[1:] = sorted_values[1:] != sorted_values[:-1]
    at = np.flatnonzero(first)
    return sorted_values[at], np.diff(np.append(at, len(sorted_values)))


class Alphabet:
    """Characters numbered from 1, and the n-gram numbers (keys) written with them."""

    def __init__(self, chars: Iterable[str]) -> None:
        ordered = sorted(set(chars) - {SEPARATOR})
        self.chars = ordered
        self.number = {c: i + 1 for i, c in enumerate(ordered)}
        self.bits = max(1, len(ordered).bit_length())
        self._table = np.zeros(max(map(ord, ordered), default=0) + 1, dtype=np.int64)
        self._table[[ord(c) for c in ordered]] = np.arange(1, len(ordered) + 1)

    def ngrams(
        self, texts: Sequence[str], ngram_range: tuple[int, int]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The key of every n-gram of the alphabet's characters in prepared ``texts``, and the
        number of its text."""
        points, text_of = padded_points(texts)
        inside = points < len(self._table)
        ids = np.where(inside, self._table[np.where(inside, points, 0)], 0)
        keys, texts_of = [], []
        for n in range(ngram_range[0], ngram_range[1] + 1):
            m = len(ids) - n + 1
            if m <= 0:
                continue
            key = ids[:m].copy()
            known = key > 0
            for k in range(1, n):
                key <<= self.bits
                key |= ids[k : k + m]
                known &= ids[k : k + m] > 0
            where = np.flatnonzero(known)
            keys.append(key[where])
            texts_of.append(text_of[where])
        if not keys:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(keys), np.concatenate(texts_of)

    def keys_of(self, terms: Sequence[str]) -> NDArray[np.int64]:
        """The key of each term (all its characters in the alphabet), computed in bulk."""
        lengths = np.fromiter(map(len, terms), dtype=np.int64, count=len(terms))
        points = np.frombuffer("".join(terms).encode("utf-32-le"), dtype=np.uint32)
        ids = self._table[points] if len(points) else np.zeros(0, dtype=np.int64)
        starts = np.cumsum(lengths) - lengths
        keys = np.zeros(len(terms), dtype=np.int64)
        for k in range(int(lengths.max(initial=0))):
            longer = lengths > k
            keys[longer] = (keys[longer] << self.bits) | ids[starts[longer] + k]
        return keys

    def term(self, key: int) -> str:
        chars = []
        while key:
            chars.append(self.chars[(key & ((1 << self.bits) - 1)) - 1])
            key >>= self.bits
        return "".join(reversed(chars))


def _check_range(ngram_range: tuple[int, int], alphabet: Alphabet) -> None:
    lo, hi = ngram_range
    if not 1 <= lo <= hi <= MAX_N:
        raise ValueError(f"character n-grams of 1 to {MAX_N} characters only")
    if alphabet.bits * hi + _TEXT_BITS > 63:
        raise ValueError("too many distinct characters for the n-gram keys")


@dataclass(frozen=True)
class CharNgrams:
    """The terms of a character n-gram block (in column order), indexed for counting."""

    terms: tuple[str, ...]
    ngram_range: tuple[int, int]
    alphabet: Alphabet = field(init=False, repr=False, compare=False)
    _keys: NDArray[np.int64] = field(init=False, repr=False, compare=False)
    _cols: NDArray[np.int64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        alphabet = Alphabet(c for t in self.terms for c in t)
        _check_range(self.ngram_range, alphabet)
        if len(self.terms) >= 1 << _COL_BITS:
            raise ValueError("too many terms for the n-gram keys")
        if any(SEPARATOR in t or not t or len(t) > MAX_N for t in self.terms):
            raise ValueError(f"a term must be 1 to {MAX_N} characters, without NUL")
        keys = alphabet.keys_of(self.terms)
        order = np.argsort(keys, kind="stable")
        if (np.diff(keys[order]) == 0).any():
            raise ValueError("a term is listed twice")
        object.__setattr__(self, "alphabet", alphabet)
        object.__setattr__(self, "_keys", keys[order])
        object.__setattr__(self, "_cols", order.astype(np.int64))

    def counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Term counts of ``texts`` (float32, one row a text, columns sorted in a row)."""
        if len(texts) > CHUNK_TEXTS:
            parts = [
                self.counts(texts[i : i + CHUNK_TEXTS]) for i in range(0, len(texts), CHUNK_TEXTS)
            ]
            return sp.csr_matrix(sp.vstack(parts, format="csr"))
        keys, text = self.alphabet.ngrams(texts, self.ngram_range)
        # one sort of (n-gram, text) numbers counts each n-gram in each text
        pairs, count = _runs(np.sort((keys << _TEXT_BITS) | text))
        pair_keys, pair_text = pairs >> _TEXT_BITS, pairs & ((1 << _TEXT_BITS) - 1)
        # the batch's distinct n-grams, looked up once (they come sorted)
        distinct, repeats = _runs(pair_keys)
        at = np.minimum(np.searchsorted(self._keys, distinct), max(len(self._keys) - 1, 0))
        hit = self._keys[at] == distinct if len(self._keys) else np.zeros(len(at), dtype=bool)
        col = np.repeat(np.where(hit, self._cols[at] if len(self._keys) else -1, -1), repeats)
        keep = col >= 0
        # rows in text order, columns sorted within a row: one more sort of plain numbers
        packed = np.sort(
            (pair_text[keep] << (_COL_BITS + _COUNT_BITS))
            | (col[keep] << _COUNT_BITS)
            | np.minimum(count[keep], (1 << _COUNT_BITS) - 1)
        )
        rows = packed >> (_COL_BITS + _COUNT_BITS)
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(texts)), out=indptr[1:])
        return sp.csr_matrix(
            (
                (packed & ((1 << _COUNT_BITS) - 1)).astype(np.float32),
                ((packed >> _COUNT_BITS) & ((1 << _COL_BITS) - 1)).astype(np.int32),
                indptr,
            ),
            shape=(len(texts), len(self.terms)),
        )


def fit_terms(
    texts: Sequence[str], ngram_range: tuple[int, int], min_df: int, max_df: float
) -> tuple[list[str], NDArray[np.int64]]:
    """The terms ``char_wb`` keeps (in ``min_df`` to ``max_df`` of the texts), sorted as
    scikit-learn orders its columns, and the number of texts holding each."""
    alphabet = Alphabet(set().union(*map(set, texts)) | {" "})
    _check_range(ngram_range, alphabet)
    keys_of, texts_of = [], []
    for i in range(0, len(texts), CHUNK_TEXTS):
        keys, text = alphabet.ngrams(texts[i : i + CHUNK_TEXTS], ngram_range)
        distinct, per_text = _runs(_runs(np.sort((keys << _TEXT_BITS) | text))[0] >> _TEXT_BITS)
        keys_of.append(distinct)
        texts_of.append(per_text)
    if not keys_of:
        return [], np.zeros(0, dtype=np.int64)
    keys, texts_holding = np.concatenate(keys_of), np.concatenate(texts_of)
    order = np.argsort(keys, kind="stable")
    distinct, repeats = _runs(keys[order])
    df = np.add.reduceat(texts_holding[order], np.append(0, np.cumsum(repeats)[:-1]))
    max_count = max_df * len(texts) if isinstance(max_df, float) else max_df
    keep = (df >= min_df) & (df <= max_count)
    terms = [alphabet.term(int(k)) for k in distinct[keep]]
    by_text = sorted(range(len(terms)), key=terms.__getitem__)
    return [terms[i] for i in by_text], df[keep][by_text]
