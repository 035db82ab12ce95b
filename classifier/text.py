"""The one text path: a document (or a request text) to its prepared paragraphs.

Training, evaluation and prediction all call ``prepare_text``, so a text is split and
tokenized in exactly one way wherever it comes from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from classifier import tokenizer
from classifier.offsets import Spans
from classifier.paragraphs import locate, split_paragraphs, visible_len


@dataclass(frozen=True)
class TextSettings:
    """How texts are cut into paragraphs and tokenized; the segmenter is a concrete name."""

    segmenter: str
    max_paragraph_chars: int
    min_paragraph_chars: int
    simplify_chinese: bool = True

    def __post_init__(self) -> None:
        if self.segmenter not in tokenizer.SEGMENTERS:
            raise ValueError(f"segmenter must be resolved to one of {tokenizer.SEGMENTERS}")


@dataclass(frozen=True)
class PreparedText:
    """A text's paragraphs as split, their tokens (joined by spaces) and visible lengths;
    made with offsets, also where each character of each ``tokens`` string came from in the
    text as sent (``spans[i]`` for ``tokens[i]``)."""

    paragraphs: list[str]
    tokens: list[str]
    lengths: list[int]
    spans: list[Spans] | None = None


def prepare_text(
    text: str,
    settings: TextSettings,
    checkpoint: Callable[[], None] | None = None,
    offsets: bool = False,
) -> PreparedText:
    """Split ``text`` into paragraphs and tokenize each; a text always has one paragraph at
    least (a blank text is one empty paragraph). ``checkpoint`` is called before each
    paragraph (it raises to stop the work). With ``offsets`` the same paragraphs and tokens,
    and their spans (linear time; see ``classifier.offsets``)."""
    split = split_paragraphs(text, settings.max_paragraph_chars, settings.min_paragraph_chars)
    paragraphs = split or [text]
    lengths = [visible_len(p) for p in paragraphs]
    if offsets:
        located = locate(text, split) if split else [Spans.identity(len(text))]
        tokens, spans = [], []
        for p, where in zip(paragraphs, located, strict=True):
            if checkpoint is not None:
                checkpoint()
            prepared, s = tokenizer.prepare_located(
                p, settings.segmenter, settings.simplify_chinese, where
            )
            tokens.append(prepared)
            spans.append(s)
        return PreparedText(paragraphs, tokens, lengths, spans)
    tokens = []
    for p in paragraphs:
        if checkpoint is not None:
            checkpoint()
        tokens.append(prepare_paragraph(p, settings))
    return PreparedText(paragraphs, tokens, lengths)


def prepare_paragraph(text: str, settings: TextSettings) -> str:
    """One paragraph's tokens joined by spaces (a text taken as one paragraph, not split)."""
    return tokenizer.prepare(text, settings.segmenter, settings.simplify_chinese)


def prepare_texts(texts: Sequence[str], settings: TextSettings) -> list[PreparedText]:
    """``prepare_text`` over a batch (the unit of work of a worker process)."""
    return [prepare_text(t, settings) for t in texts]
