"""Every training hyperparameter in one dataclass, with defaults and a TOML/JSON loader."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from classifier import learners
from classifier.errors import ClassifierError
from classifier.paragraphs import DEFAULT_MAX_CHARS, DEFAULT_MIN_CHARS
from classifier.text import TextSettings
from classifier.tokenizer import SEGMENTERS, resolve_segmenter

Aggregation = Literal["mean", "max", "weighted", "whole", "mean+whole"]
RarePolicy = Literal["drop", "keep"]
# the neighbour weights tried on validation when ``neighbour_weight`` is unset
NEIGHBOUR_WEIGHTS = (0.0, 0.25, 0.5, 0.75)


@dataclass(frozen=True)
class TrainingConfig:
    """Hyperparameters of a training run; recorded whole in the model metadata."""

    # text preparation ("auto": the fastest installed segmenter, resolved once by ``resolved``);
    # traditional Chinese characters are written as simplified ones (OpenCC t2s) unless
    # ``simplify_chinese`` is false
    segmenter: str = "auto"
    simplify_chinese: bool = True
    max_paragraph_chars: int = DEFAULT_MAX_CHARS
    min_paragraph_chars: int = DEFAULT_MIN_CHARS
    # features
    ngram_max: int = 1
    min_df: int = 2
    max_df: float = 1.0
    max_features: int | None = None
    sublinear_tf: bool = True
    # character n-grams (of CJK runs with segmentation undone, of padded Latin words) beside
    # the word n-grams; 0 = none. char_ngram_max = 2 with prune_below = 0.05 is the most
    # accurate configuration measured (tiku +0.7, fudan +0.8 points of document micro-F1) but
    # extracts features 5 to 8 times slower, so it is `tagger tune`'s to choose, not a default
    char_ngram_min: int = 1
    char_ngram_max: int = 0
    # classifier: one binary linear model per label, all with regularisation strength C; the
    # learner is a name of the registry in ``classifier.learners`` (svm, logistic, sgd, ...)
    learner: str = "svm"
    C: float = 1.0
    class_weight: Literal["balanced"] | None = None
    # weights with |w| <= prune_below are dropped (features are unit-length TF-IDF blocks):
    # at 0.01 the tiku model shrinks from 25.4 to 9.1 MB and document micro-F1 moved by at
    # most 0.0003 on the three benchmark corpora (BENCHMARKS.md)
    prune_below: float = 0.01
    # add each multi-paragraph document as one more training example
    train_on_documents: bool = False
    # labels: a tag on fewer than ``min_label_docs`` training documents is dropped (and
    # reported) under "drop", or kept with the global threshold under "keep".
    min_label_docs: int = 2
    rare_labels: RarePolicy = "drop"
    # blend in the tags of the ``neighbours`` most similar training documents (0 = off), with
    # weight ``neighbour_weight`` (None: chosen on validation among NEIGHBOUR_WEIGHTS)
    neighbours: int = 0
    neighbour_weight: float | None = None
    # decisions
    validation_fraction: float = 0.1
    aggregation: Aggregation = "mean"
    # one threshold per label (tuned on validation) for labels with at least
    # ``min_label_positives`` positive validation items; the global threshold for the others
    label_thresholds: bool = False
    min_label_positives: int = 5
    min_labels: int = 1
    max_labels: int = 10
    refit_on_all: bool = True
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(
            self.segmenter in ("auto", *SEGMENTERS),
            "segmenter",
            f"must be one of auto, {', '.join(SEGMENTERS)}",
        )
        _check(0.0 <= self.validation_fraction < 1.0, "validation_fraction", "must be in [0, 1)")
        _check(self.max_paragraph_chars >= 20, "max_paragraph_chars", "must be at least 20")
        _check(self.min_paragraph_chars >= 0, "min_paragraph_chars", "must be >= 0")
        _check(self.ngram_max >= 1, "ngram_max", "must be >= 1")
        _check(self.char_ngram_min >= 1, "char_ngram_min", "must be >= 1")
        _check(
            self.char_ngram_max == 0 or self.char_ngram_max >= self.char_ngram_min,
            "char_ngram_max",
            "must be 0 (no character n-grams) or >= char_ngram_min",
        )
        _check(self.min_df >= 1, "min_df", "must be >= 1")
        _check(0.0 < self.max_df <= 1.0, "max_df", "must be in (0, 1]")
        _check(
            self.learner in learners.names(),
            "learner",
            f"must be one of {', '.join(learners.names())}",
        )
        _check(self.C > 0, "C", "must be > 0")
        _check(self.prune_below >= 0, "prune_below", "must be >= 0")
        _check(self.neighbours >= 0, "neighbours", "must be >= 0")
        _check(
            self.neighbour_weight is None or 0.0 <= self.neighbour_weight <= 1.0,
            "neighbour_weight",
            "must be in [0, 1] (or unset: chosen on validation)",
        )
        _check(self.min_label_docs >= 1, "min_label_docs", "must be >= 1")
        _check(self.rare_labels in ("drop", "keep"), "rare_labels", "must be 'drop' or 'keep'")
        _check(
            self.aggregation in ("mean", "max", "weighted", "whole", "mean+whole"),
            "aggregation",
            "must be 'mean', 'max', 'weighted', 'whole' or 'mean+whole'",
        )
        _check(0 <= self.min_labels <= self.max_labels, "min_labels", "must be in [0, max_labels]")
        _check(self.max_labels >= 1, "max_labels", "must be >= 1")
        _check(self.min_label_positives >= 1, "min_label_positives", "must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def resolved(self) -> TrainingConfig:
        """This configuration with ``segmenter = "auto"`` replaced by the segmenter it means."""
        return dataclasses.replace(self, segmenter=resolve_segmenter(self.segmenter))

    @property
    def text(self) -> TextSettings:
        """The text-preparation settings (of a resolved configuration)."""
        return TextSettings(
            self.segmenter,
            self.max_paragraph_chars,
            self.min_paragraph_chars,
            self.simplify_chinese,
        )

    def replace(self, **changes: Any) -> TrainingConfig:
        return from_mapping({**self.to_dict(), **changes}, "override")


def _check(ok: bool, name: str, why: str) -> None:
    if not ok:
        raise ClassifierError(f"config field {name!r} {why}")


def from_mapping(values: dict[str, Any], source: str) -> TrainingConfig:
    """Build a config from a mapping, naming any unknown field."""
    known = {f.name for f in dataclasses.fields(TrainingConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ClassifierError(f"{source}: unknown config field(s) {', '.join(unknown)}")
    try:
        return TrainingConfig(**values)
    except TypeError as exc:
        raise ClassifierError(f"{source}: {exc}") from None


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings to a mapping; a value is read as JSON when it parses as JSON
    (``C=2``, ``label_thresholds=true``), else taken as a string (``learner=svm``)."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ClassifierError(f"expected KEY=VALUE, got {item!r}")
        try:
            overrides[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key.strip()] = raw
    return overrides


def load_config(path: str | Path | None) -> TrainingConfig:
    """Read a TOML or JSON config file (a ``[training]`` table is accepted); None gives defaults."""
    if path is None:
        return TrainingConfig()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        values = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ClassifierError(f"{p}: cannot read config: {exc}") from None
    if isinstance(values.get("training"), dict):
        values = values["training"]
    return from_mapping(values, str(p))
