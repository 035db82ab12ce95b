"""Compiled feature counting (Numba): a batch of prepared texts to the TF-IDF rows of a word
block and a character n-gram block, in one pass over their code points.

What ``features.TermBlock`` describes, made at compiled speed: word unigrams are the
prepared text's tokens; character n-grams are scikit-learn's ``char_wb`` n-grams of the text
with the segmentation undone inside CJK runs (``features.join_cjk``), of every word or of
the words holding a CJK character only. A batch becomes one array of code points and the
offsets of its texts, and one compiled loop walks it text by text: each token (a run of
non-space, as ``str.split`` cuts) is hashed and looked up among the word terms, each padded
word's n-grams are numbered (``Alphabet``'s keys) and looked up among the character terms
(a plain array for single characters), a text's columns are radix-sorted and counted, and
the counts become sublinear TF-IDF, L2-normalised block by block. Fitting finds the
character terms with the same n-gram loop (``fit_terms``). The look-ups are open-addressing
hash tables built once when a model is loaded; a word found by its hash is compared with the
term, code point by code point, so a collision can never count the wrong word.

Every step is linear in the batch's code points (a text's sort is over its own columns),
and a batch is cut into chunks of ``CHUNK_TEXTS`` texts, so the scratch arrays are bounded.
The kernels compile on first use and are cached beside this file (``cache=True``): a
worker's first batch pays the compilation once per installation, not per process.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

MAX_N = 3  # the longest character n-gram
# texts counted at once: bounds a batch's scratch memory and the bits a text's number needs
CHUNK_TEXTS = 4096
_TEXT_BITS = 13  # CHUNK_TEXTS < 2 ** _TEXT_BITS
_MAX_TERMS = 2**31 - 1  # columns are int32

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_SPACE = 0x20


class Alphabet:
    """Characters numbered from 1, and the n-gram numbers (keys) written with them: the key
    of ``c1 c2 c3`` is ``((c1 << bits) | c2) << bits | c3``."""

    def __init__(self, chars: Iterable[str]) -> None:
        ordered = sorted(set(chars))
        self.chars = ordered
        self.bits = max(1, len(ordered).bit_length())
        # code point -> the character's number (0: not in the alphabet)
        self.table = np.zeros(max(map(ord, ordered), default=0) + 1, dtype=np.int64)
        self.table[[ord(c) for c in ordered]] = np.arange(1, len(ordered) + 1)

    def keys_of(self, terms: Sequence[str]) -> NDArray[np.int64]:
        """The key of each term (all its characters in the alphabet), computed in bulk."""
        lengths = np.fromiter(map(len, terms), dtype=np.int64, count=len(terms))
        points = np.frombuffer("".join(terms).encode("utf-32-le"), dtype=np.uint32)
        ids = self.table[points] if len(points) else np.zeros(0, dtype=np.int64)
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


def check_range(ngram_range: tuple[int, int], alphabet: Alphabet) -> None:
    lo, hi = ngram_range
    if not 1 <= lo <= hi <= MAX_N:
        raise ValueError(f"character n-grams of 1 to {MAX_N} characters only")
    if alphabet.bits * hi + _TEXT_BITS > 63:
        raise ValueError("too many distinct characters for the n-gram keys")


@numba.njit(cache=True, nogil=True, inline="always")
def _is_cjk(c: int) -> bool:
    # CJK unified ideographs, extension A and compatibility ideographs (tokenizer.CJK)
    return (0x3400 <= c <= 0x4DBF) or (0x4E00 <= c <= 0x9FFF) or (0xF900 <= c <= 0xFAFF)


@numba.njit(cache=True, nogil=True, inline="always")
def _fnv(points: NDArray[np.uint32], start: int, end: int) -> np.uint64:
    h = _FNV_OFFSET
    for i in range(start, end):
        h = (h ^ np.uint64(points[i])) * _FNV_PRIME
    return h


@numba.njit(cache=True, nogil=True, inline="always")
def _slot(h: np.uint64, shift: np.uint64) -> int:
    return np.int64((h * _GOLDEN) >> shift)


@numba.njit(cache=True)
def _word_table(
    points: NDArray[np.uint32], offsets: NDArray[np.int64], bits: int
) -> tuple[NDArray[np.int32], NDArray[np.uint64]]:
    """Slots (a term's column, or -1) of an open-addressing table of the terms' hashes."""
    n = len(offsets) - 1
    slots = np.full(1 << bits, -1, dtype=np.int32)
    hashes = np.empty(n, dtype=np.uint64)
    mask, shift = (1 << bits) - 1, np.uint64(64 - bits)
    for j in range(n):
        h = _fnv(points, offsets[j], offsets[j + 1])
        hashes[j] = h
        s = _slot(h, shift)
        while slots[s] >= 0:
            s = (s + 1) & mask
        slots[s] = j
    return slots, hashes


@numba.njit(cache=True)
def _key_table(
    keys: NDArray[np.int64], cols: NDArray[np.int64], bits: int, packed: bool
) -> NDArray[np.int64]:
    """An open-addressing table of n-gram keys and their terms' columns (-1: an empty slot).
    ``packed`` (every key below 2**31): slot s holds ``key << 32 | column``, 8 bytes a slot;
    else the key at 2s and the column at 2s + 1, side by side. Either way a look-up reads
    one cache line; packed, the table is half the size, and more of it stays in cache."""
    table = np.full((1 if packed else 2) << bits, -1, dtype=np.int64)
    mask, shift = (1 << bits) - 1, np.uint64(64 - bits)
    for j in range(len(keys)):
        s = _slot(np.uint64(keys[j]), shift)
        if packed:
            while table[s] >= 0:
                s = (s + 1) & mask
            table[s] = (keys[j] << 32) | cols[j]
        else:
            while table[2 * s] >= 0:
                s = (s + 1) & mask
            table[2 * s] = keys[j]
            table[2 * s + 1] = cols[j]
    return table


def _table_bits(n: int) -> int:
    """Slots for n entries, a third to two thirds full."""
    return max(4, (3 * max(n, 1) // 2).bit_length())


@dataclass(frozen=True, eq=False)
class WordTable:
    """The terms of a word-unigram block, hashed for look-up."""

    slots: NDArray[np.int32]
    hashes: NDArray[np.uint64]
    points: NDArray[np.uint32]
    offsets: NDArray[np.int64]
    shift: np.uint64

    @classmethod
    def of(cls, terms: Sequence[str]) -> WordTable:
        if len(terms) > _MAX_TERMS:
            raise ValueError("too many terms for int32 columns")
        lengths = np.fromiter(map(len, terms), dtype=np.int64, count=len(terms))
        offsets = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        points = np.frombuffer("".join(terms).encode("utf-32-le"), dtype=np.uint32).copy()
        bits = _table_bits(len(terms))
        slots, hashes = _word_table(points, offsets, bits)
        return cls(slots, hashes, points, offsets, np.uint64(64 - bits))


@dataclass(frozen=True, eq=False)
class CharTable:
    """The terms of a character n-gram block, numbered as ``Alphabet`` keys, for look-up."""

    alphabet: NDArray[np.int64]  # code point -> the character's number (0: not in a term)
    bits: int
    ngram_range: tuple[int, int]
    cjk_only: bool
    single: NDArray[np.int64]  # a character's number -> its own term's column (or -1)
    table: NDArray[np.int64]  # the longer terms' keys and columns (``_key_table``)
    shift: np.uint64
    packed: bool  # the table's layout: one int64 a slot (every key below 2**31) or two

    @classmethod
    def of(
        cls, terms: Sequence[str], ngram_range: tuple[int, int], cjk_only: bool = False
    ) -> CharTable:
        if len(terms) > _MAX_TERMS:
            raise ValueError("too many terms for int32 columns")
        if any(not t or len(t) > MAX_N for t in terms):
            raise ValueError(f"a term must be 1 to {MAX_N} characters")
        alphabet = Alphabet(c for t in terms for c in t)
        check_range(ngram_range, alphabet)
        keys = alphabet.keys_of(terms)
        if len(np.unique(keys)) < len(keys):
            raise ValueError("a term is listed twice")
        # one character: its number is its key, and indexes a plain array
        one = keys < (1 << alphabet.bits)
        single = np.full(1 << alphabet.bits, -1, dtype=np.int64)
        single[keys[one]] = np.flatnonzero(one)
        longer = np.flatnonzero(~one)
        bits = _table_bits(len(longer))
        packed = alphabet.bits * ngram_range[1] <= 31
        return cls(
            alphabet.table,
            alphabet.bits,
            (int(ngram_range[0]), int(ngram_range[1])),
            cjk_only,
            single,
            _key_table(keys[longer], longer, bits, packed),
            np.uint64(64 - bits),
            packed,
        )


_NO_WORDS = WordTable(
    np.full(16, -1, dtype=np.int32),
    np.zeros(0, dtype=np.uint64),
    np.zeros(0, dtype=np.uint32),
    np.zeros(1, dtype=np.int64),
    np.uint64(60),
)
_NO_CHARS = CharTable(
    np.zeros(1, dtype=np.int64),
    1,
    (1, 1),
    False,
    np.full(2, -1, dtype=np.int64),
    np.full(32, -1, dtype=np.int64),
    np.uint64(60),
    False,
)


@numba.njit(cache=True, nogil=True, inline="always")
def _word_column(
    points: NDArray[np.uint32],
    start: int,
    end: int,
    slots: NDArray[np.int32],
    hashes: NDArray[np.uint64],
    term_points: NDArray[np.uint32],
    offsets: NDArray[np.int64],
    shift: np.uint64,
) -> int:
    h = _fnv(points, start, end)
    mask = len(slots) - 1
    s = _slot(h, shift)
    while True:
        j = slots[s]
        if j < 0:
            return -1
        if hashes[j] == h and offsets[j + 1] - offsets[j] == end - start:
            a = offsets[j]
            same = True
            for k in range(end - start):
                if term_points[a + k] != points[start + k]:
                    same = False
                    break
            if same:
                return j
        s = (s + 1) & mask


@numba.njit(cache=True, nogil=True, inline="always")
def _key_column(key: int, table: NDArray[np.int64], shift: np.uint64, packed: bool) -> int:
    s = _slot(np.uint64(key), shift)
    if packed:
        mask = len(table) - 1
        while True:
            v = table[s]
            if v < 0:
                return -1
            if v >> 32 == key:
                return v & 0xFFFFFFFF
            s = (s + 1) & mask
    mask = (len(table) >> 1) - 1
    while True:
        k = table[2 * s]
        if k == key:
            return table[2 * s + 1]
        if k < 0:
            return -1
        s = (s + 1) & mask


@numba.njit(cache=True, nogil=True)
def _grown(a: NDArray, used: int, need: int) -> NDArray:
    if used + need <= len(a):
        return a
    b = np.empty(max(2 * len(a), used + need), dtype=a.dtype)
    b[:used] = a[:used]
    return b


@numba.njit(cache=True, nogil=True, inline="always")
def _is_space(c: int) -> bool:
    """Whitespace as ``str.split`` cuts at (``str.isspace``)."""
    if c <= 0x20:
        return c == 0x20 or 0x09 <= c <= 0x0D or 0x1C <= c <= 0x1F
    if c < 0x85:
        return False
    return (
        c == 0x85
        or c == 0xA0
        or c == 0x1680
        or 0x2000 <= c <= 0x200A
        or c == 0x2028
        or c == 0x2029
        or c == 0x202F
        or c == 0x205F
        or c == 0x3000
    )


@numba.njit(cache=True)
def spaces(points: NDArray[np.uint32]) -> NDArray[np.bool_]:
    """Which code points are whitespace to the kernels."""
    out = np.empty(len(points), dtype=np.bool_)
    for i in range(len(points)):
        out[i] = _is_space(points[i])
    return out


_DIGIT = 8  # bits a radix pass sorts by


@numba.njit(cache=True, nogil=True)
def _sorted(
    a: NDArray[np.int64], k: int, spare: NDArray[np.int64], passes: int
) -> NDArray[np.int64]:
    """``a[:k]`` sorted (non-negative values below ``2 ** (passes * _DIGIT)``): insertion
    for a few, else a least-significant-digit radix sort through ``spare``, linear in k."""
    if k <= 32:
        for i in range(1, k):
            v = a[i]
            j = i - 1
            while j >= 0 and a[j] > v:
                a[j + 1] = a[j]
                j -= 1
            a[j + 1] = v
        return a
    buckets = np.empty(1 << _DIGIT, dtype=np.int64)
    src, dst = a, spare
    for p in range(passes):
        shift = p * _DIGIT
        buckets[:] = 0
        for i in range(k):
            buckets[(src[i] >> shift) & ((1 << _DIGIT) - 1)] += 1
        total = 0
        for d in range(1 << _DIGIT):
            n = buckets[d]
            buckets[d] = total
            total += n
        for i in range(k):
            d = (src[i] >> shift) & ((1 << _DIGIT) - 1)
            dst[buckets[d]] = src[i]
            buckets[d] += 1
        src, dst = dst, src
    return src


@numba.njit(cache=True, nogil=True, inline="always")
def _most_keys(start: int, end: int, n_lo: int, n_hi: int) -> int:
    """A bound on the n-grams of a text of ``end - start`` code points: its padded words
    hold at most twice as many and one more, and each gives one n-gram a size a position."""
    return (2 * (end - start) + 1) * (n_hi - n_lo + 1)


@numba.njit(cache=True, nogil=True, inline="always")
def _char_keys(
    points: NDArray[np.uint32],
    start: int,
    end: int,
    alphabet: NDArray[np.int64],
    bits: int,
    n_lo: int,
    n_hi: int,
    cjk_only: bool,
    word: NDArray[np.int64],
    keys: NDArray[np.int64],
) -> int:
    """The keys of ``char_wb``'s n-grams of the text ``points[start:end]`` into ``keys``;
    returns how many. Words are runs of non-space, one plain space between two CJK
    characters dropped first (``features.join_cjk``); each word is padded with a space on
    both sides; an n-gram holding a character outside the alphabet has no key. With
    ``cjk_only``, only words holding a CJK character are taken."""
    space = alphabet[_SPACE] if _SPACE < len(alphabet) else 0
    k = 0
    word[0] = space
    w = 1
    cjk = False
    for i in range(start, end + 1):
        if i < end:
            c = points[i]
            if not _is_space(c):
                word[w] = alphabet[c] if c < len(alphabet) else 0
                w += 1
                cjk = cjk or _is_cjk(c)
                continue
            if c == _SPACE and start < i < end - 1:
                if _is_cjk(points[i - 1]) and _is_cjk(points[i + 1]):
                    continue  # a space inside a CJK run: the segmentation undone
        if w > 1 and (cjk or not cjk_only):
            word[w] = space
            w += 1
            for n in range(n_lo, n_hi + 1):
                for s in range(w - n + 1):
                    key = 0
                    for q in range(s, s + n):
                        if word[q] == 0:
                            key = -1
                            break
                        key = (key << bits) | word[q]
                    if key >= 0:
                        keys[k] = key
                        k += 1
        w = 1
        cjk = False
    return k


@numba.njit(cache=True, nogil=True)
def _text_keys(
    points: NDArray[np.uint32],
    offsets: NDArray[np.int64],
    alphabet: NDArray[np.int64],
    bits: int,
    n_lo: int,
    n_hi: int,
    cjk_only: bool,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Every n-gram key of every text (``_char_keys``), and the number of its text."""
    keys = np.empty((2 * len(points) + len(offsets)) * (n_hi - n_lo + 1), dtype=np.int64)
    texts = np.empty(len(keys), dtype=np.int64)
    word = np.empty(len(points) + 2, dtype=np.int64)
    k = 0
    for t in range(len(offsets) - 1):
        m = _char_keys(
            points,
            offsets[t],
            offsets[t + 1],
            alphabet,
            bits,
            n_lo,
            n_hi,
            cjk_only,
            word,
            keys[k:],
        )
        texts[k : k + m] = t
        k += m
    return keys[:k].copy(), texts[:k].copy()


@numba.njit(cache=True, nogil=True)
def _count(
    points: NDArray[np.uint32],
    offsets: NDArray[np.int64],
    passes: int,
    use_words: bool,
    w_slots: NDArray[np.int32],
    w_hashes: NDArray[np.uint64],
    w_points: NDArray[np.uint32],
    w_offsets: NDArray[np.int64],
    w_shift: np.uint64,
    use_chars: bool,
    cjk_only: bool,
    alphabet: NDArray[np.int64],
    bits: int,
    n_lo: int,
    n_hi: int,
    c_single: NDArray[np.int64],
    c_table: NDArray[np.int64],
    c_shift: np.uint64,
    c_packed: bool,
    c_offset: int,
) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float32]]:
    """Each text's columns (word columns, then character columns from ``c_offset``), sorted,
    and how many times each occurs in it: a CSR matrix of counts. Text t is
    ``points[offsets[t]:offsets[t + 1]]``."""
    n_texts = len(offsets) - 1
    indptr = np.zeros(n_texts + 1, dtype=np.int64)
    indices = np.empty(max(16, len(points)), dtype=np.int32)
    counts = np.empty(max(16, len(points)), dtype=np.float32)
    found = np.empty(64, dtype=np.int64)
    spare = np.empty(64, dtype=np.int64)
    word = np.empty(64, dtype=np.int64)
    keys = np.empty(64, dtype=np.int64)
    nnz = 0
    for t in range(n_texts):
        start, end = offsets[t], offsets[t + 1]
        k = 0  # columns found in this text
        if use_words:  # the tokens: runs of non-space
            found = _grown(found, 0, end - start + 1)
            a = start
            for i in range(start, end + 1):
                if i == end or _is_space(points[i]):
                    if i > a:
                        j = _word_column(
                            points, a, i, w_slots, w_hashes, w_points, w_offsets, w_shift
                        )
                        if j >= 0:
                            found[k] = j
                            k += 1
                    a = i + 1
        if use_chars:
            keys = _grown(keys, 0, _most_keys(start, end, n_lo, n_hi))
            word = _grown(word, 0, end - start + 2)
            m = _char_keys(points, start, end, alphabet, bits, n_lo, n_hi, cjk_only, word, keys)
            found = _grown(found, k, m)
            for i in range(m):
                key = keys[i]
                j = (
                    c_single[key]
                    if key < len(c_single)
                    else _key_column(key, c_table, c_shift, c_packed)
                )
                if j >= 0:
                    found[k] = c_offset + j
                    k += 1
        spare = _grown(spare, 0, k)
        row = _sorted(found, k, spare, passes)
        indices = _grown(indices, nnz, k)
        counts = _grown(counts, nnz, k)
        i = 0
        while i < k:
            q = i + 1
            while q < k and row[q] == row[i]:
                q += 1
            indices[nnz] = row[i]
            counts[nnz] = q - i
            nnz += 1
            i = q
        indptr[t + 1] = nnz
    return indptr, indices[:nnz].copy(), counts[:nnz].copy()


