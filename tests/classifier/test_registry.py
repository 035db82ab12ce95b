"""The model registry: save/list/load, latest, partial folders, safe references.

Versions are told apart by a ``marker`` written into their metadata: what was saved is the
session model each time (the artifact format has its own tests, in test_artifact.py).
"""

from __future__ import annotations

import json
import os
import shutil
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier.artifact import ARRAYS_FILE, FORMAT_VERSION, META_FILE, MODEL_FILE
from classifier.errors import IncompatibleModelError, InvalidModelRefError, ModelNotFoundError
from classifier.registry import (
    ModelRef,
    default_models_dir,
    list_models,
    load_model,
    new_version,
    resolve,
    save_model,
)

V1 = "20240101-000000-aaaaaaaa"
V2 = "20250101-000000-bbbbbbbb"
META = {"labels": ["A", "B"]}


@pytest.fixture
def save(model):
    """Save the session model as ``name@version`` with ``marker`` in its metadata."""

    def save_as(models_dir: Path, marker: object, version: str, name: str = "default") -> Path:
        return save_model(models_dir, name, model, {**META, "marker": marker}, version)

    return save_as


def marker(models_dir: Path, ref: str) -> object:
    """The marker of the version ``ref`` loads."""
    return load_model(models_dir, ref).metadata["marker"]


def test_save_list_load_round_trip(tmp_path: Path, save) -> None:
    folder = save(tmp_path, {"weights": [1, 2, 3]}, V1)
    assert folder == tmp_path / "default" / V1
    assert sorted(p.name for p in folder.iterdir()) == [ARRAYS_FILE, META_FILE, MODEL_FILE]
    listed = list(list_models(tmp_path))
    assert [(m["name"], m["version"]) for m in listed] == [("default", V1)]
    assert listed[0]["labels"] == ["A", "B"]
    assert listed[0]["format_version"] == FORMAT_VERSION
    loaded = load_model(tmp_path, "default")
    assert loaded.metadata["marker"] == {"weights": [1, 2, 3]}
    assert loaded.ref == f"default@{V1}"
    assert loaded.folder == folder.resolve()
    assert marker(tmp_path, f"default@{V1}") == {"weights": [1, 2, 3]}


def test_trained_model_round_trip(tmp_path: Path, trained) -> None:
    text = ["各国应加强学校教育，提高女童入学率。", "维和特派团记录了侵犯人权事件。"]
    save_model(tmp_path, "copy", trained.model, trained.metadata, V1)
    again = load_model(tmp_path, "copy")
    assert again.metadata["labels"] == trained.metadata["labels"]
    assert again.model.predict(text, threshold=0.0) == trained.model.predict(text, threshold=0.0)


def test_list_models_orders_by_name_then_version(tmp_path: Path, save) -> None:
    save(tmp_path, 1, V2, "beta")
    save(tmp_path, 2, V2, "alpha")
    save(tmp_path, 3, V1, "alpha")
    (tmp_path / "not-a-model.txt").write_text("x")
    assert [(m["name"], m["version"]) for m in list_models(tmp_path)] == [
        ("alpha", V1),
        ("alpha", V2),
        ("beta", V2),
    ]
    assert list(list_models(tmp_path / "missing")) == []


def test_latest_is_newest_complete_version(tmp_path: Path, save) -> None:
    save(tmp_path, "old", V1)
    save(tmp_path, "new", V2)
    parent = tmp_path / "default"
    # a newer but unfinished write: hidden partial folder with both files
    partial = parent / ".partial-20990101-000000-cccccccc-abc123"
    shutil.copytree(parent / V2, partial)
    # a newer folder with a version name but no model file (incomplete)
    incomplete = parent / "20980101-000000-dddddddd"
    incomplete.mkdir()
    shutil.copy(parent / V2 / META_FILE, incomplete / META_FILE)
    assert marker(tmp_path, "default") == "new"
    assert marker(tmp_path, "default@latest") == "new"
    assert resolve(tmp_path, "default") == (parent / V2).resolve()
    assert [m["version"] for m in list_models(tmp_path)] == [V1, V2]
    with pytest.raises(InvalidModelRefError):
        load_model(tmp_path, f"default@{partial.name}")
    with pytest.raises(ModelNotFoundError):
        load_model(tmp_path, f"default@{incomplete.name}")


def test_same_version_twice_gets_a_suffix(tmp_path: Path, save) -> None:
    first = save(tmp_path, "first", V1)
    second = save(tmp_path, "second", V1)
    assert second.name == f"{V1}-2"
    assert marker(tmp_path, f"default@{V1}") == "first"
    assert marker(tmp_path, f"default@{V1}-2") == "second"
    assert json.loads((second / META_FILE).read_text())["version"] == f"{V1}-2"
    assert first.exists()
    assert marker(tmp_path, "default") == "second"


