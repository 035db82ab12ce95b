"""One model version on disk: ``model.json`` + ``arrays.npz`` + ``metadata.json``.

The model is JSON (configuration, labels, thresholds, how features are made) and NumPy arrays
(terms, IDF, weights, neighbour index), read with ``allow_pickle=False``: loading a model
file, whoever made it, cannot run code. ``metadata.json`` records the format version and the
size and sha256 of both files; loading checks them, then checks every array's type, shape
and index bounds before any of it is used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
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
from classifier.neighbours import NeighbourIndex
from classifier.thresholds import LEVELS, Thresholds

MODEL_FILE = "model.json"
ARRAYS_FILE = "arrays.npz"
META_FILE = "metadata.json"
FILES = (MODEL_FILE, ARRAYS_FILE)
FORMAT_VERSION = 2
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
    ) -> list[Prediction]:
        """``TopicClassifier.predict`` of this version."""
        return self.model.predict(texts, top_k=top_k, threshold=threshold, paragraphs=paragraphs)


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
    description = {
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "labels": list(model.labels),
        "features": blocks,
        "weights": {"shape": list(scorer.weights.coef.shape)},
        "calibration": {"a": scorer.calibration.a, "b": scorer.calibration.b},
        "aggregation": scorer.aggregation,
        "neighbours": neighbours,
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
def read_metadata(folder: Path) -> dict[str, Any]:
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IncompatibleModelError(f"{folder / META_FILE}: unreadable metadata: {exc}") from None
    if not isinstance(meta, dict):
        raise IncompatibleModelError(f"{folder / META_FILE}: metadata is not a JSON object")
    return meta


def is_complete(folder: Path) -> bool:
    """Whether a folder holds a whole version: metadata and the files of its format (a version
    of the older pickle format counts, so that loading it can say to retrain)."""
    if not (folder / META_FILE).is_file():
        return False
    return all((folder / f).is_file() for f in FILES) or (folder / LEGACY_FILE).is_file()


def verify(folder: Path) -> dict[str, Any]:
    """Check the format version and every file's size and sha256; return the metadata."""
    meta = read_metadata(folder)
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        if version == 1 or (folder / LEGACY_FILE).exists():
            raise IncompatibleModelError(
                f"{folder}: saved in model format 1 (a pickle), which this version of tagger "
                "no longer loads; retrain it with `tagger train`"
            )
        raise IncompatibleModelError(
            f"{folder}: format version {version!r} is not {FORMAT_VERSION}; retrain it"
        )
    files = meta.get("files")
    if not isinstance(files, dict):
        raise IncompatibleModelError(f"{folder / META_FILE}: no 'files' record")
    for name in FILES:
        expected = files.get(name) if isinstance(files.get(name), dict) else {}
        actual = sha256_file(folder / name)
        if expected.get("sha256") != actual:
            raise IncompatibleModelError(
                f"{folder / name}: sha256 {actual[:12]}… does not match metadata "
                f"{str(expected.get('sha256'))[:12]}…; refusing to load"
            )
    return meta


def load(folder: Path) -> LoadedModel:
    """Verify a version folder and build its classifier."""
    meta = verify(folder)
    try:
        description = json.loads((folder / MODEL_FILE).read_text(encoding="utf-8"))
        with np.load(folder / ARRAYS_FILE, allow_pickle=False) as npz:
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
    return TopicClassifier(cfg, labels, scorer, Thresholds(level, per_label))


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