@numba.njit(cache=True, nogil=True)
def _tfidf(
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    data: NDArray[np.float32],
    idf: NDArray[np.float32],
    sublinear: bool,
    split: int,
) -> None:
    """Counts to TF-IDF in place, each row's columns below ``split`` and from it (the two
    blocks) L2-normalised apart: squares in float32 summed in float64, each value divided in
    float64, as scikit-learn normalises."""
    for r in range(len(indptr) - 1):
        a, b = indptr[r], indptr[r + 1]
        m = a
        while m < b and indices[m] < split:
            m += 1
        for lo, hi in ((a, m), (m, b)):
            total = 0.0
            for i in range(lo, hi):
                v = data[i]
                if sublinear:
                    v = np.float32(np.log(v) + np.float32(1.0))
                v = np.float32(v * idf[indices[i]])
                data[i] = v
                total += np.float64(np.float32(v * v))
            norm = np.sqrt(total)
            if norm == 0.0:
                norm = 1.0
            for i in range(lo, hi):
                data[i] = np.float32(np.float64(data[i]) / norm)


def joined_points(texts: Sequence[str]) -> tuple[NDArray[np.uint32], NDArray[np.int64]]:
    """The code points of texts, one after the other, and where each text starts (and the
    last ends)."""
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), out=offsets[1:])
    return np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32), offsets


