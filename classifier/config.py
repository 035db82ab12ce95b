"""Every training hyperparameter in one dataclass, with defaults, checks and TOML/JSON/--set
parsing.

What a field accepts comes from one place: its type annotation (``bool``, ``int``, ``float``,
``str``, ``Literal[...]``, ``X | None``, ``dict``) and the bounds and allowed values its
``setting(...)`` declares. ``FieldSpec`` turns both into a check and a description, used when
a ``TrainingConfig`` is built (from code, ``--set``, a config file or a saved model) and for
each candidate of a ``--grid``; an error is one line naming the field and what it accepts.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import numbers
import tomllib
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
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
# upper bounds: far above any sensible value, low enough that no value makes a run explode
MAX_CHARS = 1_000_000  # paragraph sizes
MAX_COUNT = 100_000_000  # document counts and feature counts
MAX_WORD_NGRAM = 5
MAX_CHAR_NGRAM = 3  # classifier.native.MAX_N (not imported: it pulls in NumPy and SciPy)
MAX_LABELS = 1000  # labels a document is given
MAX_FOLDS = 10
MAX_CONFIG_BYTES = 1024 * 1024  # a config or grid file
MAX_SHOWN = 40  # characters of a refused value quoted in an error


def setting(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: Callable[[], Iterable[Any]] | None = None,
) -> Any:
    """A field's default plus what it accepts beyond its type: bounds and allowed values
    (``choices`` is called when checking, so a registry can grow)."""
    bounds = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices}
    return field(default=default, metadata={k: v for k, v in bounds.items() if v is not None})


@dataclass(frozen=True)
class FieldSpec:
    """What one field accepts: a base type, whether null is allowed, bounds and choices."""

    name: str
    kind: type  # bool, int, float, str or dict
    optional: bool = False
    choices: Callable[[], Iterable[Any]] | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    @classmethod
    def of(cls, f: dataclasses.Field[Any], annotation: Any) -> FieldSpec:
        """The spec of a dataclass field from its resolved annotation and its metadata."""
        args = typing.get_args(annotation)
        optional = typing.get_origin(annotation) in (typing.Union, types.UnionType)
        if optional:
            if type(None) not in args or len(args) != 2:
                raise TypeError(f"field {f.name}: only X | None unions are supported")
            annotation = next(a for a in args if a is not type(None))
            args = typing.get_args(annotation)
        meta = dict(f.metadata)
        if typing.get_origin(annotation) is Literal:
            if "choices" in meta:
                raise TypeError(f"field {f.name}: a Literal carries its own choices")
            meta["choices"] = lambda values=args: values
            annotation = type(args[0])
        kind = typing.get_origin(annotation) or annotation
        if kind not in (bool, int, float, str, dict):
            raise TypeError(f"field {f.name}: unsupported type {annotation!r}")
        return cls(f.name, kind, optional, **meta)

    def describe(self) -> str:
        """What the field accepts, as an error message says it."""
        if self.choices is not None:
            text = "one of " + ", ".join(show_value(c) for c in self.choices())
        elif self.kind is bool:
            text = "true or false"
        elif self.kind is dict:
            text = "a JSON object (TOML table) of JSON values"
        elif self.kind is str:
            text = "a string"
        else:
            text = ("an integer" if self.kind is int else "a finite number") + self._range()
        return text + (" or null (unset)" if self.optional else "")

    def _range(self) -> str:
        low = (">=", self.ge) if self.ge is not None else (">", self.gt)
        high = ("<=", self.le) if self.le is not None else ("<", self.lt)
        if low[1] is not None and high[1] is not None and low[0] == ">=" and high[0] == "<=":
            return f" from {_num(low[1])} to {_num(high[1])}"
        parts = [f"{op} {_num(v)}" for op, v in (low, high) if v is not None]
        return (" " + " and ".join(parts)) if parts else ""

    def check(self, value: Any) -> Any:
        """``value`` as the field holds it (an int given for a float becomes a float), or a
        ``ClassifierError`` naming the field, what it accepts and what it got."""
        converted = self._convert(value)
        if converted is _REFUSED:
            raise ClassifierError(
                f"config field {self.name!r} must be {self.describe()}, got {show_value(value)}"
            )
        return converted

    def _convert(self, value: Any) -> Any:
        if value is None:
            return None if self.optional else _REFUSED
        if self.kind is bool:
            return value if type(value) is bool else _REFUSED
        if self.choices is not None:
            allowed = tuple(self.choices())
            # equal and of the same type: True is not 1, 1.0 is not "1.0"
            return (
                value if any(type(c) is type(value) and c == value for c in allowed) else _REFUSED
            )
        if self.kind is str:
            return value if isinstance(value, str) else _REFUSED
        if self.kind is dict:
            return value if _is_json_object(value) else _REFUSED
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return _REFUSED
        if self.kind is int:
            if not isinstance(value, numbers.Integral):
                return _REFUSED
            number: float = int(value)
        else:
            try:
                number = float(value)
            except (OverflowError, ValueError):
                return _REFUSED
            if not math.isfinite(number):
                return _REFUSED
        return number if self._in_range(number) else _REFUSED

    def _in_range(self, x: float) -> bool:
        return (
            (self.ge is None or x >= self.ge)
            and (self.gt is None or x > self.gt)
            and (self.le is None or x <= self.le)
            and (self.lt is None or x < self.lt)
        )


_REFUSED = object()


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def show_value(value: Any) -> str:
    """A value as JSON would write it, cut to MAX_SHOWN characters, on one line."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    text = " ".join(text.splitlines())  # a repr() could hold line breaks; JSON never does
    text = text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates


