"""The model file: arrays and JSON only, checked before use; loading one can never run code."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from classifier import artifact
from classifier.artifact import ARRAYS_FILE, FORMAT_VERSION, LEGACY_FILE, META_FILE, MODEL_FILE
from classifier.errors import IncompatibleModelError
from classifier.registry import load_model, save_model

V1 = "20240101-000000-aaaaaaaa"
TEXTS = [
    "各国应加强学校教育，提高女童入学率。",
    "维和特派团记录了侵犯人权事件。\n安理会延长了任务期限。",
]


@pytest.fixture
def folder(tmp_path: Path, model) -> Path:
    return save_model(tmp_path / "models", "default", model, {"labels": list(model.labels)}, V1)


def reload(folder: Path):
    return load_model(folder.parent.parent, "default")


def restamp(folder: Path) -> None:
    """Make the metadata's checksums match the files again, as a forger would."""
    meta = json.loads((folder / META_FILE).read_text())
    for name in meta["files"]:
        meta["files"][name]["sha256"] = artifact.sha256_file(folder / name)
    (folder / META_FILE).write_text(json.dumps(meta))


class _Payload:
    """Unpickling this creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_round_trip_scores_to_the_bit(folder: Path, model) -> None:
    again = reload(folder).model
    assert again.labels == model.labels and again.config == model.config
    assert np.array_equal(again.score_documents(TEXTS)[0], model.score_documents(TEXTS)[0])
    assert again.predict(TEXTS, paragraphs=True) == model.predict(TEXTS, paragraphs=True)


def test_the_folder_holds_json_and_plain_arrays_only(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == [ARRAYS_FILE, META_FILE, MODEL_FILE]
    json.loads((folder / MODEL_FILE).read_text())
    with np.load(folder / ARRAYS_FILE, allow_pickle=False) as npz:
        assert all(npz[name].dtype.kind in "iuf" for name in npz.files)


@pytest.mark.parametrize("name", [ARRAYS_FILE, MODEL_FILE])
def test_changed_byte_is_refused(folder: Path, name: str) -> None:
    data = bytearray((folder / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / name).write_bytes(bytes(data))
    with pytest.raises(IncompatibleModelError, match="sha256"):
        reload(folder)


def test_crafted_arrays_with_a_pickle_cannot_run_code(folder: Path, tmp_path: Path) -> None:
    """A forger who rewrites the arrays and the checksums still cannot run code on load."""
    marker = tmp_path / "unpickled.marker"
    with np.load(folder / ARRAYS_FILE) as npz:
        arrays = {name: npz[name] for name in npz.files}
    payload = np.empty(1, dtype=object)
    payload[0] = _Payload(marker)
    arrays["weights.intercept"] = payload
    with (folder / ARRAYS_FILE).open("wb") as f:
        np.savez(f, **arrays)  # object arrays are pickled inside the .npy
    restamp(folder)
    with pytest.raises(IncompatibleModelError, match="cannot load"):
        reload(folder)
    assert not marker.exists()
    # the payload is live: reading it with pickles allowed would have run it
    with np.load(folder / ARRAYS_FILE, allow_pickle=True) as npz:
        npz["weights.intercept"]
    assert marker.exists()


def test_crafted_pickle_of_the_old_format_is_never_opened(folder: Path, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled.marker"
    (folder / LEGACY_FILE).write_bytes(pickle.dumps(_Payload(marker)))
    meta = json.loads((folder / META_FILE).read_text())
    meta["format_version"] = 1
    (folder / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(IncompatibleModelError, match="retrain"):
        reload(folder)
    assert not marker.exists()


def test_a_model_of_the_old_format_is_told_to_retrain(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "default" / V1
    folder.mkdir(parents=True)
    (folder / LEGACY_FILE).write_bytes(b"\x80\x04N.")
    (folder / META_FILE).write_text(json.dumps({"format_version": 1, "name": "default"}))
    with pytest.raises(IncompatibleModelError) as info:
        load_model(tmp_path / "models", "default")
    message = str(info.value)
    assert "format 1" in message and "retrain" in message and "\n" not in message


def test_out_of_range_indices_are_refused(folder: Path) -> None:
    with np.load(folder / ARRAYS_FILE) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["weights.coef.indices"] = arrays["weights.coef.indices"] + 10**6
    with (folder / ARRAYS_FILE).open("wb") as f:
        np.savez(f, **arrays)
    restamp(folder)
    with pytest.raises(IncompatibleModelError, match="cannot load"):
        reload(folder)


def test_an_array_claiming_too_many_bytes_is_refused(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with zipfile.ZipFile(folder / ARRAYS_FILE) as z:
        biggest = max(i.file_size for i in z.infolist())
    monkeypatch.setattr(artifact, "MAX_ARRAY_BYTES", biggest - 1)
    with pytest.raises(IncompatibleModelError, match="over the limit"):
        reload(folder)


@pytest.mark.parametrize("format_version", [FORMAT_VERSION + 1, 0, str(FORMAT_VERSION), None])
def test_wrong_format_version_is_refused(folder: Path, format_version) -> None:
    meta = json.loads((folder / META_FILE).read_text())
    meta["format_version"] = format_version
    (folder / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(IncompatibleModelError, match="format version"):
        reload(folder)


def test_the_scikit_learn_version_does_not_matter(folder: Path, model) -> None:
    """Nothing scikit-learn pickled is stored, so a model loads under any of its versions."""
    meta = json.loads((folder / META_FILE).read_text())
    meta["versions"] = {"scikit-learn": "0.1.0"}
    (folder / META_FILE).write_text(json.dumps(meta))
    assert reload(folder).model.predict(TEXTS) == model.predict(TEXTS)


def test_a_model_without_every_setting_recorded_is_told_to_retrain(folder: Path) -> None:
    """A setting added after a model was made must not take its default on load."""
    description = json.loads((folder / MODEL_FILE).read_text())
    del description["config"]["simplify_chinese"]
    (folder / MODEL_FILE).write_text(json.dumps(description))
    restamp(folder)
    with pytest.raises(IncompatibleModelError, match="simplify_chinese.*retrain"):
        reload(folder)
