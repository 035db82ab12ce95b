"""The model registry: ``<models>/<name>/<version>/{model.joblib, metadata.json}``.

A version is written in a hidden temporary folder and renamed into place only when complete,
so a killed run never leaves a version that is listed or loaded. Loading checks the name and
version (no path outside the models folder), the format version and the sha256 of
``model.joblib`` before unpickling it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from classifier.errors import (
    IncompatibleModelError,
    InvalidModelRefError,
    ModelNotFoundError,
)

MODEL_FILE = "model.joblib"
META_FILE = "metadata.json"
FORMAT_VERSION = 1
LATEST = "latest"
DEFAULT_NAME = "default"
MODELS_DIR_ENV = "TAGGER_MODELS_DIR"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_VERSION = re.compile(r"\d{8}-\d{6}-[0-9a-f]{8}(?:-\d+)?")


@dataclass(frozen=True)
class ModelRef:
    """A validated ``NAME[@VERSION]`` reference (version ``latest`` by default)."""

    name: str
    version: str = LATEST

    @classmethod
    def parse(cls, ref: str) -> ModelRef:
        name, _, version = ref.partition("@")
        name, version = name or DEFAULT_NAME, version or LATEST
        if not _NAME.fullmatch(name) or name.startswith(".") or ".." in name:
            raise InvalidModelRefError(
                f"invalid model name {name!r}: use letters, digits, '.', '_' and '-'"
            )
        if version != LATEST and not _VERSION.fullmatch(version):
            raise InvalidModelRefError(
                f"invalid model version {version!r}: expected 'latest' or YYYYMMDD-HHMMSS-xxxxxxxx"
            )
        return cls(name, version)

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


def default_models_dir() -> Path:
    """``$TAGGER_MODELS_DIR`` when set, else ``models``."""
    return Path(os.environ.get(MODELS_DIR_ENV) or "models")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with path.open("w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=2, sort_keys=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def new_version(corpus_sha256: str, now: datetime | None = None) -> str:
    """A sortable version id: UTC time of creation and the corpus hash prefix."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{corpus_sha256[:8]}"


def save_model(
    models_dir: Path, name: str, model: object, metadata: dict[str, Any], version: str
) -> Path:
    """Write a new version atomically and return its folder; never touch other versions."""
    import joblib

    ref = ModelRef.parse(f"{name}@{version}")
    parent = Path(models_dir) / ref.name
    parent.mkdir(parents=True, exist_ok=True)
    _sweep_partials(parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".partial-{version}-{os.getpid()}-", dir=parent))
    try:
        model_path = tmp / MODEL_FILE
        with model_path.open("wb") as f:
            joblib.dump(model, f, compress=3)
            f.flush()
            os.fsync(f.fileno())
        meta = {
            **metadata,
            "format_version": FORMAT_VERSION,
            "name": ref.name,
            "version": version,
            "saved_ns": time.time_ns(),
            "model_file": {
                "name": MODEL_FILE,
                "bytes": model_path.stat().st_size,
                "sha256": sha256_file(model_path),
            },
        }
        _write_json(tmp / META_FILE, meta)
        _fsync_dir(tmp)
        final = parent / version
        suffix = 1
        while True:
            try:
                os.rename(tmp, final)  # atomic; fails if the target exists and is not empty
                break
            except OSError:
                if not final.exists():
                    raise
                suffix += 1
                final = parent / f"{version}-{suffix}"
                meta["version"] = final.name
                _write_json(tmp / META_FILE, meta)
        _fsync_dir(parent)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _sweep_partials(parent: Path) -> None:
    """Remove partial folders left by training runs that were killed (their pid is gone)."""
    for folder in parent.glob(".partial-*"):
        parts = folder.name.split("-")
        pid = int(parts[-2]) if len(parts) >= 2 and parts[-2].isdigit() else None
        if pid is None or pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            pass  # alive, another user's


def _versions(parent: Path) -> list[str]:
    """Complete versions of one model, oldest first (hidden partial folders are ignored).

    Ordered by the second in the name, then by when they were saved (the hash part of two
    names from the same second says nothing about which came first).
    """
    if not parent.is_dir():
        return []
    complete = [
        p
        for p in parent.iterdir()
        if _VERSION.fullmatch(p.name) and (p / META_FILE).is_file() and (p / MODEL_FILE).is_file()
    ]
    return [p.name for p in sorted(complete, key=_order)]


