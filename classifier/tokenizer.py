"""Turn text into tokens the same way for training and prediction, raw or pre-segmented.

``normalize`` removes whitespace touching a CJK or full-width character, then applies NFKC
(full-width to half-width) and case-folds, so ``联合国 的 报告`` and ``联合国的报告`` reach
the segmenter as the same string and give the same tokens. CJK runs are segmented with
jieba's dictionary (through ``rjieba``, the Rust port, when installed; ``jieba`` otherwise);
Latin words and numbers are kept as tokens; punctuation is dropped.

The functions here are module-level on purpose: saved models refer to them by import path.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import tempfile
import unicodedata
from bisect import bisect_right
from collections.abc import Callable
from functools import cache

from classifier import offsets
from classifier.offsets import Spans

SEGMENTERS = ("rjieba", "jieba")

# CJK unified ideographs (and extension A, compatibility ideographs), as a regex class body
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Full-width letters and digits (ＡＢＣ１２３): NFKC makes them ASCII, and then a space between
# two of them separates words, as in ``ＶＩＶＯ Ｘ５`` = ``VIVO X5``. Segmenters cut them one
# by one (``Ｖ Ｉ Ｖ Ｏ``): a run of single full-width characters apart by single spaces, with
# no full-width character on either side, is that cutting and is closed up first.
_FW_ALNUM = "\uff10-\uff19\uff21-\uff3a\uff41-\uff5a"
_FW_ANY = re.compile(f"[{_FW_ALNUM}]")
_FW_RUN = re.compile(f"[{_FW_ALNUM}](?:\x20[{_FW_ALNUM}])*+")  # each character in one run
# Whitespace with a CJK character, CJK punctuation or a wide symbol (Ⅱ, ①, full-width
# punctuation) on either side carries no information, whereas segmenters put spaces there:
# it is dropped before NFKC. Each whitespace run is tried once, from its start (the
# look-behind), so a long run costs its length and not its square.
_WIDE_SYMBOLS = r"\u2150-\u218f\u2460-\u24ff\u3000-\u303f"
_FW_OTHER = r"\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uffef"  # full-width, not alnum
_WIDE = rf"{CJK}{_WIDE_SYMBOLS}{_FW_OTHER}"
_SPACE_NEAR_CJK = re.compile(rf"(?=\s)(?<!\s)(?:(?<=[{_WIDE}])\s++|\s++(?=[{_WIDE}]))")
_SURROGATE = re.compile("[\ud800-\udfff]")
# A token is a run of CJK characters, of other letters, or of digits. Splitting letters from
# digits (``5mm`` -> ``5 mm``) keeps tokens the same whether or not a segmenter put spaces there.
# The lookahead changes no match (every alternative starts with such a character) but lets
# the regex engine skip separators and punctuation quickly.
_TOKEN = re.compile(rf"(?=[\w{CJK}])(?:[{CJK}]+|[^\W\d_{CJK}]+|\d+)")


# ASCII and CJK unified ideographs are left alone by NFKC and never compose with the
# character before them, so NFKC can skip them: only the runs of other characters need it,
# each with the character just before it (a combining mark composes with that one). The
# same holds for the general and CJK punctuation NFKC maps to itself (、。「」《》—“”…),
# frequent in Chinese text.
_PUNCTUATION_KEPT = "".join(
    ch
    for ch in map(chr, [*range(0x2010, 0x2070), *range(0x3001, 0x3040)])
    if unicodedata.normalize("NFKC", ch) == ch and not unicodedata.combining(ch)
)
_NFKC_RUN = re.compile(rf"[^\x00-\x7f\u4e00-\u9fff{re.escape(_PUNCTUATION_KEPT)}]+")
# The full-width punctuation of Chinese text: NFKC maps each to one ASCII character, and
# neither form composes with a neighbour, so replacing them first changes no result but
# leaves nfkc() far fewer runs (Chinese exam questions: 19 runs a text before, 2 after).
_FULL_WIDTH = [(c, unicodedata.normalize("NFKC", c)) for c in "，：；（）？！"]


def _nfkc_char(c: str) -> str:
    return unicodedata.normalize("NFKC", c)


def nfkc(text: str) -> str:
    """``unicodedata.normalize("NFKC", text)``, computed on the runs that can change only.

    Chinese text is mostly ideographs with a full-width comma here and there, and NFKC over
    the whole string was a quarter of the tokenizer's time.
    """
    return _nfkc(text, None)[0]


def _nfkc(text: str, spans: Spans | None) -> tuple[str, Spans | None]:
    """``nfkc``, with ``spans`` also the output's (see ``classifier.offsets``)."""
    for wide, narrow in _FULL_WIDTH:  # one character for one: the spans stay
        text = text.replace(wide, narrow)
    rewrite = None
    for run in _NFKC_RUN.finditer(text):
        rewrite = rewrite or offsets.Rewrite(text, spans)
        start = max(run.start() - 1, 0)
        chars = text[start : run.end()]
        rewrite.replace(start, run.end(), unicodedata.normalize("NFKC", chars), _nfkc_char)
    return (text, spans) if rewrite is None else rewrite.done()


