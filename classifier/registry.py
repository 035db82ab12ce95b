"""The model registry: ``<models>/<name>/<version>/``, one folder a version.

Finds, lists and resolves versions (``latest`` is the newest complete one) and publishes new
ones: a version is written in a hidden temporary folder and renamed into place only when
complete, so a killed run never leaves a version that is listed or loaded. What a version
folder holds, and how it is verified and loaded, is ``classifier.artifact``'s business.

Names and versions are ASCII only (no other script's digits or letters, no full-width or
look-alike characters), and a name or version folder that is a symlink leading outside the
models folder is never listed, never ``latest`` and never resolved; one leading inside it
(an alias) is.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from classifier import artifact
from classifier.artifact import META_FILE, LoadedModel
from classifier.errors import IncompatibleModelError, InvalidModelRefError, ModelNotFoundError

LATEST = "latest"
DEFAULT_NAME = "default"
MODELS_DIR_ENV = "TAGGER_MODELS_DIR"
# ASCII only: ``\d`` and ``\w`` would also take other scripts' digits and letters
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)
_VERSION = re.compile(r"[0-9]{8}-[0-9]{6}-[0-9a-f]{8}(?:-[0-9]+)?", re.ASCII)


def valid_name(name: str) -> bool:
    """Whether ``name`` is a model name: ASCII letters, digits, '.', '_', '-', no '..'."""
    return _NAME.fullmatch(name) is not None and ".." not in name


def valid_version(version: str) -> bool:
    """Whether ``version`` is a version name, ``YYYYMMDD-HHMMSS-xxxxxxxx[-N]`` in ASCII."""
    return _VERSION.fullmatch(version) is not None


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path``, symlinks followed, lies inside ``root`` (a resolved folder)."""
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a symlink loop
        return False


@dataclass(frozen=True)
class ModelRef:
    """A validated ``NAME[@VERSION]`` reference (version ``latest`` by default)."""

    name: str
    version: str = LATEST

    @classmethod
    def parse(cls, ref: str) -> ModelRef:
        name, _, version = ref.partition("@")
        name, version = name or DEFAULT_NAME, version or LATEST
        if not valid_name(name):
            raise InvalidModelRefError(
                f"invalid model name {name!r}: use letters, digits, '.', '_' and '-'"
            )
        if version != LATEST and not valid_version(version):
            raise InvalidModelRefError(
                f"invalid model version {version!r}: expected 'latest' or YYYYMMDD-HHMMSS-xxxxxxxx"
            )
        return cls(name, version)

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


def default_models_dir() -> Path:
    """``$TAGGER_MODELS_DIR`` when set, else ``models``."""
    return Path(os.environ.get(MODELS_DIR_ENV) or "models")


