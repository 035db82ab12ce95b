"""Every step of the text path takes time in proportion to the text's length, on any input.

A quadratic step shows as a 16-fold time for a 4-fold text; the tests time each step on an
adversarial text of n and of 4n characters (the best of a few runs each) and allow 10-fold.
Times are the process's CPU time, which a busy machine's other jobs do not lengthen as they
do the wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier import tokenizer
from classifier.config import TrainingConfig
from classifier.features import fit_features
from classifier.paragraphs import split_paragraphs
from classifier.text import TextSettings, prepare_text

N = 20_000
RATIO = 10.0
# Below this the 4n run is too short to tell anything from the noise of a shared machine.
FLOOR_S = 0.003

# Runs of every whitespace kind, punctuation, paragraph markers, headings, digits, mixed
# scripts, full-width forms, combining marks, traditional characters: what the normalizer,
# the splitter and the tokenizer each treat specially.
PIECES = [
    " ",
    "  ",
    "\t",
    "\u3000",
    "\n",
    "\r\n",
    "\u00a0",
    "\u2028",
    "。",
    "，",
    "、",
    ".",
    "..",
    "!",
    "?",
    "；",
    "1.",
    "12 .",
    "1 . ",
    "3.5",
    "一、",
    "（三）",
    "第二章",
    "二. ",
    "2016",
    "1",
    "a",
    "ab ",
    "word",
    "x1",
    "-",
    "中",
    "中 ",
    "联合国",
    "聯合國",
    "報告",
    "ＶＩＶＯ",
    "Ｖ ",
    "１",
    "①",
    "Ⅱ",
    "ﬁ",
    "e\u0301",
    "😀",
    "ك",
    "日本語",
]


def texts(unit: str) -> tuple[str, str]:
    def of(n: int) -> str:
        return (unit * (n // len(unit) + 1))[:n]

    return of(N), of(4 * N)


def best_time(step: Callable[[str], object], text: str, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        step(text)
        best = min(best, time.process_time() - started)
    return best


def assert_linear(step: Callable[[str], object], unit: str) -> None:
    short, long = texts(unit)
    step(short)  # warm caches (segmenter dictionary, converter) outside the timing
    t_long = best_time(step, long)
    if t_long < FLOOR_S:
        return
    t_short = best_time(step, short)
    ratio = t_long / max(t_short, 1e-6)
    if ratio > RATIO:  # one retry: a spike of the machine's load is not a quadratic step
        ratio = best_time(step, long, 5) / max(best_time(step, short, 5), 1e-6)
    assert ratio < RATIO, f"{ratio:.1f}x the time for 4x the text: {unit[:60]!r}"


UNITS = st.lists(
    st.tuples(st.sampled_from(PIECES), st.integers(1, 40)), min_size=1, max_size=5
).map(lambda parts: "".join(piece * count for piece, count in parts))


@pytest.fixture(scope="module")
def features():
    """Word and character n-gram blocks fitted on a few texts made of the same pieces."""
    prepared = [tokenizer.prepare("".join(PIECES[i:] + PIECES[:i])) for i in range(len(PIECES))]
    return fit_features(prepared, TrainingConfig(min_df=1, char_ngram_max=3))[0]


STEPS: dict[str, Callable[..., object]] = {
    "normalize": lambda text: tokenizer.normalize(text, simplify=True),
    "split (3000/300)": lambda text: split_paragraphs(text, 3000, 300),
    "split (20/0)": lambda text: split_paragraphs(text, 20, 0),
    "tokenize": lambda text: tokenizer.tokenize(text, "rjieba", simplify=True),
    "prepare_text (offsets)": lambda text: prepare_text(
        text, TextSettings("rjieba", 3000, 300), offsets=True
    ),
}


@pytest.mark.parametrize("step", list(STEPS))
@settings(max_examples=12)
@given(unit=UNITS)
def test_each_step_is_linear(step: str, unit: str) -> None:
    assert_linear(STEPS[step], unit)


@settings(max_examples=12)
@given(unit=UNITS)
def test_features_are_linear(features, unit: str) -> None:
    prepared = tokenizer.prepare(unit)  # the step's own input: prepared text
    if not prepared:
        return
    assert_linear(lambda text: features.transform([tokenizer.prepare(text)]), unit)


@settings(max_examples=8)
@given(unit=UNITS)
def test_prediction_is_linear(model, unit: str) -> None:
    assert_linear(lambda text: model.predict([text], paragraphs=True), unit)


@pytest.mark.parametrize("space", [" ", "\t", "\n", "\u3000", "\u00a0", " \n"])
def test_long_runs_of_whitespace_are_linear(model, space: str) -> None:
    """The issue's case: "a" + 40,000 spaces + "a" froze a worker for 14 s."""

    def text_of(n: int) -> str:
        return "a" + space * (n // len(space)) + "a"

    def step(text: str) -> object:
        return model.predict([text])

    step(text_of(100))
    t_long = best_time(step, text_of(4 * N))
    t_short = best_time(step, text_of(N))
    assert t_long < FLOOR_S or t_long / max(t_short, 1e-6) < RATIO