def tfidf_rows(
    texts: Sequence[str],
    words: WordTable | None,
    chars: CharTable | None,
    idf: NDArray[np.float32],
    sublinear_tf: bool,
) -> sp.csr_matrix:
    """TF-IDF rows of prepared texts (float32): the word block's columns, then the character
    block's (each block L2-normalised on its own); ``idf`` is both blocks' IDF in that order.
    """
    n_words = 0 if words is None else len(words.offsets) - 1
    n_features = len(idf)
    if len(texts) > CHUNK_TEXTS:
        parts = [
            tfidf_rows(texts[i : i + CHUNK_TEXTS], words, chars, idf, sublinear_tf)
            for i in range(0, len(texts), CHUNK_TEXTS)
        ]
        return sp.csr_matrix(sp.vstack(parts, format="csr"))
    w, c = words or _NO_WORDS, chars or _NO_CHARS
    points, offsets = joined_points(texts)
    indptr, indices, data = _count(
        points,
        offsets,
        -(-max(1, (n_features - 1).bit_length()) // _DIGIT),
        words is not None,
        w.slots,
        w.hashes,
        w.points,
        w.offsets,
        w.shift,
        chars is not None,
        c.cjk_only,
        c.alphabet,
        c.bits,
        c.ngram_range[0],
        c.ngram_range[1],
        c.single,
        c.table,
        c.shift,
        c.packed,
        n_words,
    )
    _tfidf(indptr, indices, data, idf, sublinear_tf, n_words)
    index = np.int32 if len(data) < 2**31 else np.int64
    return sp.csr_matrix(
        (data, indices, indptr.astype(index)), shape=(len(texts), n_features), copy=False
    )


def _runs(sorted_values: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The distinct values of a sorted array and how many times each occurs."""
    first = np.ones(len(sorted_values), dtype=bool)
    first[1:] = sorted_values[1:] != sorted_values[:-1]
    at = np.flatnonzero(first)
    return sorted_values[at], np.diff(np.append(at, len(sorted_values)))


def fit_terms(
    texts: Sequence[str],
    ngram_range: tuple[int, int],
    min_df: int,
    max_df: float,
    cjk_only: bool = False,
) -> tuple[list[str], NDArray[np.int64]]:
    """The terms ``char_wb`` keeps (in ``min_df`` to ``max_df`` of the texts), sorted as
    scikit-learn orders its columns, and the number of texts holding each."""
    alphabet = Alphabet(set().union(*map(set, texts)) | {" "})
    check_range(ngram_range, alphabet)
    keys_of, texts_of = [], []
    for i in range(0, len(texts), CHUNK_TEXTS):
        points, offsets = joined_points(texts[i : i + CHUNK_TEXTS])
        keys, text = _text_keys(
            points, offsets, alphabet.table, alphabet.bits, *ngram_range, cjk_only
        )
        # one sort of (n-gram, text) numbers: each n-gram once a text holding it
        distinct, per_text = _runs(_runs(np.sort((keys << _TEXT_BITS) | text))[0] >> _TEXT_BITS)
        keys_of.append(distinct)
        texts_of.append(per_text)
    keys = np.concatenate(keys_of) if keys_of else np.zeros(0, dtype=np.int64)
    if not len(keys):  # no text, or no n-gram in any
        return [], np.zeros(0, dtype=np.int64)
    texts_holding = np.concatenate(texts_of)
    order = np.argsort(keys, kind="stable")
    distinct, repeats = _runs(keys[order])
    df = np.add.reduceat(texts_holding[order], np.append(0, np.cumsum(repeats)[:-1]))
    max_count = max_df * len(texts) if isinstance(max_df, float) else max_df
    keep = (df >= min_df) & (df <= max_count)
    terms = [alphabet.term(int(k)) for k in distinct[keep]]
    by_text = sorted(range(len(terms)), key=terms.__getitem__)
    return [terms[i] for i in by_text], df[keep][by_text]


@numba.njit(cache=True, nogil=True)
def _dense_product(
    x_indptr: NDArray[np.integer],
    x_indices: NDArray[np.integer],
    x_data: NDArray[np.float32],
    w_indptr: NDArray[np.integer],
    w_indices: NDArray[np.integer],
    w_data: NDArray[np.float32],
    out: NDArray[np.float32],
) -> None:
    for r in range(len(x_indptr) - 1):
        row = out[r]
        for i in range(x_indptr[r], x_indptr[r + 1]):
            v = x_data[i]
            f = x_indices[i]
            for k in range(w_indptr[f], w_indptr[f + 1]):
                row[w_indices[k]] += v * w_data[k]


def dense_product(x: sp.csr_matrix, w: sp.csr_matrix) -> NDArray[np.float32]:
    """``(x @ w).toarray()`` in float32, summed in the order SciPy's sparse product sums
    (row by row, ``x``'s entries in order, each one's weight row in order), into the dense
    result directly: the multiply-adds of the sparse product, without its sparse result."""
    out = np.zeros((x.shape[0], w.shape[1]), dtype=np.float32)
    if x.nnz and w.nnz:
        # int32 or int64 indices as they come (each compiles once): no copy of the weights
        _dense_product(
            x.indptr,
            x.indices,
            x.data.astype(np.float32, copy=False),
            w.indptr,
            w.indices,
            w.data.astype(np.float32, copy=False),
            out,
        )
    return out


@numba.njit(cache=True, nogil=True)
def _level2_inputs(
    views: NDArray[np.floating],
    floor: NDArray[np.floating],
    n_labels: int,
    k: int,
) -> tuple[
    NDArray[np.int64], NDArray[np.int32], NDArray[np.float32], NDArray[np.int64], NDArray[np.int32]
]:
    n, n_views = views.shape[0], views.shape[1] // n_labels
    indptr = np.zeros(n + 1, dtype=np.int64)
    first = np.zeros(n + 1, dtype=np.int64)
    size = max(16, n * n_views * min(k, n_labels))
    indices = np.empty(size, dtype=np.int32)
    data = np.empty(size, dtype=np.float32)
    columns = np.empty(max(16, n * min(k, n_labels)), dtype=np.int32)
    used = chosen = 0
    cut = views[0, 0]  # typed as the views (set below before use)
    for r in range(n):
        for v in range(n_views):
            block = views[r, v * n_labels : (v + 1) * n_labels]
            best = k < n_labels
            if best:
                cut = -np.partition(-block, k - 1)[k - 1]
            indices = _grown(indices, used, n_labels)
            data = _grown(data, used, n_labels)
            if v == 0:
                columns = _grown(columns, chosen, n_labels)
            for c in range(n_labels):
                x = block[c]
                if best and not x >= cut:
                    continue
                if v == 0:
                    columns[chosen] = c
                    chosen += 1
                z = np.float32(max(x - floor[0], 0))
                if z != 0:
                    indices[used] = v * n_labels + c
                    data[used] = z
                    used += 1
        indptr[r + 1] = used
        first[r + 1] = chosen
    return indptr, indices[:used].copy(), data[:used].copy(), first, columns[:chosen].copy()


def level2_inputs(
    views: NDArray[np.floating], floor: float, n_labels: int, k: int
) -> tuple[
    tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float32]],
    tuple[NDArray[np.int64], NDArray[np.int32]],
]:
    """The second level's input rows as CSR arrays (indptr, indices, data): ``max(view -
    floor, 0)`` (in the views' float type, then float32), each view of ``n_labels`` columns
    cut to each row's ``k`` best entries (and any tied with the k-th), zeros left out; and
    the candidates, the first view's cut, as ``(first, columns)``: row r's are
    ``columns[first[r]:first[r + 1]]``, ascending (``np.nonzero`` of the mask, row by row).
    One pass, each row's cut a selection over its views (linear)."""
    views = np.ascontiguousarray(views)
    if views.dtype not in (np.float32, np.float64):
        views = views.astype(np.float64)
    if views.shape[0] == 0:
        empty = np.zeros(1, dtype=np.int64)
        return (empty, np.zeros(0, np.int32), np.zeros(0, np.float32)), (
            empty.copy(),
            np.zeros(0, np.int32),
        )
    # the type NumPy's ``views - floor`` has (float32 for a Python float's floor)
    floor_typed = np.array([floor]).astype(np.result_type(views[:0] - floor))
    indptr, indices, data, first, columns = _level2_inputs(
        views, floor_typed, int(n_labels), int(k)
    )
    return (indptr, indices, data), (first, columns)


@numba.njit(cache=True, nogil=True)
def _candidate_sums(
    indptr: NDArray[np.integer],
    indices: NDArray[np.integer],
    data: NDArray[np.float32],
    dense: NDArray[np.float32],
    first: NDArray[np.int64],
    columns: NDArray[np.integer],
    out: NDArray[np.float64],
) -> None:
    for r in range(len(indptr) - 1):
        for p in range(first[r], first[r + 1]):
            c = columns[p]
            total = 0.0
            for i in range(indptr[r], indptr[r + 1]):
                total += np.float64(dense[indices[i], c]) * np.float64(data[i])
            out[p] = total


def candidate_sums_at(
    indptr: NDArray[np.integer],
    indices: NDArray[np.integer],
    data: NDArray[np.float32],
    dense: NDArray[np.float32],
    first: NDArray[np.int64],
    columns: NDArray[np.integer],
) -> NDArray[np.float64]:
    """For each candidate (row r, column c), row r's being ``columns[first[r]:first[r + 1]]``
    (``level2_inputs``' second part), in that order: the sum over row r's entries of the CSR
    rows (``indptr``, ``indices``, ``data``) of ``data[i] * dense[indices[i], c]``, in
    float64, in entry order."""
    out = np.zeros(len(columns), dtype=np.float64)
    if len(columns):
        _candidate_sums(
            indptr, indices, data.astype(np.float32, copy=False), dense, first, columns, out
        )
    return out


@numba.njit(cache=True, nogil=True)
def _logit_shift(
    scores: NDArray[np.float32],
    shift: NDArray[np.float32],
    weight: NDArray[np.float32],
    edge: float,
) -> None:
    for r in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            s = shift[r, c]
            if s != 0:
                p = min(max(np.float64(scores[r, c]), edge), 1.0 - edge)
                z = np.log(p / (1.0 - p)) + np.float64(weight[c]) * np.float64(s)
                scores[r, c] = 1.0 / (1.0 + np.exp(-z))


def logit_shift(
    scores: NDArray[np.floating],
    shift: NDArray[np.floating],
    weight: NDArray[np.floating],
    edge: float,
) -> NDArray[np.float32]:
    """``sigmoid(logit(scores) + weight[c] * shift)`` entry by entry where ``shift`` is not
    zero (the scores clipped to ``[edge, 1 - edge]`` first, in float64), the other entries as
    they were: a dense rows × labels block, in one pass, without temporaries."""
    out = np.array(scores, dtype=np.float32)
    _logit_shift(
        out,
        np.ascontiguousarray(shift, dtype=np.float32),
        np.ascontiguousarray(weight, dtype=np.float32),
        float(edge),
    )
    return out
