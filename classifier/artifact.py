"""One model version on disk: ``model.json`` + ``arrays.npz`` + ``metadata.json``.

The model is JSON (configuration, labels, thresholds, how features are made) and NumPy arrays
(terms, IDF, weights, neighbour index), read with ``allow_pickle=False``: loading a model
file, whoever made it, cannot run code. ``metadata.json`` records the format version and the
size and sha256 of both files; loading checks them, then checks every array's type, shape
and index bounds before any of it is used.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import json
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from classifier.calibration import Calibration
from classifier.config import TrainingConfig, from_mapping
from classifier.errors import IncompatibleModelError
from classifier.features import Features, TermBlock
from classifier.linear import LinearWeights
from classifier.model import Prediction, Scorer, TopicClassifier
from classifier.names import LabelNames
from classifier.neighbours import NeighbourIndex
from classifier.stacking import Stacker
from classifier.thresholds import LEVELS, Thresholds

MODEL_FILE = "model.json"
ARRAYS_FILE = "arrays.npz"
META_FILE = "metadata.json"
FILES = (MODEL_FILE, ARRAYS_FILE)
FORMAT_VERSION = 4  # 3: the second level (stacker) and its arrays; 4: the labels' names
# what the last format with a pickled model left in a version folder
LEGACY_FILE = "model.joblib"
# the most an array of a model file may hold once read (bounds memory on a crafted file)
MAX_ARRAY_BYTES = 4 * 1024**3
_TERM_SEPARATOR = "\n"


@dataclass(frozen=True)
class LoadedModel:
    """A verified model with its metadata and where it came from."""

    model: TopicClassifier
    metadata: dict[str, Any]
    folder: Path

    @property
    def ref(self) -> str:
        return f"{self.metadata['name']}@{self.metadata['version']}"

    @property
    def labels(self) -> tuple[str, ...]:
        return self.model.labels

    def predict(
        self,
        texts: Sequence[str],
        top_k: int | None = None,
        threshold: float | None = None,
        paragraphs: bool = False,
        checkpoint: Callable[[], None] | None = None,
    ) -> list[Prediction]:
        """``TopicClassifier.predict`` of this version."""
        return self.model.predict(
            texts, top_k=top_k, threshold=threshold, paragraphs=paragraphs, checkpoint=checkpoint
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON and flush it to disk (the caller renames the folder into place)."""
    with path.open("w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


# --- writing --------------------------------------------------------------------------------
def write(folder: Path, model: TopicClassifier, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Write the model and its metadata into ``folder``; return the metadata written."""
    description, arrays = _encode(model)
    write_json(folder / MODEL_FILE, description)
    with (folder / ARRAYS_FILE).open("wb") as f:
        np.savez_compressed(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    meta = {
        **metadata,
        "format_version": FORMAT_VERSION,
        "files": {
            name: {"bytes": (folder / name).stat().st_size, "sha256": sha256_file(folder / name)}
            for name in FILES
        },
    }
    write_json(folder / META_FILE, meta)
    return meta


def _encode(model: TopicClassifier) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    scorer = model.scorer
    arrays: dict[str, NDArray[Any]] = {}
    blocks = []
    for i, block in enumerate(scorer.features.blocks):
        if any(_TERM_SEPARATOR in t for t in block.terms):
            raise ValueError("a feature term holds a line break")
        blob = _TERM_SEPARATOR.join(block.terms).encode("utf-8")
        arrays[f"features.{i}.terms"] = np.frombuffer(blob, dtype=np.uint8)
        arrays[f"features.{i}.idf"] = np.asarray(block.idf, dtype=np.float32)
        blocks.append(
            {
                "analyzer": block.analyzer,
                "ngram_range": list(block.ngram_range),
                "sublinear_tf": block.sublinear_tf,
                "n_terms": block.n_features,
            }
        )
    _put_csr(arrays, "weights.coef", scorer.weights.coef)
    arrays["weights.intercept"] = scorer.weights.intercept
    for level, vector in model.thresholds.per_label.items():
        arrays[f"thresholds.{level}"] = np.asarray(vector, dtype=np.float32)
    neighbours = None
    if scorer.neighbours is not None:
        _put_csr(arrays, "neighbours.docs_t", scorer.neighbours.docs_t)
        _put_csr(arrays, "neighbours.tags", scorer.neighbours.tags)
        neighbours = {"k": scorer.neighbours.k, "weight": scorer.neighbour_weight}
    stacker = None
    if model.stacker is not None:
        st = model.stacker
        _put_csr(arrays, "stacker.coef", st.weights.coef)
        arrays["stacker.intercept"] = st.weights.intercept
        stacker = {
            "floor": st.floor,
            "mix": st.mix,
            "views": st.n_views,
            "candidates": st.candidates,
            "calibration": {"a": st.calibration.a, "b": st.calibration.b},
        }
    if model.names is not None:
        arrays["names.weight"] = np.asarray(model.names.weight, dtype=np.float32)
    description = {
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "labels": list(model.labels),
        "features": blocks,
        "weights": {"shape": list(scorer.weights.coef.shape)},
        "calibration": {"a": scorer.calibration.a, "b": scorer.calibration.b},
        "aggregation": scorer.aggregation,
        "neighbours": neighbours,
        "stacker": stacker,
        # the names' feature columns are made again from the labels at load (the text path
        # and the features are the model's): only each label's weight is stored
        "names": model.names is not None,
        "thresholds": {
            "level": dict(model.thresholds.level),
            "per_label": list(model.thresholds.per_label),
        },
    }
    return description, arrays


def _put_csr(arrays: dict[str, NDArray[Any]], name: str, m: sp.csr_matrix) -> None:
    m = sp.csr_matrix(m)
    arrays[f"{name}.data"] = np.asarray(m.data, dtype=np.float32)
    arrays[f"{name}.indices"] = np.asarray(m.indices, dtype=np.int32)
    arrays[f"{name}.indptr"] = np.asarray(m.indptr, dtype=np.int64)
    arrays[f"{name}.shape"] = np.asarray(m.shape, dtype=np.int64)


# --- verifying and loading ------------------------------------------------------------------
# The most a model's JSON files may hold (metadata.json, model.json)
MAX_JSON_BYTES = 64 * 1024**2
# The most arrays.npz may hold (compressed; each array is bounded again once read)
MAX_ARRAYS_FILE_BYTES = 4 * 1024**3


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, which must be a regular file of at most ``limit`` bytes.

    Opened without following a symbolic link (``O_NOFOLLOW``: a version folder resolved
    inside the models folder cannot lead out of it through one of its files) and without
    blocking (``O_NONBLOCK``: a FIFO is refused, not waited on).
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise IncompatibleModelError(f"{path}: a symbolic link; refusing to load") from None
        raise IncompatibleModelError(f"{path}: cannot open: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise IncompatibleModelError(f"{path}: not a regular file; refusing to load")
        if st.st_size > limit:
            raise IncompatibleModelError(f"{path}: {st.st_size} bytes, over {limit}")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise IncompatibleModelError(f"{path}: over {limit} bytes")
    return data


# What metadata.json must hold (REQUIRED) and the type of what it may hold (OPTIONAL), each
# as a type, a list of one type (every item), or a dict of such (fields of an object).
# ``float`` takes integers too; ``int`` never takes ``true``.
_FILE_RECORD = {"bytes": int, "sha256": str}
REQUIRED: dict[str, Any] = {
    "name": str,
    "version": str,
    "format_version": int,
    "files": dict.fromkeys(FILES, _FILE_RECORD),
}
OPTIONAL: dict[str, Any] = {
    "saved_ns": int,
    "created_at": str,
    "labels": [str],
    "versions": dict,
    "corpus": dict,
    "config": dict,
    "tokenizer": dict,
    "decision": dict,
    "metrics": dict,
    "training": dict,
    "tuning": dict,
}


def _type_error(value: Any, spec: Any) -> str | None:
    """What is wrong with ``value`` against ``spec`` (None when it fits)."""
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return f"must be an object, not {_json_type(value)}"
        for key, sub in spec.items():
            if key not in value:
                return f"lacks '{key}'"
            why = _type_error(value[key], sub)
            if why is not None:
                return f"'{key}' {why}"
        return None
    if isinstance(spec, list):
        if not isinstance(value, list):
            return f"must be a list, not {_json_type(value)}"
        for i, item in enumerate(value):
            why = _type_error(item, spec[0])
            if why is not None:
                return f"item {i} {why}"
        return None
    ok = (
        isinstance(value, (int, float)) and not isinstance(value, bool)
        if spec is float
        else isinstance(value, spec) and not (spec is int and isinstance(value, bool))
    )
    return None if ok else f"must be {_json_type(spec)}, not {_json_type(value)}"


def _json_type(value: Any) -> str:
    kind = value if isinstance(value, type) else type(value)
    names = {dict: "an object", list: "a list", str: "a string", bool: "true or false"}
    names |= {int: "an integer", float: "a number", type(None): "null"}
    return names.get(kind, kind.__name__)


def check_metadata(meta: dict[str, Any], where: Path) -> None:
    """Refuse metadata that lacks a required field or holds one of the wrong type."""
    for fields, required in ((REQUIRED, True), (OPTIONAL, False)):
        for key, spec in fields.items():
            if key not in meta:
                if required:
                    raise IncompatibleModelError(f"{where}: metadata lacks the field '{key}'")
                continue
            why = _type_error(meta[key], spec)
            if why is not None:
                raise IncompatibleModelError(f"{where}: metadata field '{key}' {why}")


def read_metadata(folder: Path) -> dict[str, Any]:
    path = folder / META_FILE
    try:
        meta = json.loads(read_regular(path, MAX_JSON_BYTES).decode("utf-8"))
    except ValueError as exc:
        raise IncompatibleModelError(f"{path}: unreadable metadata: {exc}") from None
    if not isinstance(meta, dict):
        raise IncompatibleModelError(f"{path}: metadata is not a JSON object")
    return meta


def is_complete(folder: Path) -> bool:
    """Whether a folder holds a whole version: metadata and the files of its format, each a
    regular file and not a symbolic link (a version of the older pickle format counts, so
    that loading it can say to retrain)."""
    if not _regular(folder / META_FILE):
        return False
    return all(_regular(folder / f) for f in FILES) or _regular(folder / LEGACY_FILE)


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _check_format(folder: Path, meta: dict[str, Any]) -> None:
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        if version == 1 or (folder / LEGACY_FILE).exists():
            raise IncompatibleModelError(
                f"{folder}: saved in model format 1 (a pickle), which this version of tagger "
                "no longer loads; retrain it with `tagger train`"
            )
        if (
            isinstance(version, int)
            and not isinstance(version, bool)
            and 1 < version < FORMAT_VERSION
        ):
            raise IncompatibleModelError(
                f"{folder}: saved in model format version {version} by an older tagger, which "
                f"this version (format {FORMAT_VERSION}) no longer loads; retrain it with "
                "`tagger train`"
            )
        raise IncompatibleModelError(
            f"{folder}: format version {version!r} is not {FORMAT_VERSION}; retrain it"
        )


def _verified(folder: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The metadata (format and schema checked) and each file's bytes (sha256 checked),
    every file read once: what is checked is what is used."""
    meta = read_metadata(folder)
    _check_format(folder, meta)
    check_metadata(meta, folder / META_FILE)
    data = {}
    for name in FILES:
        limit = MAX_ARRAYS_FILE_BYTES if name == ARRAYS_FILE else MAX_JSON_BYTES
        data[name] = read_regular(folder / name, limit)
    _check_files(folder, meta, data)
    return meta, data


def _check_files(folder: Path, meta: dict[str, Any], data: Mapping[str, bytes]) -> None:
    _check_format(folder, meta)
    check_metadata(meta, folder / META_FILE)
    for name in FILES:
        expected = meta["files"][name]["sha256"]
        actual = hashlib.sha256(data[name]).hexdigest()
        if expected != actual:
            raise IncompatibleModelError(
                f"{folder / name}: sha256 {actual[:12]}… does not match metadata "
                f"{expected[:12]}…; refusing to load"
            )


def read_verified(folder: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A version's metadata and the bytes of its files, verified as ``load`` verifies them:
    what ``load_files`` takes (to load the same version where the folder is not, e.g. on a
    cluster's workers)."""
    return _verified(folder)


def verify(folder: Path) -> dict[str, Any]:
    """Check the format version, the metadata's schema and every file's sha256 (each a
    regular file, no symbolic link); return the metadata."""
    return _verified(folder)[0]


def load(folder: Path) -> LoadedModel:
    """Verify a version folder and build its classifier from the bytes verified."""
    meta, data = _verified(folder)
    return _build(meta, data, folder)


def load_files(meta: dict[str, Any], data: Mapping[str, bytes], folder: Path) -> LoadedModel:
    """Load the version ``read_verified(folder)`` read, checked again (format, schema, every
    file's sha256) wherever this runs."""
    _check_files(folder, meta, data)
    return _build(meta, dict(data), folder)


def _build(meta: dict[str, Any], data: dict[str, bytes], folder: Path) -> LoadedModel:
    try:
        description = json.loads(data[MODEL_FILE].decode("utf-8"))
        with np.load(io.BytesIO(data.pop(ARRAYS_FILE)), allow_pickle=False) as npz:
            arrays = _read_arrays(npz)
        model = _decode(description, arrays)
    except IncompatibleModelError:
        raise
    except Exception as exc:  # a damaged or crafted file can fail in many ways: one message
        raise IncompatibleModelError(f"{folder}: cannot load the model: {exc}") from None
    return LoadedModel(model, meta, folder)


def _read_arrays(npz: Any) -> dict[str, NDArray[Any]]:
    arrays = {}
    for name in npz.files:
        size = npz.zip.getinfo(f"{name}.npy").file_size
        if size > MAX_ARRAY_BYTES:
            raise IncompatibleModelError(f"array {name} holds {size} bytes, over the limit")
        array = npz[name]
        if array.dtype.kind not in "biuf":
            raise IncompatibleModelError(f"array {name} is not numeric ({array.dtype})")
        arrays[name] = array
    return arrays


def _decode(d: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> TopicClassifier:
    # every setting, none defaulted: a setting added since (how text is normalised, say)
    # would otherwise take its new default and silently change what the model computes
    known = {f.name for f in dataclasses.fields(TrainingConfig)}
    if not isinstance(d.get("config"), dict) or set(d["config"]) != known:
        missing = sorted(known - set(d.get("config") or {}))
        raise IncompatibleModelError(
            f"model made by another version of tagger (settings {', '.join(missing)} not "
            "recorded); retrain it"
        )
    cfg = from_mapping(d["config"], "model.json config")
    labels = tuple(d["labels"])
    if not all(isinstance(t, str) for t in labels):
        raise ValueError("labels must be strings")
    blocks = []
    for i, spec in enumerate(d["features"]):
        blob = _array(arrays, f"features.{i}.terms", np.uint8).tobytes().decode("utf-8")
        terms = tuple(blob.split(_TERM_SEPARATOR)) if blob else ()
        idf = _array(arrays, f"features.{i}.idf", np.float32)
        if len(terms) != spec["n_terms"] or len(idf) != len(terms):
            raise ValueError(f"feature block {i}: {len(terms)} terms, {len(idf)} IDF values")
        blocks.append(
            TermBlock(
                spec["analyzer"], tuple(spec["ngram_range"]), terms, idf, bool(spec["sublinear_tf"])
            )
        )
    features = Features(tuple(blocks))
    coef = _get_csr(arrays, "weights.coef")
    if coef.shape != (features.n_features, len(labels)):
        raise ValueError(f"weights of shape {coef.shape} for {features.n_features} features")
    weights = LinearWeights(coef, _array(arrays, "weights.intercept", np.float32))
    neighbours, weight = None, 0.0
    if d["neighbours"] is not None:
        neighbours = NeighbourIndex(
            _get_csr(arrays, "neighbours.docs_t"),
            _get_csr(arrays, "neighbours.tags"),
            int(d["neighbours"]["k"]),
        )
        weight = float(d["neighbours"]["weight"])
    calibration = Calibration(float(d["calibration"]["a"]), float(d["calibration"]["b"]))
    scorer = Scorer(features, weights, calibration, neighbours, weight, d["aggregation"])
    level = {k: float(d["thresholds"]["level"][k]) for k in LEVELS}
    per_label = {
        k: _array(arrays, f"thresholds.{k}", np.float32, (len(labels),))
        for k in d["thresholds"]["per_label"]
    }
    stacker = None
    if d["stacker"] is not None:
        st = d["stacker"]
        n_views, candidates = int(st["views"]), int(st["candidates"])
        if n_views not in (1, 3) or candidates < 1:
            raise ValueError(f"stacker with {n_views} views and {candidates} candidates")
        coef2 = _get_csr(arrays, "stacker.coef")
        if coef2.shape != (n_views * len(labels), len(labels)):
            raise ValueError(f"level-2 weights of shape {coef2.shape} for {len(labels)} labels")
        intercept2 = _array(arrays, "stacker.intercept", np.float32, (len(labels),))
        stacker = Stacker(
            LinearWeights(coef2, intercept2),
            float(st["floor"]),
            float(st["mix"]),
            n_views,
            candidates,
            Calibration(float(st["calibration"]["a"]), float(st["calibration"]["b"])),
        )
    names = None
    if d["names"] is not None and type(d["names"]) is not bool:
        raise ValueError("names: expected true or false")
    if d["names"]:
        weight = _array(arrays, "names.weight", np.float32, (len(labels),))
        if not np.all(np.isfinite(weight)) or np.any(weight < 0):
            raise ValueError("array names.weight: weights must be finite and >= 0")
        names = LabelNames.of(labels, cfg.text, features, weight)
    return TopicClassifier(cfg, labels, scorer, Thresholds(level, per_label), stacker, names)


def _array(
    arrays: dict[str, NDArray[Any]], name: str, dtype: type, shape: tuple[int, ...] | None = None
) -> NDArray[Any]:
    a = arrays[name]
    if a.dtype != dtype or a.ndim != 1 or (shape is not None and a.shape != shape):
        raise ValueError(f"array {name}: {a.dtype}{list(a.shape)}, expected a vector of {dtype}")
    return a


def _get_csr(arrays: dict[str, NDArray[Any]], name: str) -> sp.csr_matrix:
    shape = tuple(int(n) for n in _array(arrays, f"{name}.shape", np.int64, (2,)))
    m = sp.csr_matrix(
        (
            _array(arrays, f"{name}.data", np.float32),
            _array(arrays, f"{name}.indices", np.int32),
            _array(arrays, f"{name}.indptr", np.int64),
        ),
        shape=shape,
    )
    m.check_format(full_check=True)  # index bounds: a crafted file must not read out of range
    return m