def test_latest_within_one_second_is_the_last_saved(tmp_path: Path, save) -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    save(tmp_path, "older", new_version("f" * 64, now))
    save(tmp_path, "newer", new_version("0" * 64, now))
    assert marker(tmp_path, "default") == "newer"


def test_latest_after_ten_saves_of_one_version(tmp_path: Path, save) -> None:
    for i in range(1, 11):
        save(tmp_path, i, V1)
    assert marker(tmp_path, "default") == 10


def test_failed_save_leaves_nothing(tmp_path: Path, save) -> None:
    save(tmp_path, "kept", V1)
    with pytest.raises(AttributeError):  # not a TopicClassifier: writing it fails midway
        save_model(tmp_path, "default", object(), {}, V2)
    assert sorted(p.name for p in (tmp_path / "default").iterdir()) == [V1]
    assert marker(tmp_path, "default") == "kept"


def test_missing_model(tmp_path: Path, save) -> None:
    with pytest.raises(ModelNotFoundError):
        load_model(tmp_path, "default")
    save(tmp_path, 1, V1)
    with pytest.raises(ModelNotFoundError):
        load_model(tmp_path, f"default@{V2}")
    with pytest.raises(ModelNotFoundError):
        load_model(tmp_path, "other")


# --- refusing to load (the artifact checks are in test_artifact.py) ------------------------


def test_unreadable_metadata_is_refused(tmp_path: Path, save) -> None:
    folder = save(tmp_path, {"x": 1}, V1)
    (folder / META_FILE).write_text("{not json")
    with pytest.raises(IncompatibleModelError):
        load_model(tmp_path, "default")
    (folder / META_FILE).write_text("[1, 2]")
    with pytest.raises(IncompatibleModelError):
        load_model(tmp_path, "default")


# --- references ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref",
    [
        "../x",
        "a/b",
        ".hidden",
        "x@../../etc",
        "/etc",
        "a..b",
        "x@1",
        "x@latest/..",
        f"x@{V1}/../..",
        "x y",
        "名字",
        "a" * 65,
    ],
)
def test_invalid_refs_are_refused(tmp_path: Path, ref: str) -> None:
    with pytest.raises(InvalidModelRefError):
        ModelRef.parse(ref)
    with pytest.raises(InvalidModelRefError):
        load_model(tmp_path, ref)
    with pytest.raises(InvalidModelRefError):
        save_model(tmp_path, ref, {}, {}, V1)


@pytest.mark.parametrize(
    ("ref", "name", "version"),
    [
        ("default", "default", "latest"),
        ("", "default", "latest"),
        ("m.v2_x-1", "m.v2_x-1", "latest"),
        (f"m@{V1}", "m", V1),
        (f"m@{V1}-3", "m", f"{V1}-3"),
        ("m@", "m", "latest"),
    ],
)
def test_valid_refs(ref: str, name: str, version: str) -> None:
    parsed = ModelRef.parse(ref)
    assert (parsed.name, parsed.version) == (name, version)
    assert str(parsed) == f"{name}@{version}"


def test_invalid_version_is_refused_on_save(tmp_path: Path) -> None:
    with pytest.raises(InvalidModelRefError):
        save_model(tmp_path, "default", {}, {}, "../../escape")
    assert not (tmp_path.parent / "escape").exists()


def test_version_folder_linking_outside_is_refused(tmp_path: Path, save) -> None:
    outside = save(tmp_path / "elsewhere", {"x": 1}, V1)
    models = tmp_path / "models"
    (models / "default").mkdir(parents=True)
    os.symlink(outside, models / "default" / V2)
    with pytest.raises(InvalidModelRefError):
        load_model(models, "default")


def test_new_version_format() -> None:
    now = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert new_version("0123456789abcdef" * 4, now) == "20250304-050607-01234567"


def test_models_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TAGGER_MODELS_DIR", str(tmp_path / "elsewhere"))
    assert default_models_dir() == tmp_path / "elsewhere"
    monkeypatch.setenv("TAGGER_MODELS_DIR", "")
    assert default_models_dir() == Path("models")
    monkeypatch.delenv("TAGGER_MODELS_DIR")
    assert default_models_dir() == Path("models")