def _is_json_object(value: Any) -> bool:
    """A dict with string keys whose values JSON can write (finite numbers only)."""
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        return False
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


@dataclass(frozen=True)
class TrainingConfig:
    """Hyperparameters of a training run; recorded whole in the model metadata.

    Every field is checked against its type (bools strictly true/false, integers whole,
    numbers finite; an int is taken for a float) and against what its ``setting(...)``
    declares (bounds, allowed values): a new field is one line, and ``--set``, config files
    and ``--grid`` are all checked by the same code, ``check_field``.
    """

    # text preparation ("auto": the fastest installed segmenter, resolved once by ``resolved``);
    # traditional Chinese characters are written as simplified ones (OpenCC t2s) unless
    # ``simplify_chinese`` is false
    segmenter: str = setting("auto", choices=lambda: ("auto", *SEGMENTERS))
    simplify_chinese: bool = True
    max_paragraph_chars: int = setting(DEFAULT_MAX_CHARS, ge=20, le=MAX_CHARS)
    min_paragraph_chars: int = setting(DEFAULT_MIN_CHARS, ge=0, le=MAX_CHARS)
    # features
    ngram_max: int = setting(1, ge=1, le=MAX_WORD_NGRAM)
    min_df: int = setting(2, ge=1, le=MAX_COUNT)
    max_df: float = setting(1.0, gt=0.0, le=1.0)
    max_features: int | None = setting(None, ge=1, le=MAX_COUNT)
    sublinear_tf: bool = True
    # character 1-2-grams of the words holding a CJK character, with the segmentation undone
    # inside CJK runs, beside the word n-grams (char_ngram_max = 0: none; char_scope = "all":
    # of Latin words too). On held-out fifths of train/: tiku +0.6 points of document
    # micro-F1 and +1.0 macro-F1, fudan +0.2, reuters21578 the same model (no CJK); the "all"
    # scope cost reuters21578 0.5 point. Counted by compiled code (classifier/native.py);
    # the first level's fits take about 4.5 times as long (BENCHMARKS.md §1)
    char_ngram_min: int = setting(1, ge=1, le=MAX_CHAR_NGRAM)
    char_ngram_max: int = setting(2, ge=0, le=MAX_CHAR_NGRAM)
    char_scope: Literal["all", "cjk"] = "cjk"
    # classifier: one binary linear model per label, all with regularisation strength C; the
    # learner is a name of the registry in ``classifier.learners`` (svm, logistic, sgd, ...)
    learner: str = setting("svm", choices=learners.names)
    C: float = setting(1.0, ge=1e-6, le=1e6)
    # the svm learner's stopping tolerance (liblinear's dual solver): 0.1 gave the document
    # micro-F1 of 1e-4 to 0.0002 on reuters21578 (BENCHMARKS.md) for fewer iterations
    tol: float = setting(0.1, gt=0.0, le=1.0)
    class_weight: Literal["balanced"] | None = None
    # weights with |w| <= prune_below are dropped (features are unit-length TF-IDF blocks):
    # with the character n-grams, 0.05 scored as well as 0.01 on held-out fifths of train/
    # (tiku +0.0, fudan +0.4, reuters21578 +0.2 points of document micro-F1) with fewer
    # weights to multiply a paragraph by (BENCHMARKS.md §1)
    prune_below: float = setting(0.05, ge=0.0, le=100.0)
    # add each multi-paragraph document as one more training example
    train_on_documents: bool = False
    # labels: a tag on fewer than ``min_label_docs`` training documents is dropped (and
    # reported) under "drop", or kept with the global threshold under "keep".
    # "keep" is the default: a dropped label can never be suggested, and the stacked model
    # gives a tag seen once a fair chance (BENCHMARKS.md ablation)
    min_label_docs: int = setting(2, ge=1, le=MAX_COUNT)
    rare_labels: RarePolicy = "keep"
    # blend in the tags of the ``neighbours`` most similar training documents (0 = off), with
    # weight ``neighbour_weight`` (None: chosen on validation among NEIGHBOUR_WEIGHTS)
    neighbours: int = setting(0, ge=0, le=1000)
    neighbour_weight: float | None = setting(None, ge=0.0, le=1.0)
    # held-out scores: ``cv_folds`` folds of the documents (by a hash of their id) give every
    # training document out-of-fold scores, on which calibration, the second level and the
    # thresholds are fitted; 0 = one validation split of ``validation_fraction`` instead
    cv_folds: int = setting(3, ge=0, le=MAX_FOLDS)
    validation_fraction: float = setting(0.1, ge=0.0, lt=1.0)
    # the second level (classifier.stacking): per label, a linear model over every label's
    # out-of-fold document scores (mean, whole document and max of the paragraphs), fitted on
    # the documents where the first level ranks that label among its ``stack_candidates``
    # best; replaces ``aggregation`` for document scores. Needs cv_folds >= 2
    stacking: bool = True
    stack_candidates: int = setting(30, ge=1, le=MAX_LABELS)
    # the labels' names as evidence (classifier.names): a document saying a label's name
    # scores higher for it, the more so the fewer its training documents; how much is chosen
    # on the out-of-fold scores (best macro-F1 at no loss of micro-F1; none if nothing
    # gains). On held-out fifths of train/: BENCHMARKS.md §1. Needs cv_folds >= 2
    label_names: bool = True
    # decisions
    aggregation: Aggregation = "mean"
    # one threshold per label (tuned on validation) for labels with at least
    # ``min_label_positives`` positive validation items; the global threshold for the others
    label_thresholds: bool = False
    min_label_positives: int = setting(5, ge=1, le=MAX_COUNT)
    # document thresholds of their own for the labels on fewer than ``rare_label_cuts``
    # training documents: LibMultiLabel's micro + macro cut in each cross-validation fold,
    # averaged (0 = none; needs cv_folds >= 2), then moved back toward the global threshold:
    # a label on n documents keeps n / (n + ``cut_shrinkage``) of the way to its own cut
    # (BENCHMARKS.md §1: on held-out fifths of train/, the unshrunk cuts lost micro-F1; the
    # shrunk ones with 200 lifted macro-F1 there, but cost fudan's test macro-F1: not default)
    rare_label_cuts: int = setting(0, ge=0, le=MAX_COUNT)
    cut_shrinkage: float = setting(20.0, ge=0, le=MAX_COUNT)
    min_labels: int = setting(1, ge=0, le=MAX_LABELS)
    max_labels: int = setting(10, ge=1, le=MAX_LABELS)
    # refit the first level on all documents once tuned; false: keep the model fitted without
    # the validation split, or with cv_folds the average of the fold models (cheaper, about
    # 0.3 to 0.6 points of micro-F1 lower)
    refit_on_all: bool = True
    # the random seed of every randomised step (scikit-learn takes 0 to 2**32 - 1)
    seed: int = setting(0, ge=0, le=2**32 - 1)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, spec in field_specs(type(self)).items():
            object.__setattr__(self, name, spec.check(getattr(self, name)))
        # relations between fields (each field alone is checked above)
        _check(
            self.char_ngram_max == 0 or self.char_ngram_max >= self.char_ngram_min,
            "char_ngram_max",
            f"must be 0 (no character n-grams) or >= 'char_ngram_min' ({self.char_ngram_min})",
        )
        _check(self.cv_folds != 1, "cv_folds", "must be 0 (one validation split) or >= 2")
        _check(
            not self.stacking or self.cv_folds >= 2,
            "stacking",
            "needs out-of-fold scores: set 'cv_folds' >= 2 (or 'stacking' = false)",
        )
        _check(
            not self.label_names or self.cv_folds >= 2,
            "label_names",
            "are weighed on out-of-fold scores: set 'cv_folds' >= 2 (or 'label_names' = false)",
        )
        _check(
            self.rare_label_cuts == 0 or self.cv_folds >= 2,
            "rare_label_cuts",
            "are made in cross-validation folds: set 'cv_folds' >= 2 (or 'rare_label_cuts' = 0)",
        )
        _check(
            self.neighbours == 0 or self.cv_folds == 0,
            "neighbours",
            "are weighed on one validation split: set 'cv_folds' = 0 and 'stacking' = false",
        )
        _check(
            self.min_labels <= self.max_labels,
            "min_labels",
            f"must be <= max_labels ({self.max_labels}), got {self.min_labels}",
        )

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


