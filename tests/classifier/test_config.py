"""Training settings: every field checked for type and range from one declaration, with a
one-line error naming the field and what it accepts; ``--set``, config files and grids."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_corpus import within  # a sibling test module: fn() in a thread, bounded

from classifier.config import (
    MAX_CHAR_NGRAM,
    MAX_CONFIG_BYTES,
    FieldSpec,
    TrainingConfig,
    field_specs,
    from_mapping,
    load_config,
    parse_overrides,
    setting,
    with_overrides,
)
from classifier.errors import ClassifierError
from classifier.tune import MAX_CANDIDATES, check_candidates, load_grid

SPECS = field_specs()
NUMERIC = [s for s in SPECS.values() if s.kind in (int, float)]


def assert_clean(exc: ClassifierError, *words: str) -> None:
    """One line, naming every word given (the field, what it accepts)."""
    message = str(exc)
    assert "\n" not in message and "\r" not in message, message
    # bounded: a file's path, the field, and at most the list of the known fields
    assert len(message) < 300 + len(", ".join(field_specs())), message
    for word in words:
        assert word in message, (word, message)


# --- the declarations ---------------------------------------------------------------------


def test_every_field_has_a_spec_and_its_default_passes() -> None:
    assert list(SPECS) == [f.name for f in fields(TrainingConfig)]
    cfg = TrainingConfig()
    for name, spec in SPECS.items():
        assert spec.check(getattr(cfg, name)) == getattr(cfg, name)


def test_every_number_field_declares_both_bounds() -> None:
    """A new int or float field must say its range (a sane upper bound too)."""
    for spec in NUMERIC:
        assert spec.ge is not None or spec.gt is not None, spec.name
        assert spec.le is not None or spec.lt is not None, spec.name


def test_character_ngram_bound_is_the_extractors() -> None:
    from classifier.native import MAX_N

    assert MAX_CHAR_NGRAM == MAX_N


def test_a_new_field_is_one_line() -> None:
    @dataclass(frozen=True)
    class Extended(TrainingConfig):
        new_knob: int = setting(3, ge=1, le=5)
        new_flag: bool = False

    assert Extended().new_knob == 3
    with pytest.raises(ClassifierError) as info:
        Extended(new_knob=6)
    assert_clean(info.value, "new_knob", "an integer from 1 to 5", "got 6")
    with pytest.raises(ClassifierError, match="new_flag"):
        Extended(new_flag="yes")  # type: ignore[arg-type]


def test_unsupported_annotations_are_refused_when_declared() -> None:
    f = fields(TrainingConfig)[0]
    with pytest.raises(TypeError):
        FieldSpec.of(f, list[int])
    with pytest.raises(TypeError):
        FieldSpec.of(f, int | str)


# --- generated bad values, per field -------------------------------------------------------

JSON_KINDS: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "int": 3,
    "float": 2.5,
    "string": "x",
    "numeric string": "2",
    "list": [1],
    "object": {"a": 1},
}


def accepts_kind(spec: FieldSpec, value: Any) -> bool:
    if value is None:
        return spec.optional
    if spec.choices is not None:
        return any(type(c) is type(value) and c == value for c in spec.choices())
    if spec.kind is bool:
        return type(value) is bool
    if spec.kind is float:
        return type(value) in (int, float)
    if spec.kind is int:
        return type(value) is int
    return isinstance(value, spec.kind)


def bad_values(spec: FieldSpec) -> list[Any]:
    """Values of the wrong kind, just outside each bound, far outside, and non-finite."""
    out = [v for v in JSON_KINDS.values() if not accepts_kind(spec, v)]
    if spec.kind in (int, float):
        step = 1 if spec.kind is int else 1e-9
        low = spec.ge - step if spec.ge is not None else spec.gt
        high = spec.le + step if spec.le is not None else spec.lt
        out += [low, high, -(10**30), 10**30, 1e300, -1e300]
        out += [math.nan, math.inf, -math.inf] if spec.kind is float else [1.5, 2.0, 1e9]
        if spec.kind is float:
            out.append(10**400)  # an int no float holds
    if spec.kind is str or spec.choices is not None:
        out += ["", "no-such-choice", " svm", "SVM", "\ud800", "[/red]", "x" * 10_000]
    return [v for v in out if not (v is not None and accepts_kind(spec, v) and _in(spec, v))]


def _in(spec: FieldSpec, v: Any) -> bool:
    try:
        spec.check(v)
        return True
    except ClassifierError:
        return False


def good_values(spec: FieldSpec) -> list[Any]:
    if spec.kind is bool:
        return [True, False]
    if spec.choices is not None:
        return list(spec.choices()) + ([None] if spec.optional else [])
    if spec.kind is dict:
        return [{}, {"note": "x", "n": [1, 2.5, None]}]
    if spec.kind is str:
        return ["x"]
    out = [b for b in (spec.ge, spec.le) if b is not None]
    if spec.kind is int:
        out += [int(b) + 1 for b in [spec.gt] if b is not None]
        out += [int(b) - 1 for b in [spec.lt] if b is not None]
    else:
        out += [spec.gt + 1e-9 for _ in [0] if spec.gt is not None]
        out += [spec.lt - 1e-9 for _ in [0] if spec.lt is not None]
    return out + ([None] if spec.optional else [])


BAD = [(s.name, v) for s in SPECS.values() for v in bad_values(s)]
GOOD = [(s.name, v) for s in SPECS.values() for v in good_values(s)]
RELATIONS = {
    "char_ngram_max": {"char_ngram_min": 1},
    "min_labels": {"max_labels": 1000},
    "char_ngram_min": {"char_ngram_max": 0},
    # one validation split, not folds: no second level, and room for neighbours
    "cv_folds": {"stacking": False, "rare_label_cuts": 0, "label_names": False},
    "neighbours": {"cv_folds": 0, "stacking": False, "rare_label_cuts": 0, "label_names": False},
}


def test_the_generated_cases_cover_every_field() -> None:
    assert {n for n, _ in BAD} == set(SPECS)
    assert {n for n, _ in GOOD} == set(SPECS)
    assert len(BAD) > 250


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{n}={v!r:.30}" for n, v in BAD])
def test_bad_values_are_refused_naming_field_and_allowed_values(name: str, value: Any) -> None:
    with pytest.raises(ClassifierError) as info:
        from_mapping({name: value}, "test")
    assert_clean(info.value, "test: ", repr(name), SPECS[name].describe())


@pytest.mark.parametrize(("name", "value"), GOOD, ids=[f"{n}={v!r:.30}" for n, v in GOOD])
def test_good_values_are_kept_with_their_type(name: str, value: Any) -> None:
    cfg = from_mapping({name: value, **RELATIONS.get(name, {})}, "test")
    got = getattr(cfg, name)
    assert got == value
    if SPECS[name].kind is float and value is not None:
        assert type(got) is float  # an int given for a float is stored as a float
    # and the config survives the JSON of model.json
    assert from_mapping(json.loads(json.dumps(cfg.to_dict())), "model.json") == cfg


@pytest.mark.parametrize(
    ("item", "words"),
    [
        ("ngram_max=2.5", ["ngram_max", "an integer from 1 to 5", "2.5"]),
        ("seed=x", ["seed", "an integer from 0 to 4294967295", '"x"']),
        ("max_labels=1e9", ["max_labels", "from 1 to 1000"]),
        ("C=nan", ["'C'", "finite number"]),
        ("C=NaN", ["'C'", "finite number", "NaN"]),
        ("C=inf", ["'C'", "finite number"]),
        ("C=Infinity", ["'C'", "finite number"]),
        ("C=-Infinity", ["'C'", "finite number"]),
        ("C=1e999", ["'C'", "finite number"]),
        ("C=" + "9" * 5000, ["'C'", "finite number"]),  # too many digits for int()
        ("C=" + "[" * 100_000, ["'C'"]),  # too deep for the JSON parser
        ("refit_on_all=maybe", ["refit_on_all", "true or false", '"maybe"']),
        ("refit_on_all=1", ["refit_on_all", "true or false"]),
        ("refit_on_all=True", ["refit_on_all", "true or false"]),
        ('refit_on_all="true"', ["refit_on_all", "true or false"]),
        ("min_df=2.0", ["min_df", "an integer"]),
        ("min_df=true", ["min_df", "an integer"]),
        ("learner=foo", ["learner", "one of", '"svm"']),
        ("aggregation=MEAN", ["aggregation", '"mean"', '"mean+whole"']),
        ("class_weight=balanced2", ["class_weight", '"balanced" or null']),
        ("segmenter=null", ["segmenter", '"auto"']),
        ("neighbour_weight=nan", ["neighbour_weight", "or null"]),
        ('extra={"a": NaN}', ["extra", "JSON object"]),
        ("extra=[1]", ["extra", "JSON object"]),
        ("segmenter=[/red]", ["segmenter", "[/red]"]),
        ("segmenter=\ud800", ["segmenter"]),
        ("segmenter=a\nb", ["segmenter"]),
    ],
)
def test_set_values_of_the_issue_and_their_kin(item: str, words: list[str]) -> None:
    with pytest.raises(ClassifierError) as info:
        with_overrides(TrainingConfig(), [item])
    assert_clean(info.value, "--set: ", *words)


def test_relations_between_fields_are_checked() -> None:
    with pytest.raises(ClassifierError) as info:
        with_overrides(TrainingConfig(), ["min_labels=20"])
    assert_clean(info.value, "min_labels", "max_labels (10)")
    with pytest.raises(ClassifierError, match="char_ngram_max"):
        with_overrides(TrainingConfig(), ["char_ngram_min=3", "char_ngram_max=2"])
    assert with_overrides(TrainingConfig(), ["max_labels=30", "min_labels=20"]).min_labels == 20


@pytest.mark.parametrize("item", ["", "=1", "C", " =2", "no equals sign"])
def test_malformed_set_items(item: str) -> None:
    with pytest.raises(ClassifierError) as info:
        parse_overrides([item])
    assert_clean(info.value, "--set", "KEY=VALUE")


@pytest.mark.parametrize(
    ("item", "words"),
    [
        ("nokey=1", ['"nokey"', "known fields: segmenter"]),
        ("min_lable_docs=3", ['"min_lable_docs"', "did you mean 'min_label_docs'"]),
        ("Seed=1", ['"Seed"', "did you mean 'seed'"]),
        ("__class__=1", ['"__class__"']),
        ("c=1", ['"c"']),  # field names are case-sensitive: C
    ],
)
def test_unknown_keys_are_named(item: str, words: list[str]) -> None:
    with pytest.raises(ClassifierError) as info:
        parse_overrides([item])
    assert_clean(info.value, "--set: unknown config field", *words)


def test_values_parse_as_json_else_as_strings() -> None:
    assert parse_overrides(["C=2", "learner=svm", "label_thresholds=true"]) == {
        "C": 2,
        "learner": "svm",
        "label_thresholds": True,
    }
    cfg = with_overrides(TrainingConfig(), ["C=2", "neighbour_weight=null"])
    assert cfg.C == 2.0 and type(cfg.C) is float and cfg.neighbour_weight is None


# --- random JSON at every field ---------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


def near_bounds(spec: FieldSpec) -> st.SearchStrategy[Any]:
    """Values around the declared bounds and choices, where mistakes hide."""
    points: list[Any] = list(spec.choices()) if spec.choices is not None else []
    for b in (spec.ge, spec.gt, spec.le, spec.lt):
        if b is not None:
            points += [b, b - 1, b + 1, b - 1e-9, b + 1e-9, int(b), float(b)]
    return st.sampled_from(points) if points else st.nothing()


@st.composite
def field_values(draw: st.DrawFn) -> tuple[str, Any]:
    name = draw(st.sampled_from(list(SPECS)))
    return name, draw(JSON_VALUES | near_bounds(SPECS[name]))


def check_outcome(name: str, value: Any, build) -> None:
    try:
        cfg = build()
    except ClassifierError as exc:
        assert_clean(exc, repr(name))
        return
    spec = SPECS[name]
    got = getattr(cfg, name)
    assert spec.check(got) == got  # what was kept is valid
    assert type(got) is not bool or spec.kind is bool
    assert from_mapping(json.loads(json.dumps(cfg.to_dict())), "again") == cfg


@given(field_values())
@settings(max_examples=400)
def test_random_json_values_through_from_mapping(item: tuple[str, Any]) -> None:
    name, value = item
    check_outcome(name, value, lambda: from_mapping({name: value}, "random"))


@given(field_values(), st.booleans())
@settings(max_examples=300)
def test_random_values_through_set(item: tuple[str, Any], as_json: bool) -> None:
    """Each value as --set gets it: as JSON text, or as its raw string form."""
    name, value = item
    raw = json.dumps(value) if as_json or not isinstance(value, str) else value
    check_outcome(name, value, lambda: with_overrides(TrainingConfig(), [f"{name}={raw}"]))


@given(st.text(max_size=30), st.text(max_size=30))
@settings(max_examples=200)
def test_random_set_items_never_escape_as_other_errors(key: str, raw: str) -> None:
    try:
        with_overrides(TrainingConfig(), [f"{key}={raw}"])
    except ClassifierError as exc:
        assert_clean(exc)


# --- config files ---------------------------------------------------------------------------


def test_config_file_values_are_checked_naming_the_file(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('[training]\nC = 2\nngram_max = "2"\n')
    with pytest.raises(ClassifierError) as info:
        load_config(toml)
    assert_clean(info.value, str(toml), "ngram_max", "an integer")
    toml.write_text("C = 2\nrefit_on_all = 1\n")
    with pytest.raises(ClassifierError, match="refit_on_all' must be true or false"):
        load_config(toml)
    toml.write_text("seed = 1979-05-27T07:32:00Z\n")  # a TOML date-time
    with pytest.raises(ClassifierError, match="seed"):
        load_config(toml)
    toml.write_text("C = 2\n")
    assert load_config(toml).C == 2.0


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("[1, 2]", ["expected an object of config fields"]),
        ('"text"', ["expected an object"]),
        ("null", ["expected an object"]),
        ('{"C": NaN}', ["'C'", "finite"]),
        ('{"C": 1e999}', ["'C'", "finite"]),
        ('{"seed": ' + "9" * 5000 + "}", ["cannot read config"]),
        ("[" * 100_000, ["cannot read config"]),
        ("{bad json", ["cannot read config"]),
        ('{"training": 5}', ["unknown config field", "training"]),
        ('{"nokey": 1}', ['"nokey"']),
    ],
)
def test_bad_json_config_files(tmp_path: Path, content: str, words: list[str]) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(ClassifierError) as info:
        load_config(path)
    assert_clean(info.value, str(path), *words)


@pytest.mark.parametrize("kind", ["fifo", "directory", "missing", "too large", "not utf-8"])
def test_unreadable_config_and_grid_files_fail_in_one_line(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "c.toml"
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would wait for a writer forever
    elif kind == "directory":
        path.mkdir()
    elif kind == "too large":
        path.write_bytes(b"# " + b"x" * MAX_CONFIG_BYTES + b"\n")
    elif kind == "not utf-8":
        path.write_bytes("C = 2 # 中文".encode("gbk"))
    for load, what in ((load_config, "config"), (load_grid, "grid")):
        with pytest.raises(ClassifierError) as info:
            within(10.0, lambda load=load: load(path))
        assert_clean(info.value, str(path), f"cannot read {what}")


# --- grids -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grid", "words"),
    [
        ('{"nokey": [1]}', ['"nokey"']),
        ('{"C": [1, "x"]}', ["'C'", "finite number", '"x"']),
        ('{"C": [NaN]}', ["'C'", "finite number"]),
        ('{"ngram_max": [1, 2.5]}', ["ngram_max", "an integer from 1 to 5"]),
        ('{"refit_on_all": ["maybe"]}', ["refit_on_all", "true or false"]),
        ('{"max_labels": [1e9]}', ["max_labels"]),
        ('{"C": []}', ["non-empty lists"]),
        ('{"C": 1}', ["non-empty lists"]),
        ("[1]", ["non-empty lists"]),
        ('{"C": [' + "9" * 5000 + "]}", ["cannot read grid"]),
        ("{" + "[" * 100_000, ["cannot read grid"]),
        ('{"C": [' + ", ".join(["1"] * (MAX_CANDIDATES + 1)) + "]}", ["candidate values"]),
    ],
)
def test_bad_grids_inline_and_in_files(tmp_path: Path, grid: str, words: list[str]) -> None:
    with pytest.raises(ClassifierError) as info:
        load_grid(grid)
    assert_clean(info.value, "--grid: ", *words)
    path = tmp_path / "grid.json"
    path.write_text(grid)
    with pytest.raises(ClassifierError) as info:
        load_grid(path)
    assert_clean(info.value, str(path), *words)


def test_grid_values_are_kept_as_their_fields_hold_them() -> None:
    grid = load_grid(' {"C": [1, 0.5], "neighbour_weight": [null, 0]}')
    assert grid == {"C": [1.0, 0.5], "neighbour_weight": [None, 0.0]}
    assert type(grid["C"][0]) is float


def test_grid_candidates_must_fit_the_base_configuration() -> None:
    with pytest.raises(ClassifierError) as info:
        check_candidates(load_grid('{"min_labels": [20]}'), TrainingConfig())
    assert_clean(info.value, "grid candidate min_labels=20", "max_labels (10)")
    check_candidates(load_grid('{"min_labels": [2]}'), TrainingConfig())


@given(st.dictionaries(st.text(max_size=12) | st.sampled_from(list(SPECS)), JSON_VALUES))
@settings(max_examples=300)
def test_random_grids_are_refused_cleanly_or_valid(grid: dict[str, Any]) -> None:
    try:
        checked = load_grid(json.dumps(grid))
    except ClassifierError as exc:
        assert_clean(exc, "--grid")
        return
    for name, values in checked.items():
        for v in values:
            assert SPECS[name].check(v) == v