def _close_cut_full_width(text: str, spans: Spans | None = None) -> tuple[str, Spans | None]:
    """Remove the single spaces a segmenter put between full-width letters and digits."""

    def close(run: re.Match[str]) -> str:
        start, end = run.span()
        alone = (start == 0 or not _FW_ANY.match(text, start - 1)) and not _FW_ANY.match(text, end)
        return run.group().replace(" ", "") if alone else run.group()

    return offsets.sub(_FW_RUN, close, text, spans)


def normalize(text: str, simplify: bool = False) -> str:
    """Remove whitespace next to CJK characters and wide symbols, apply NFKC, case-fold;
    with ``simplify``, write traditional Chinese characters as simplified ones (OpenCC t2s).

    Unpaired surrogates (which only a caller's bug can produce) become spaces, so that the
    segmenters, which must encode to UTF-8, never fail.
    """
    return _normalize(text, simplify, None)[0]


def normalize_located(
    text: str, simplify: bool = False, spans: Spans | None = None
) -> tuple[str, Spans]:
    """``normalize(text, simplify)`` and, for each of its characters, the range of ``text``
    (or, given ``spans`` of ``text``, of the text those refer to) it came from."""
    out, located = _normalize(text, simplify, spans or Spans.identity(len(text)))
    assert located is not None
    return out, located


def _normalize(text: str, simplify: bool, spans: Spans | None) -> tuple[str, Spans | None]:
    """The steps of ``normalize``, each carrying the spans when there are any."""
    text, spans = offsets.sub(_SURROGATE, " ", text, spans)
    if _FW_ANY.search(text):
        text, spans = _close_cut_full_width(text, spans)
    text, spans = _nfkc(*offsets.sub(_SPACE_NEAR_CJK, "", text, spans))
    folded = text.casefold()
    text, spans = folded, offsets.per_char(text, folded, spans, str.casefold)
    return _simplified(text, spans) if simplify else (text, spans)


@cache
def _t2s() -> tuple[Callable[[str], str], re.Pattern[str]]:
    """OpenCC's traditional-to-simplified converter, and the characters it changes alone."""
    import opencc

    convert = opencc.OpenCC("t2s").convert
    ideographs = [
        chr(c) for r in ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00)) for c in range(*r)
    ]
    converted = convert("\n".join(ideographs)).split("\n")
    changed = "".join(a for a, b in zip(ideographs, converted, strict=True) if a != b)
    return convert, re.compile(f"[{changed}]")


def simplified(text: str) -> str:
    """``text`` with traditional characters written as simplified ones (OpenCC ``t2s``,
    phrases included), or unchanged when no character of it is traditional."""
    return _simplified(text, None)[0]


def _simplified(text: str, spans: Spans | None) -> tuple[str, Spans | None]:
    convert, traditional = _t2s()
    if not traditional.search(text):
        return text, spans
    new = convert(text)
    return new, offsets.converted(text, new, spans, convert)


