"""Tokenization: normalisation golden table, raw vs pre-segmented, pickling."""

from __future__ import annotations

import pickle
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier import tokenizer
from classifier.tokenizer import normalize, prepare, resolve_segmenter, tokenize

SEGMENTERS = ["rjieba", "jieba"]


@pytest.mark.parametrize("segmenter", SEGMENTERS)
@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("ｈｅｌｌｏ", ["hello"]),  # full-width to half-width
        ("UNESCO Report", ["unesco", "report"]),  # Latin lower-cased
        ("2023", ["2023"]),  # numbers kept
        ("2010-2011", ["2010", "2011"]),  # two numbers
        ("，。！？；：“”《》（）、", []),  # punctuation dropped
        ("Hello, World!", ["hello", "world"]),
        ("联合国的报告", ["联合国", "的", "报告"]),
        ("联合国 的 报告", ["联合国", "的", "报告"]),
        ("２０２３年", ["2023", "年"]),
        ("WHO和UNESCO", ["who", "和", "unesco"]),
        ("", []),
    ],
)
def test_tokenize_golden(segmenter: str, text: str, tokens: list[str]) -> None:
    assert tokenize(text, segmenter) == tokens


@pytest.mark.parametrize("segmenter", SEGMENTERS)
def test_full_width_equals_half_width(segmenter: str) -> None:
    assert normalize("ＡＢＣ１２３") == "abc123"
    assert tokenize("ＡＢＣ１２３", segmenter) == tokenize("abc123", segmenter)
    assert "".join(tokenize("ＡＢＣ１２３", segmenter)) == "abc123"


@pytest.mark.parametrize("segmenter", SEGMENTERS)
@pytest.mark.parametrize(
    "forms",
    [
        # full-width and half-width Latin, raw and as jieba cuts full-width characters
        ("ＶＩＶＯ Ｘ５手机", "VIVO X5手机", "Ｖ Ｉ Ｖ Ｏ   Ｘ ５ 手机", "vivo x5 手机"),
        ("１９９８年", "1998年", "１ ９ ９ ８ 年", "1998 年"),
        ("ＷＨＯ和ＵＮＥＳＣＯ", "WHO和UNESCO", "Ｗ Ｈ Ｏ 和 Ｕ Ｎ Ｅ Ｓ Ｃ Ｏ"),
        ("①②③", "① ② ③", "123"),
    ],
)
def test_every_form_of_latin_gives_the_same_tokens(segmenter: str, forms: tuple[str, ...]) -> None:
    first = tokenize(forms[0], segmenter)
    assert all(tokenize(f, segmenter) == first for f in forms[1:]), [
        tokenize(f, segmenter) for f in forms
    ]


@pytest.mark.parametrize("segmenter", SEGMENTERS)
def test_traditional_characters_give_the_simplified_tokens(segmenter: str) -> None:
    traditional = (
        "聯合國秘書長關於暫停使用死刑問題的報告指出，截至2023年已有約170個國家廢除了死刑。"
    )
    simplified = "联合国秘书长关于暂停使用死刑问题的报告指出，截至2023年已有约170个国家废除了死刑。"
    assert tokenize(traditional, segmenter, simplify=True) == tokenize(simplified, segmenter)
    assert tokenize(simplified, segmenter, simplify=True) == tokenize(simplified, segmenter)
    assert tokenize(traditional, segmenter) != tokenize(simplified, segmenter)  # opt-out kept
    assert (
        tokenizer.simplified("乾隆皇帝的頭髮很乾燥") == "乾隆皇帝的头发很干燥"
    )  # phrases, not chars


def test_normalize() -> None:
    assert normalize("ＡＢＣ　联合 国 报告 ABC def") == "abc联合国报告abc def"


SEED_RAW = (
    "秘书长关于暂停使用死刑问题的报告指出，截至2023年，已有约170个国家在法律上或实践中废除了死刑。"
)
SEED_SEGMENTED = (
    " 秘书长 关于 暂停 使用 死刑 问题 的 报告 指出 ， 截至 2023 年 ， "
    "已有 约 170 个 国家 在 法律 上 或 实践 中 废除 了 死刑 。"
)


@pytest.mark.parametrize("segmenter", SEGMENTERS)
def test_raw_and_presegmented_give_same_tokens(segmenter: str) -> None:
    raw = tokenize(SEED_RAW, segmenter)
    assert raw == tokenize(SEED_SEGMENTED, segmenter)
    assert "死刑" in raw and "2023" in raw and "，" not in raw
    assert prepare(SEED_RAW, segmenter) == prepare(SEED_SEGMENTED, segmenter) == " ".join(raw)


CJK_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=30
)


@pytest.mark.parametrize("segmenter", SEGMENTERS)
@settings(max_examples=100, deadline=None)
@given(data=st.data(), text=CJK_TEXT)
def test_spaces_between_cjk_characters_change_nothing(data, segmenter: str, text: str) -> None:
    gaps = data.draw(
        st.lists(
            st.sampled_from(["", " ", "  ", "\t", "\u3000", "\n"]),
            min_size=len(text) + 1,
            max_size=len(text) + 1,
        )
    )
    spaced = "".join(g + c for g, c in zip(gaps, text, strict=False)) + gaps[-1]
    assert spaced.replace(" ", "").replace("\t", "").replace("\n", "").replace("\u3000", "") == text
    assert tokenize(spaced, segmenter) == tokenize(text, segmenter)


def test_resolve_segmenter() -> None:
    assert resolve_segmenter("auto") in SEGMENTERS
    assert resolve_segmenter("jieba") == "jieba"
    with pytest.raises(ValueError, match="unknown segmenter"):
        resolve_segmenter("thulac")


def test_tokenize_is_picklable() -> None:
    restored = pickle.loads(pickle.dumps(tokenize))
    assert restored is tokenize
    assert pickle.loads(pickle.dumps(tokenizer.split_prepared)) is tokenizer.split_prepared


# ASCII, ideographs, full-width forms, circled numbers, compatibility ideographs, combining
# marks (which compose with the character before), Hangul jamo (which compose with each
# other), ligatures and the ideographic space: what NFKC changes, and what sits next to it.
_NFKC_ALPHABET = st.sampled_from(
    list("aAe1 ,.-\n联合国教育<=>")
    + list("，：；（）？！＜＞Ａｅ１①Ⅱ\u3000ﬁ\uf900\u2126")
    + list("、。「」《》—“”…\u2024\u3031")
    + [
        "\u0301",
        "\u0308",
        "\u0327",
        "\u0338",
        "\u1100",
        "\u1161",
        "\u11a8",
        "\uac00",
        "\u09c7",
        "\u09be",
    ]
)


@given(st.lists(_NFKC_ALPHABET, max_size=40).map("".join))
@settings(max_examples=500, deadline=None)
def test_nfkc_on_runs_equals_nfkc(text: str) -> None:
    assert tokenizer.nfkc(text) == unicodedata.normalize("NFKC", text)