@cache
def field_specs(cls: type[TrainingConfig] | None = None) -> dict[str, FieldSpec]:
    """Every field's spec, by name, from the annotations and ``setting`` metadata (of
    TrainingConfig, or of a dataclass extending it)."""
    cls = cls or TrainingConfig
    hints = typing.get_type_hints(cls)
    return {f.name: FieldSpec.of(f, hints[f.name]) for f in dataclasses.fields(cls)}


def check_field(name: str, value: Any, source: str) -> Any:
    """``value`` checked for field ``name`` (unknown names are refused, naming ``source``)."""
    check_names([name], source)
    try:
        return field_specs()[name].check(value)
    except ClassifierError as exc:
        raise ClassifierError(f"{source}: {exc}") from None


def check_names(names: Iterable[Any], source: str) -> None:
    """Refuse any name that is not a config field, naming it and the closest field."""
    specs = field_specs()
    unknown = [n for n in names if n not in specs]
    if not unknown:
        return
    shown = ", ".join(show_value(n) for n in unknown[:5]) + (", …" if len(unknown) > 5 else "")
    close = difflib.get_close_matches(str(unknown[0])[:100], list(specs), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known fields: {', '.join(specs)}"
    raise ClassifierError(f"{source}: unknown config field(s) {shown}; {hint}")


def from_mapping(values: Any, source: str) -> TrainingConfig:
    """Build a config from a mapping, naming any unknown field and any refused value."""
    if not isinstance(values, dict):
        raise ClassifierError(
            f"{source}: expected an object of config fields, got {show_value(values)}"
        )
    check_names(values, source)
    try:
        return TrainingConfig(**values)
    except ClassifierError as exc:
        raise ClassifierError(f"{source}: {exc}") from None


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings to a mapping; a value is read as JSON when it parses as JSON
    (``C=2``, ``label_thresholds=true``), else taken as a string (``learner=svm``).

    Only the keys are checked here (``from_mapping`` checks the values)."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ClassifierError(f"--set: expected KEY=VALUE, got {show_value(item)}")
        try:
            overrides[key.strip()] = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, too deep, or too many digits
            overrides[key.strip()] = raw
    check_names(overrides, "--set")
    return overrides


def with_overrides(cfg: TrainingConfig, items: Iterable[str]) -> TrainingConfig:
    """``cfg`` with ``--set KEY=VALUE`` items applied (and checked)."""
    return from_mapping({**cfg.to_dict(), **parse_overrides(items)}, "--set")


def read_json_or_toml(path: str | Path, what: str) -> Any:
    """A small JSON (``.json``) or TOML file's content; ``what`` names it in errors. Only a
    regular file of at most MAX_CONFIG_BYTES is read (never a FIFO or a device)."""
    from classifier.corpus import read_regular_file

    p = Path(path)
    try:
        text = read_regular_file(p, MAX_CONFIG_BYTES).decode("utf-8")
        return json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
    except ClassifierError as exc:
        raise ClassifierError(f"cannot read {what}: {exc}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = " ".join(str(exc).splitlines()) or type(exc).__name__
        raise ClassifierError(f"{p}: cannot read {what}: {reason}") from None


def load_config(path: str | Path | None) -> TrainingConfig:
    """Read a TOML or JSON config file (a ``[training]`` table is accepted); None gives defaults."""
    if path is None:
        return TrainingConfig()
    values = read_json_or_toml(path, "config")
    if isinstance(values, dict) and isinstance(values.get("training"), dict):
        values = values["training"]
    return from_mapping(values, str(path))