def default_segmenter() -> str:
    """Name the fastest installed jieba-compatible segmenter."""
    try:
        importlib.import_module("rjieba")
    except ImportError:
        return "jieba"
    return "rjieba"


def resolve_segmenter(name: str) -> str:
    """Map ``auto`` to the default segmenter and check the name."""
    if name == "auto":
        return default_segmenter()
    if name not in SEGMENTERS:
        raise ValueError(f"unknown segmenter {name!r}; choose one of {', '.join(SEGMENTERS)}")
    return name


@cache
def _cutter(segmenter: str) -> Callable[[str], list[str]]:
    """Load a segmenter once and return its cut function."""
    if segmenter == "rjieba":
        import rjieba

        return rjieba.cut  # type: ignore[no-any-return]
    import jieba

    jieba.setLogLevel(logging.WARNING)
    # jieba caches its dictionary in the temp folder; a per-user folder avoids clashes.
    cache_dir = os.path.join(tempfile.gettempdir(), f"tagger-jieba-{os.getuid()}")
    os.makedirs(cache_dir, exist_ok=True)
    jieba.dt.tmp_dir = cache_dir
    jieba.initialize()
    return jieba.lcut  # type: ignore[no-any-return]


def tokenize(text: str, segmenter: str = "rjieba", simplify: bool = False) -> list[str]:
    """Return the tokens of ``text``: CJK words, Latin words and numbers, lower-cased (with
    ``simplify``, traditional characters written as simplified)."""
    pieces = _cutter(segmenter)(normalize(text, simplify))
    # Split segmenter tokens further by script (``2010-2011``, ``sdg4年``) in one C-level pass.
    return _TOKEN.findall("\x00".join(pieces))


def prepare(text: str, segmenter: str = "rjieba", simplify: bool = False) -> str:
    """Return the tokens of ``text`` joined by single spaces (the stored training form)."""
    return " ".join(tokenize(text, segmenter, simplify))


def prepare_located(
    text: str, segmenter: str = "rjieba", simplify: bool = False, spans: Spans | None = None
) -> tuple[str, Spans]:
    """``prepare(text, segmenter, simplify)`` and each of its characters' range in ``text``
    (or in the text ``spans`` refers to); a space between tokens has the range of the
    character before it.

    The same normalisation, segmenter and token pattern as ``tokenize``: the segmenter's
    pieces are the normalised text cut up (both segmenters keep every character; a piece
    is looked for where the last ended otherwise), and ``finditer`` finds the matches
    ``findall`` does.
    """
    normalized, located = normalize_located(text, simplify, spans)
    pieces = _cutter(segmenter)(normalized)
    joined = "\x00".join(pieces)
    # where each piece starts, in the joined text and in the normalised one
    in_joined, in_normalized = [], []
    j = n = 0
    for piece in pieces:
        found = n if normalized.startswith(piece, n) else normalized.find(piece, n)
        in_joined.append(j)
        in_normalized.append(found if found >= 0 else n)
        j += len(piece) + 1
        n = in_normalized[-1] + len(piece)
    parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for m in _TOKEN.finditer(joined):
        k = bisect_right(in_joined, m.start()) - 1
        a = in_normalized[k] + m.start() - in_joined[k]
        b = a + len(m.group())
        if parts:
            parts.append(" ")  # the previous character's range: ranges stay in order even
            starts.append(starts[-1])  # when two tokens come from one character (``½``)
            ends.append(ends[-1])
        parts.append(m.group())
        starts.extend(located.starts[a:b])
        ends.extend(located.ends[a:b])
    return "".join(parts), Spans(starts, ends)


def split_prepared(prepared: str) -> list[str]:
    """Split a prepared text back into tokens: the vectorizer's tokenizer."""
    return prepared.split()


def warm_up(segmenter: str = "rjieba") -> None:
    """Load the segmenter's dictionary and the script converter now rather than on the
    first request."""
    tokenize("預熱分詞詞典 warm up", segmenter, simplify=True)