def test_list_models_reports_a_broken_version_and_goes_on(tmp_path: Path, save) -> None:
    save(tmp_path, "a", V1)
    save(tmp_path, "b", V2)
    (tmp_path / "default" / V1 / "metadata.json").write_text("{not json", encoding="utf-8")
    rows = list(list_models(tmp_path))
    assert [r["version"] for r in rows] == [V1, V2]
    assert "error" in rows[0] and "error" not in rows[1]


# --- ASCII names and versions only (issue 12, req 5) --------------------------------------


def _non_ascii(predicate) -> list[str]:
    return [chr(c) for c in range(0x80, 0x110000) if predicate(chr(c))]


# every decimal digit of another script (Arabic-Indic, Devanagari, Thai, full-width, ...),
# and every other character ``str.isdigit`` takes (superscripts, circled digits, ...)
FOREIGN_DIGITS = _non_ascii(lambda c: unicodedata.category(c) == "Nd" or c.isdigit())
# characters that NFKC folds to an ASCII letter, digit or '-' of a version or a name
# (full-width, mathematical, superscript, small forms), and visual look-alikes from other
# scripts that no normalisation folds: Cyrillic а с е о р х, Greek ο α, dashes and minus
LOOKALIKES = _non_ascii(
    lambda c: (n := unicodedata.normalize("NFKC", c)).isascii() and n.isalnum() and len(n) == 1
) + list("асеорхіοα\u2010\u2011\u2012\u2013\u2212\ufe63\uff0d")
ASSORTED = [FOREIGN_DIGITS[i] for i in range(0, len(FOREIGN_DIGITS), 37)] + [
    "٣",
    "३",
    "๓",
    "３",
    "²",
    "①",
    "а",
    "ｅ",
    "\u2011",
]


def test_the_character_sets_cover_several_scripts() -> None:
    scripts = {unicodedata.name(c).split()[0] for c in FOREIGN_DIGITS}
    assert {"ARABIC-INDIC", "DEVANAGARI", "THAI", "FULLWIDTH", "BENGALI", "MATHEMATICAL"} <= scripts
    assert len(FOREIGN_DIGITS) > 600 and len(LOOKALIKES) > 200


def _variants(version: str, chars: list[str]) -> list[str]:
    """``version`` with one character replaced by each of ``chars``, spread over positions
    of the kind of character each replaces (digits by digits, letters/dashes by the rest)."""
    out = []
    for i, c in enumerate(chars):
        positions = [
            p
            for p, old in enumerate(version)
            if old.isdigit() == (unicodedata.normalize("NFKC", c).isdigit() or c.isdigit())
        ] or list(range(len(version)))
        p = positions[i % len(positions)]
        out.append(version[:p] + c + version[p + 1 :])
    return out