def _order(folder: Path) -> tuple[str, int, str]:
    try:
        saved = int(json.loads((folder / META_FILE).read_text(encoding="utf-8"))["saved_ns"])
    except (OSError, ValueError, KeyError, TypeError):
        saved = 0
    return folder.name[:15], saved, folder.name


def resolve(models_dir: Path, ref: str | ModelRef) -> Path:
    """Folder of the referenced version, which must lie inside ``models_dir``."""
    ref = ref if isinstance(ref, ModelRef) else ModelRef.parse(ref)
    root = Path(models_dir).resolve()
    parent = root / ref.name
    versions = _versions(parent)
    if ref.version == LATEST:
        if not versions:
            raise ModelNotFoundError(f"no trained version of model {ref.name!r} in {models_dir}")
        version = versions[-1]
    elif ref.version in versions:
        version = ref.version
    else:
        raise ModelNotFoundError(f"model {ref} not found in {models_dir}")
    folder = (parent / version).resolve()
    if not folder.is_relative_to(root):
        raise InvalidModelRefError(f"model {ref} resolves outside {models_dir}")
    return folder


def read_metadata(folder: Path) -> dict[str, Any]:
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IncompatibleModelError(f"{folder / META_FILE}: unreadable metadata: {exc}") from None
    if not isinstance(meta, dict):
        raise IncompatibleModelError(f"{folder / META_FILE}: metadata is not a JSON object")
    return meta


def verify(folder: Path) -> dict[str, Any]:
    """Check format version and checksum of a version folder; return its metadata."""
    meta = read_metadata(folder)
    if meta.get("format_version") != FORMAT_VERSION:
        raise IncompatibleModelError(
            f"{folder}: format version {meta.get('format_version')!r} is not {FORMAT_VERSION}"
        )
    expected = (meta.get("model_file") or {}).get("sha256")
    actual = sha256_file(folder / MODEL_FILE)
    if expected != actual:
        raise IncompatibleModelError(
            f"{folder / MODEL_FILE}: sha256 {actual[:12]}… does not match metadata "
            f"{str(expected)[:12]}…; refusing to load"
        )
    want = (meta.get("versions") or {}).get("scikit-learn", "")
    have = _sklearn_version()
    if want.split(".")[:2] != have.split(".")[:2]:
        raise IncompatibleModelError(
            f"{folder}: trained with scikit-learn {want}, this is {have}; retrain"
        )
    return meta


def _sklearn_version() -> str:
    """The installed scikit-learn version, read without importing it.

    ``tagger serve`` verifies the model in the process that only supervises the workers;
    importing scikit-learn there would cost it about 100 MB for a version string.
    """
    from importlib.metadata import version

    return version("scikit-learn")


@dataclass(frozen=True)
class LoadedModel:
    """A verified model with its metadata and where it came from."""

    model: Any
    metadata: dict[str, Any]
    folder: Path

    @property
    def ref(self) -> str:
        return f"{self.metadata['name']}@{self.metadata['version']}"


def load_model(models_dir: Path, ref: str | ModelRef = DEFAULT_NAME) -> LoadedModel:
    """Resolve, verify and unpickle a model version."""
    import joblib

    folder = resolve(models_dir, ref)
    meta = verify(folder)
    try:
        model = joblib.load(folder / MODEL_FILE)
    except Exception as exc:  # a corrupt pickle can raise almost anything
        raise IncompatibleModelError(f"{folder / MODEL_FILE}: cannot load: {exc}") from None
    return LoadedModel(model, meta, folder)


def list_models(models_dir: Path) -> Iterator[dict[str, Any]]:
    """Metadata of every complete version under ``models_dir``, by name then version.

    A version whose metadata cannot be read is listed with an ``error`` instead.
    """
    root = Path(models_dir)
    if not root.is_dir():
        return
    for parent in sorted(p for p in root.iterdir() if p.is_dir() and _NAME.fullmatch(p.name)):
        for version in _versions(parent):
            try:
                yield read_metadata(parent / version)
            except IncompatibleModelError as exc:
                yield {"name": parent.name, "version": version, "error": str(exc)}