def new_version(corpus_sha256: str, now: datetime | None = None) -> str:
    """A sortable version id: UTC time of creation and the corpus hash prefix."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{corpus_sha256[:8]}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(
    models_dir: Path, name: str, version: str, write: Callable[[Path], dict[str, Any]]
) -> Path:
    """Create version ``version`` of ``name`` atomically: ``write(folder)`` fills a hidden
    folder and returns the metadata it wrote, then the folder is renamed into place (with a
    ``-2``, ``-3``… suffix if that version exists). Other versions are never touched."""
    ref = ModelRef.parse(f"{name}@{version}")
    parent = Path(models_dir) / ref.name
    parent.mkdir(parents=True, exist_ok=True)
    if not _inside(parent, Path(models_dir).resolve()):
        raise InvalidModelRefError(f"model {ref.name!r} resolves outside {models_dir}")
    _sweep_partials(parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".partial-{version}-{os.getpid()}-", dir=parent))
    try:
        meta = {**write(tmp)}
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
                artifact.write_json(tmp / META_FILE, meta)
        _fsync_dir(parent)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_model(
    models_dir: Path, name: str, model: Any, metadata: dict[str, Any], version: str
) -> Path:
    """Publish ``model`` with ``metadata`` as a new version; return its folder."""
    stamp = {"name": name, "version": version, "saved_ns": time.time_ns()}
    return publish(
        models_dir, name, version, lambda folder: artifact.write(folder, model, metadata | stamp)
    )


def _sweep_partials(parent: Path) -> None:
    """Remove partial folders left by training runs that were killed (their pid is gone)."""
    for folder in parent.glob(".partial-*"):
        parts = folder.name.split("-")
        digits = parts[-2] if len(parts) >= 2 else ""
        # ASCII digits only: int() takes other scripts' digits, and '²'.isdigit() is true
        pid = int(digits) if digits.isascii() and digits.isdigit() and len(digits) < 10 else None
        if pid is None or pid == os.getpid() or folder.is_symlink():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (PermissionError, OverflowError):
            pass  # alive (another user's), or no pid at all


def versions(parent: Path, root: Path | None = None) -> list[str]:
    """Complete versions of one model, oldest first (hidden partial folders are ignored).

    Only folders with an ASCII version name lying inside the models folder ``root`` (the
    parent's parent by default) count: a symlink leading out of it is ignored. Ordered by the
    second in the name, then by when they were saved (the hash part of two names from the
    same second says nothing about which came first).
    """
    return [p.name for p in sorted(_scan(parent, root)[0], key=_order)]


def _scan(parent: Path, root: Path | None = None) -> tuple[list[Path], list[str]]:
    """The complete version folders of a model inside ``root``, and the names of version
    folders that lead outside it."""
    root = (Path(root) if root is not None else Path(os.path.abspath(parent)).parent).resolve()
    if not parent.is_dir() or not _inside(parent, root):
        return [], []
    complete, outside = [], []
    for p in parent.iterdir():
        if not valid_version(p.name):
            continue
        if not _inside(p, root):
            outside.append(p.name)
        elif artifact.is_complete(p):
            complete.append(p)
    return complete, sorted(outside)


def _order(folder: Path) -> tuple[str, int, str]:
    try:
        saved = int(json.loads((folder / META_FILE).read_text(encoding="utf-8"))["saved_ns"])
    except (OSError, ValueError, KeyError, TypeError, OverflowError, RecursionError):
        saved = 0
    return folder.name[:15], saved, folder.name


def resolve(models_dir: Path, ref: str | ModelRef) -> Path:
    """Folder of the referenced version, which must lie inside ``models_dir``."""
    ref = ref if isinstance(ref, ModelRef) else ModelRef.parse(ref)
    root = Path(models_dir).resolve()
    parent = root / ref.name
    if (parent.is_symlink() or parent.exists()) and not _inside(parent, root):
        raise InvalidModelRefError(f"model {ref.name!r} resolves outside {models_dir}")
    complete, outside = _scan(parent, root)
    found = [p.name for p in sorted(complete, key=_order)]
    if ref.version in outside or (ref.version == LATEST and not found and outside):
        raise InvalidModelRefError(f"model {ref} resolves outside {models_dir}")
    if ref.version == LATEST:
        if not found:
            raise ModelNotFoundError(f"no trained version of model {ref.name!r} in {models_dir}")
        version = found[-1]
    elif ref.version in found:
        version = ref.version
    else:
        raise ModelNotFoundError(f"model {ref} not found in {models_dir}")
    folder = (parent / version).resolve()
    if not folder.is_relative_to(root):
        raise InvalidModelRefError(f"model {ref} resolves outside {models_dir}")
    return folder


def _check_names(folder: Path, meta: dict[str, Any]) -> None:
    """A version's metadata names the folder it is in (else it would answer as another)."""
    named = (meta["name"], meta["version"])
    if named != (folder.parent.name, folder.name):
        raise IncompatibleModelError(
            f"{folder / META_FILE}: names {named[0]}@{named[1]}, not "
            f"{folder.parent.name}@{folder.name}; refusing to load"
        )


def verify(models_dir: Path, ref: str | ModelRef = DEFAULT_NAME) -> Path:
    """Resolve a reference and verify that version without loading it; return its folder."""
    folder = resolve(models_dir, ref)
    _check_names(folder, artifact.verify(folder))
    return folder


def load_model(models_dir: Path, ref: str | ModelRef = DEFAULT_NAME) -> LoadedModel:
    """Resolve a reference and load that version (verified)."""
    folder = resolve(models_dir, ref)
    loaded = artifact.load(folder)
    _check_names(folder, loaded.metadata)
    return loaded


def list_models(models_dir: Path) -> Iterator[dict[str, Any]]:
    """Metadata of every complete version under ``models_dir``, by name then version.

    A version whose metadata cannot be read is listed with an ``error`` instead.
    """
    root = Path(models_dir)
    if not root.is_dir():
        return
    real = root.resolve()
    names = (p for p in root.iterdir() if valid_name(p.name) and p.is_dir() and _inside(p, real))
    for parent in sorted(names):
        for version in versions(parent, real):
            try:
                yield artifact.read_metadata(parent / version)
            except IncompatibleModelError as exc:
                yield {"name": parent.name, "version": version, "error": str(exc)}