@pytest.mark.parametrize("chars", [FOREIGN_DIGITS, LOOKALIKES], ids=["digits", "lookalikes"])
def test_non_ascii_versions_are_never_listed_resolved_or_latest(
    tmp_path: Path, save, chars: list[str]
) -> None:
    old = save(tmp_path, "old", V1)
    save(tmp_path, "good", V2)
    newer = "20990101-000000-cccccccc"  # would be latest if its name were accepted
    names = sorted(set(_variants(newer, chars)) - {newer})
    assert names and not any(n.isascii() for n in names)
    for name in names:
        shutil.copytree(old, tmp_path / "default" / name, copy_function=os.link)
    assert [m["version"] for m in list_models(tmp_path)] == [V1, V2]
    from classifier.registry import versions

    assert versions(tmp_path / "default") == [V1, V2]
    assert resolve(tmp_path, "default").name == V2
    assert marker(tmp_path, "default@latest") == "good"
    for name in names[:: max(1, len(names) // 50)]:
        with pytest.raises(InvalidModelRefError):
            resolve(tmp_path, f"default@{name}")


@given(
    st.integers(0, len(V2) - 1),
    st.sampled_from(FOREIGN_DIGITS + LOOKALIKES) | st.characters(min_codepoint=0x80),
)
@settings(max_examples=60)
def test_any_non_ascii_character_in_a_version_is_refused(position: int, char: str) -> None:
    version = "20990101-000000-cccccccc"
    version = version[:position] + char + version[position + 1 :]
    from classifier.registry import valid_version

    assert not valid_version(version)
    with pytest.raises(InvalidModelRefError):
        ModelRef.parse(f"default@{version}")


@pytest.mark.parametrize("char", ASSORTED)
def test_non_ascii_model_names_are_not_listed(tmp_path: Path, save, char: str) -> None:
    save(tmp_path, "good", V1)
    for name in (f"model{char}", f"{char}default", "dеfault", "ｄｅｆａｕｌｔ", "名字"):
        shutil.copytree(tmp_path / "default", tmp_path / name, dirs_exist_ok=True)
        with pytest.raises(InvalidModelRefError):
            ModelRef.parse(name)
    assert [(m["name"], m["version"]) for m in list_models(tmp_path)] == [("default", V1)]


def test_partial_folders_with_odd_pids_are_left_and_do_not_break_a_save(
    tmp_path: Path, save
) -> None:
    parent = tmp_path / "default"
    odd = [f".partial-{V1}-{pid}-x" for pid in ("²", "١٢٣", "３", "9" * 30, "0x1f")]
    for name in odd:
        (parent / name).mkdir(parents=True)
    save(tmp_path, "saved", V1)
    assert marker(tmp_path, "default") == "saved"
    assert all((parent / name).is_dir() for name in odd)


def test_an_absurd_saved_time_orders_without_crashing(tmp_path: Path, save) -> None:
    folder = save(tmp_path, "a", V1)
    meta = json.loads((folder / META_FILE).read_text())
    (folder / META_FILE).write_text(json.dumps(meta).replace(str(meta["saved_ns"]), "1e400"))
    save(tmp_path, "b", V1)
    assert [m["version"] for m in list_models(tmp_path)] == [V1, f"{V1}-2"]


# --- symlinks out of the models folder (issue 12, req 5) -----------------------------------


def test_version_linking_outside_is_never_listed_or_latest(tmp_path: Path, save) -> None:
    models = tmp_path / "models"
    save(models, "inside", V1)
    outside = save(tmp_path / "elsewhere", "outside", V2)  # newer: would be latest
    os.symlink(outside, models / "default" / V2)
    assert [m["version"] for m in list_models(models)] == [V1]
    from classifier.registry import versions

    assert versions(models / "default") == [V1]
    assert marker(models, "default") == "inside"
    with pytest.raises(InvalidModelRefError):
        resolve(models, f"default@{V2}")


def test_model_name_linking_outside_is_never_listed_resolved_or_written(
    tmp_path: Path, save
) -> None:
    models = tmp_path / "models"
    save(models, "inside", V1)
    save(tmp_path / "elsewhere", "outside", V2)
    os.symlink(tmp_path / "elsewhere" / "default", models / "evil")
    os.symlink(tmp_path / "elsewhere" / "default", models / "evil-relative")
    assert [(m["name"], m["version"]) for m in list_models(models)] == [("default", V1)]
    for name in ("evil", "evil-relative"):
        with pytest.raises(InvalidModelRefError):
            resolve(models, name)
        with pytest.raises(InvalidModelRefError):
            resolve(models, f"{name}@{V2}")
    with pytest.raises(InvalidModelRefError):
        save(models, "written outside", V1, "evil")
    assert [p.name for p in (tmp_path / "elsewhere" / "default").iterdir()] == [V2]


def test_symlinks_inside_the_models_folder_are_aliases(tmp_path: Path, save) -> None:
    models = tmp_path / "models"
    save(models, "v1", V1)
    os.symlink("default", models / "prod")  # a name alias
    os.symlink(V1, models / "default" / V2)  # a version alias
    from classifier.registry import versions

    assert versions(models / "default") == versions(models / "prod") == [V1, V2]
    assert len(list(list_models(models))) == 4  # (each listed with the metadata it holds)
    assert marker(models, f"prod@{V1}") == "v1"
    assert resolve(models, "prod") == (models / "default" / V1).resolve()


def test_symlink_loops_are_ignored(tmp_path: Path, save) -> None:
    models = tmp_path / "models"
    save(models, "v1", V1)
    os.symlink("loop", models / "loop")
    os.symlink(V2, models / "default" / V2)
    assert [(m["name"], m["version"]) for m in list_models(models)] == [("default", V1)]
    assert marker(models, "default") == "v1"
    with pytest.raises((InvalidModelRefError, ModelNotFoundError)):
        resolve(models, "loop")


@pytest.mark.parametrize("name", ["metadata.json", "model.json", "arrays.npz"])
def test_a_version_with_a_file_linked_outside_is_not_listed(
    tmp_path: Path, save, name: str
) -> None:
    """Every file of a version must be a regular file of the folder, not a link (to outside)."""
    folder = save(tmp_path / "models", "linked", V1)
    outside = tmp_path / "outside"
    outside.mkdir()
    (folder / name).rename(outside / name)
    os.symlink(outside / name, folder / name)
    assert list(list_models(tmp_path / "models")) == []
    with pytest.raises(ModelNotFoundError):
        load_model(tmp_path / "models", "default")
