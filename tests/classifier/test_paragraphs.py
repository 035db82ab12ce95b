"""Paragraph splitting: line breaks, numbered paragraphs, headings, chunking and merging."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier.corpus import Document
from classifier.paragraphs import Paragraph, explode, split_paragraphs, squash, visible_len


def test_splits_at_line_breaks() -> None:
    text = "第一段的内容。\n第二段的内容。\n\n  \n第三段"
    assert split_paragraphs(text, min_chars=0) == ["第一段的内容。", "第二段的内容。", "第三段"]


def test_splits_at_sequential_inline_numbers() -> None:
    text = " 1. 人权 部门 很 重要 。 2. 特派团 必须 评估 。 3. 各 特派团 报告"
    assert split_paragraphs(text, min_chars=0) == [
        "1. 人权 部门 很 重要 。",
        "2. 特派团 必须 评估 。",
        "3. 各 特派团 报告",
    ]


def test_number_that_is_not_the_next_one_does_not_split() -> None:
    text = "1. 第一段提到 5. 这个数字 2. 第二段"
    assert split_paragraphs(text, min_chars=0) == ["1. 第一段提到 5. 这个数字", "2. 第二段"]


def test_english_date_is_not_a_paragraph_number() -> None:
    text = "The convoy left on February 22. Arrivals were recorded the next week."
    assert split_paragraphs(text, min_chars=0) == [text]


def test_date_after_numbered_paragraphs_does_not_split() -> None:
    text = "1. The convoy left on February 22. Arrivals followed. 2. The mission closed."
    assert split_paragraphs(text, min_chars=0) == [
        "1. The convoy left on February 22. Arrivals followed.",
        "2. The mission closed.",
    ]


def test_decimals_and_years_do_not_split() -> None:
    text = "增长率为 3.5 个百分点 ，2010. 年份 不是 段落 编号"
    assert split_paragraphs(text, min_chars=0) == [text]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Chinese headings follow a sentence end (a preceding CJK word could be raw text
        # such as 小学一、二年级).
        ("引言部分。 二. 加强合作", ["引言部分。", "二. 加强合作"]),
        ("引言 部分 。 二 . 加强 合作", ["引言 部分 。", "二 . 加强 合作"]),
        ("引言部分：三、继续努力", ["引言部分：", "三、继续努力"]),
        ("引言部分。（四）最后", ["引言部分。", "（四）最后"]),
        ("引言部分。 第五章 结束", ["引言部分。", "第五章 结束"]),
        # Latin letters are options (exam questions, lists), not headings
        ("引言部分 A. 打击犯罪", ["引言部分 A. 打击犯罪"]),
        ("选择（ ）A. 挑战了制度B. 损害了利益", ["选择（ ）A. 挑战了制度B. 损害了利益"]),
        ("当前小学一、二年级学生", ["当前小学一、二年级学生"]),
        ("当前 小学 一 、 二年级 学生", ["当前 小学 一 、 二年级 学生"]),
        (
            "Plan A. Then B. continues",
            ["Plan A. Then B. continues"],
        ),  # a Latin letter only before CJK
    ],
)
def test_headings_split(text: str, expected: list[str]) -> None:
    assert split_paragraphs(text, min_chars=0) == expected


def test_long_text_is_chunked_at_sentence_ends() -> None:
    sentences = [
        "这是第一个比较长的句子。",
        "这是第二个句子！",
        "第三个句子问为什么？",
        "第四；",
    ] * 10
    text = "".join(sentences)
    chunks = split_paragraphs(text, max_chars=50, min_chars=0)
    assert len(chunks) > 1
    assert all(visible_len(c) <= 50 for c in chunks)
    assert all(c[-1] in "。！？；" for c in chunks)
    assert "".join(chunks) == text
    # packed greedily: each chunk plus the next sentence would be too long
    for chunk, nxt in zip(chunks, chunks[1:], strict=False):
        first_sentence = re.match(r"[^。！？；]*[。！？；]", nxt).group()
        assert visible_len(chunk) + visible_len(first_sentence) > 50


def test_latin_full_stops_before_a_digit_are_not_sentence_ends() -> None:
    text = "Sentence one is here. Sentence two is here. " * 6 + "v1.2 stays"
    chunks = split_paragraphs(text.strip(), max_chars=40, min_chars=0)
    assert all(visible_len(c) <= 40 for c in chunks)
    assert all(c.endswith(".") for c in chunks[:-1])
    assert squash("".join(chunks)) == squash(text)


def test_sentence_longer_than_max_is_cut_at_spaces() -> None:
    words = [f"w{i:02d}" for i in range(60)]  # 3 visible characters each, no sentence end
    text = " ".join(words)
    chunks = split_paragraphs(text, max_chars=20, min_chars=0)
    assert all(visible_len(c) <= 20 for c in chunks)
    assert [w for c in chunks for w in c.split()] == words  # no word cut in two


def test_spaces_between_cjk_words_are_not_cut_points() -> None:
    # Segmentation spaces: raw and segmented forms must be cut at the same characters.
    words = [f"词语{i % 10}" for i in range(60)]
    segmented = split_paragraphs(" ".join(words), max_chars=20, min_chars=0)
    raw = split_paragraphs("".join(words), max_chars=20, min_chars=0)
    assert [squash(c) for c in segmented] == [squash(c) for c in raw]


def test_sentence_without_spaces_is_cut_hard() -> None:
    text = "字" * 130
    chunks = split_paragraphs(text, max_chars=50, min_chars=0)
    assert chunks == ["字" * 50, "字" * 50, "字" * 30]


def test_short_fragments_are_merged_forward_and_last_one_backward() -> None:
    a, b = "甲" * 40, "乙" * 40
    text = f"标题\n{a}\n{b}\n尾"
    assert split_paragraphs(text, max_chars=400, min_chars=30) == [f"标题 {a}", f"{b} 尾"]


def test_consecutive_short_fragments_accumulate() -> None:
    text = "一行。\n二行。\n三行。\n" + "长" * 40
    assert split_paragraphs(text, min_chars=10) == ["一行。 二行。 三行。 " + "长" * 40]


def test_only_short_text_gives_one_paragraph() -> None:
    assert split_paragraphs("短。\n很短", min_chars=30) == ["短。 很短"]


def test_empty_or_blank_text_gives_no_paragraph() -> None:
    assert split_paragraphs("") == []
    assert split_paragraphs(" \n\t\n ") == []


def test_merge_respects_documented_slack() -> None:
    # a chunk of max_chars followed by a short tail: merged, up to max_chars + min_chars
    text = "甲" * 50 + "。" + "乙" * 10
    chunks = split_paragraphs(text, max_chars=51, min_chars=30)
    assert chunks == ["甲" * 50 + "。 " + "乙" * 10]
    assert visible_len(chunks[0]) <= 51 + 30


def test_explode_carries_id_and_all_tags() -> None:
    doc = Document("doc-1", "第一段。" * 3 + "\n" + "第二段。" * 10, ("A", "B", "C"))
    paragraphs = explode(doc, max_chars=400, min_chars=0)
    assert paragraphs == [
        Paragraph("doc-1", "第一段。" * 3, ("A", "B", "C")),
        Paragraph("doc-1", "第二段。" * 10, ("A", "B", "C")),
    ]


def test_squash_and_visible_len() -> None:
    assert squash(" a b\n\tc\u3000d ") == "abcd"
    assert visible_len(" a b\n\tc\u3000d ") == 4
    # str.split (visible_len) and the regex \s (squash) agree on every character
    every = "".join(chr(i) for i in range(0x3100) if not 0xD800 <= i < 0xE000)
    assert visible_len(every) == len(squash(every)) == len(every) - 29


def test_raw_and_segmented_text_split_alike() -> None:
    raw = (
        "各国应加强学校教育，提高女童入学率，改善农村地区的教学条件和师资水平，保障儿童的受教育权利。"
        "当前小学一、二年级学生的阅读能力普遍不足，粮食不安全和营养不良也影响了他们的学习成绩。"
    )
    seg = (
        "各国 应 加强 学校 教育 ， 提高 女童 入学率 ， 改善 农村 地区 的 教学 条件 和 师资 水平 ， "
        "保障 儿童 的 受 教育 权利 。 当前 小学 一 、 二年级 学生 的 阅读 能力 普遍 不足 ， 粮食 "
        "不 安全 和 营养不良 也 影响 了 他们 的 学习成绩 。"
    )
    assert squash(raw) == squash(seg)
    assert [squash(p) for p in split_paragraphs(seg)] == [squash(p) for p in split_paragraphs(raw)]


# --- property: nothing lost, nothing empty ----------------------------------------------

_CJK = "联合国报告妇女教育卫生粮食安全人权和平发展二三四十第章"
_ALPHABET = _CJK + "abcXYZ0123456789" + "。！？；.!?，、（）" + "  \t\n"
_PIECES = st.one_of(
    st.text(alphabet=_ALPHABET, max_size=40),
    st.sampled_from(
        [" 1. ", " 2. ", " 3. ", " 12. ", "1. ", " 二. ", "（三）", " A. 打", "\n", " "]
    ),
)
TEXTS = st.lists(_PIECES, max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    text=TEXTS,
    max_chars=st.sampled_from([20, 37, 400]),
    min_chars=st.sampled_from([0, 5, 30]),
)
def test_split_loses_no_character_and_makes_no_empty_paragraph(
    text: str, max_chars: int, min_chars: int
) -> None:
    paragraphs = split_paragraphs(text, max_chars, min_chars)
    assert squash("".join(paragraphs)) == squash(text)
    assert all(p.strip() for p in paragraphs)
    assert all(visible_len(p) <= max_chars + min_chars for p in paragraphs)


_CJK_WORDS = st.lists(
    st.sampled_from(
        [
            "联合国",
            "报告",
            "教育",
            "一",
            "、",
            "二",
            "。",
            "1.",
            "2.",
            "A.",
            "第三章",
            "（四）",
            "：",
            "维和",
            "小学",
            "年级",
            "3.5",
            "SDG",
            "4",
        ]
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(words=_CJK_WORDS, max_chars=st.integers(20, 60), min_chars=st.integers(0, 15))
def test_raw_and_segmented_forms_split_at_the_same_characters(
    words: list[str], max_chars: int, min_chars: int
) -> None:
    # A segmenter's spaces are the ones next to CJK characters (between two Latin/digit words
    # a space is meaningful, as in English, and both forms would have it or not).
    def wide(c: str) -> bool:
        return "\u3000" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef"

    segmented_text = words[0]
    for prev, word in zip(words, words[1:], strict=False):
        sep = " " if wide(prev[-1]) or wide(word[0]) else ""
        segmented_text += sep + word
    raw = split_paragraphs("".join(words), max_chars, min_chars)
    segmented = split_paragraphs(segmented_text, max_chars, min_chars)
    assert [squash(p) for p in raw] == [squash(p) for p in segmented]


_ALNUM = set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ANY_SEGMENTER_PIECES = st.one_of(
    st.sampled_from(["1", "2", "3", ".", ".", "2016", "：", "年"]),  # markers and decimals
    st.sampled_from(["指控", "被告人", " ", "。", "（", "三", "）", "一", "、", "第", "章"]),
    st.sampled_from([")", "(", "A", "see", "报告", "，", "?", "5", "followed", "3.5"]),
)


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(_ANY_SEGMENTER_PIECES, min_size=1, max_size=40), data=st.data())
def test_markers_split_alike_however_a_segmenter_spaces_the_text(pieces: list[str], data) -> None:
    """A segmenter may put a space between any two tokens, except inside a run of letters and
    digits (``2016``, ``x1``; a full stop is a token of its own): wherever it does, the text
    splits at the same characters (``指控：1.2016年`` and ``指控 ： 1 . 2016 年`` alike)."""
    raw = "".join(pieces)
    spaced = pieces[0]
    for prev, piece in zip(pieces, pieces[1:], strict=False):
        inside_run = prev[-1] in _ALNUM and piece[0] in _ALNUM
        spaced += ("" if inside_run or not data.draw(st.booleans()) else " ") + piece
    for max_chars, min_chars in ((3000, 0), (40, 0), (3000, 5)):
        assert [squash(p) for p in split_paragraphs(raw, max_chars, min_chars)] == [
            squash(p) for p in split_paragraphs(spaced, max_chars, min_chars)
        ], (raw, spaced)


def test_the_issues_example_splits_alike() -> None:
    raw = "指控：1.2016年，被告人在某地盗窃。2. 被告人于次日被抓获。"
    segmented = "指控 ： 1 . 2016 年 ， 被告人 在 某地 盗窃 。 2 . 被告人 于 次日 被 抓获 。"
    assert [squash(p) for p in split_paragraphs(raw, min_chars=0)] == [
        squash(p) for p in split_paragraphs(segmented, min_chars=0)
    ]
