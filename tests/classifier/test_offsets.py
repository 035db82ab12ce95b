"""The text path with offsets: the same prepared text, and spans that slice back to it."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier import offsets, tokenizer
from classifier.offsets import Spans
from classifier.paragraphs import squash
from classifier.text import TextSettings, prepare_text

SETTINGS = TextSettings("rjieba", max_paragraph_chars=40, min_paragraph_chars=8)

# pieces the generated texts are made of: simplified and traditional words, Latin words and
# their full-width forms, numbers, paragraph markers, punctuation, every kind of whitespace
WORDS = [
    "联合国",
    "的",
    "报告",
    "犯罪",
    "预防",
    "刑事",
    "司法",
    "法治",
    "各国",
    "应",
    "加强",
    "聯合國",
    "報告",
    "書",
    "長",
    "關於",
    "問題",
    "國家",
    "發展",
    "UNESCO",
    "Report",
    "ＵＮＥＳＣＯ",
    "ＶＩＶＯ",
    "Ｘ５",
    "Ｖ Ｉ Ｖ Ｏ",
    "２０２３",
    "2023",
    "年",
    "5mm",
    "Straße",
    "ＡＢＣ",
    "①②③",
    "Ⅱ",
    "，",
    "。",
    "、",
    "“",
    "”",
    "（",
    "）",
    "；",
    ":",
    ".",
    "-",
    "!",
    " ",
    "  ",
    "\u3000",
    "\t",
    "\n",
    "\n\n",
    " 12. ",
    " 1. ",
    "二、",
    "（三）",
    "第二章",
]
# characters whose NFKC or case folding changes length, and compositions
ODD = ["Ⅱ\u0301", "½", "㎏", "ﬁ", "İ", "e\u0301", "\u0301", "ß", "Ǆ", "…", "™", "\ud800"]

texts = st.lists(st.sampled_from(WORDS), max_size=40).map("".join)
odd_texts = st.lists(st.sampled_from(WORDS + ODD), max_size=40).map("".join)


def _tokens_with_spans(prepared: str, spans: Spans) -> list[tuple[str, tuple[int, int]]]:
    out, pos = [], 0
    for token in prepared.split(" ") if prepared else []:
        out.append((token, spans.span(pos, pos + len(token))))
        pos += len(token) + 1
    return out


def _check(text: str, simplify: bool, exact: bool, segmenter: str = "rjieba") -> None:
    cfg = TextSettings(segmenter, 40, 8, simplify)
    plain = prepare_text(text, cfg)
    located = prepare_text(text, cfg, offsets=True)
    assert located.tokens == plain.tokens
    assert located.paragraphs == plain.paragraphs
    assert located.lengths == plain.lengths
    assert located.spans is not None
    for prepared, spans in zip(located.tokens, located.spans, strict=True):
        assert len(spans) == len(prepared)
        assert all(0 <= s <= e <= len(text) for s, e in zip(spans.starts, spans.ends, strict=True))
        assert spans.starts == sorted(spans.starts) and spans.ends == sorted(spans.ends)
        for token, (s, e) in _tokens_with_spans(prepared, spans):
            written = squash(tokenizer.normalize(text[s:e], simplify))
            if exact:
                assert written == token, (token, text[s:e])
            else:
                assert token in written, (token, text[s:e])


@settings(max_examples=500)
@given(texts, st.booleans())
def test_spans_slice_back_to_each_token(text: str, simplify: bool) -> None:
    _check(text, simplify, exact=True)


@settings(max_examples=100)
@given(texts)
def test_spans_with_jieba(text: str) -> None:
    _check(text, True, exact=True, segmenter="jieba")


@settings(max_examples=500)
@given(odd_texts | st.text(max_size=60), st.booleans())
def test_any_text_same_tokens_spans_in_bounds(text: str, simplify: bool) -> None:
    """Odd characters: a token is inside what its span normalises to (``½`` is ``1⁄2``:
    two tokens, each spanning the one character)."""
    _check(text, simplify, exact=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("聯合國秘書長關於死刑問題的報告", {"联合国": "聯合國", "报告": "報告", "问题": "問題"}),
        ("联合国 的 报告", {"联合国": "联合国", "报告": "报告"}),
        ("ＶＩＶＯ Ｘ５手机", {"vivo": "ＶＩＶＯ", "5": "５", "手机": "手机"}),
        ("Ｖ Ｉ Ｖ Ｏ   Ｘ ５ 手机", {"vivo": "Ｖ Ｉ Ｖ Ｏ", "手机": "手机"}),
        ("UNESCO  Report，Straße", {"unesco": "UNESCO", "strasse": "Straße"}),
        ("乾隆皇帝的頭髮很乾燥", {"头发": "頭髮", "干燥": "乾燥"}),
        ("重量 5㎏。", {"kg": "㎏", "重量": "重量"}),
    ],
)
def test_spans_by_example(text: str, expected: dict[str, str]) -> None:
    located = prepare_text(text, TextSettings("rjieba", 3000, 300, True), offsets=True)
    assert located.spans is not None
    found = {}
    for prepared, spans in zip(located.tokens, located.spans, strict=True):
        found.update({t: text[s:e] for t, (s, e) in _tokens_with_spans(prepared, spans)})
    assert {t: found.get(t) for t in expected} == expected


def test_paragraph_spans_point_into_the_whole_text() -> None:
    text = "1. 各国应加强刑事司法。 2. 聯合國的報告指出。\n\n三、预防犯罪"
    located = prepare_text(text, SETTINGS, offsets=True)
    assert len(located.paragraphs) > 1
    assert located.spans is not None
    for prepared, spans in zip(located.tokens, located.spans, strict=True):
        for token, (s, e) in _tokens_with_spans(prepared, spans):
            assert squash(tokenizer.normalize(text[s:e], True)) == token


def test_a_length_changing_converter_falls_back_to_runs() -> None:
    """OpenCC's t2s keeps lengths (measured); were a phrase to change length, each run
    between whitespace stands for itself, the others keep their characters' ranges."""

    def convert(s: str) -> str:
        return s.replace("AB", "C")

    text = "xx ABy zz"
    new = convert(text)
    spans = offsets.converted(text, new, Spans.identity(len(text)), convert)
    assert spans is not None and len(spans) == len(new)
    assert text[slice(*spans.span(0, 2))] == "xx"
    assert text[slice(*spans.span(3, 5))] == "ABy"
    assert text[slice(*spans.span(6, 8))] == "zz"


def test_sub_matches_re_sub() -> None:
    pattern = re.compile(r"\s+")
    text = "a  b\tc \n d"
    out, spans = offsets.sub(pattern, " ", text, Spans.identity(len(text)))
    assert out == pattern.sub(" ", text)
    assert (
        spans is not None
        and [text[s:e] for s, e in zip(spans.starts, spans.ends, strict=True)][0] == "a"
    )
