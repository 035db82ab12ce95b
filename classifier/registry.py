"""The model registry: ``<models>/<name>/<version>/``, one folder a version.

Finds, lists and resolves versions and publishes new ones: a version is written in a hidden
temporary folder and renamed into place only when complete, so a killed run never leaves a
version that is listed or loaded. What a version folder holds, and how it is verified and
loaded, is ``classifier.artifact``'s business.

Which version is served is recorded per name in ``<models>/<name>/promotion.json`` (written
to a temporary file, flushed and renamed over the old one, under a lock): ``latest`` is the
version it names, the promoted one; ``newest`` is the newest complete version, promoted or
not. A name without that record (made before it existed, or only through ``save_model``)
serves its newest version. The record also keeps each decision: why a version was promoted
or stays a candidate, and the scores the promotion gate compared (``training.gate``).

Names and versions are ASCII only (no other script's digits or letters, no full-width or
look-alike characters), and a name or version folder that is a symlink leading outside the
models folder is never listed, never ``latest`` and never resolved; one leading inside it
(an alias) is.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from classifier import artifact
from classifier.artifact import META_FILE, LoadedModel
from classifier.errors import IncompatibleModelError, InvalidModelRefError, ModelNotFoundError

LATEST = "latest"  # the served (promoted) version
NEWEST = "newest"  # the newest complete version, promoted or not
PROMOTION_FILE = "promotion.json"
PROMOTION_FORMAT = 1
MAX_HISTORY = 200
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
    """A validated ``NAME[@VERSION]`` reference (version ``latest``, the served one, by
    default; ``newest`` is the newest saved)."""

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
        if version not in (LATEST, NEWEST) and not valid_version(version):
            raise InvalidModelRefError(
                f"invalid model version {version!r}: expected 'latest', 'newest' or "
                "YYYYMMDD-HHMMSS-xxxxxxxx"
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
    keyword = ref.version in (LATEST, NEWEST)
    if ref.version in outside or (keyword and not found and outside):
        raise InvalidModelRefError(f"model {ref} resolves outside {models_dir}")
    served = read_promotion(parent).get("served") if ref.version == LATEST else None
    if keyword and not found:
        raise ModelNotFoundError(f"no trained version of model {ref.name!r} in {models_dir}")
    if served is not None:
        if served not in found:
            raise ModelNotFoundError(
                f"the served version {served} of model {ref.name!r} is missing from "
                f"{models_dir}; serve another with `tagger promote {ref.name}@VERSION`"
            )
        version = served
    elif keyword:
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
    """Metadata of every complete version under ``models_dir``, by name then version, each
    with its ``promotion`` status (served, candidate or retired) and why.

    A version whose metadata cannot be read is listed with an ``error`` instead.
    """
    root = Path(models_dir)
    if not root.is_dir():
        return
    real = root.resolve()
    names = (p for p in root.iterdir() if valid_name(p.name) and p.is_dir() and _inside(p, real))
    for parent in sorted(names):
        found = versions(parent, real)
        try:
            status = statuses(root, parent.name, found)
        except IncompatibleModelError as exc:
            status = dict.fromkeys(found, {"status": "unknown", "reason": str(exc), "by": ""})
        for version in found:
            try:
                meta = artifact.read_metadata(parent / version)
            except IncompatibleModelError as exc:
                meta = {"name": parent.name, "version": version, "error": str(exc)}
            yield meta | {"promotion": status[version]}


# --- which version is served: the promotion record -------------------------------------------
def read_promotion(parent: Path) -> dict[str, Any]:
    """The promotion record of the model folder ``parent`` ({} when it has none)."""
    path = parent / PROMOTION_FILE
    if not (path.is_symlink() or path.exists()):
        return {}
    try:
        record = json.loads(artifact.read_regular(path, artifact.MAX_JSON_BYTES))
    except ValueError as exc:
        raise IncompatibleModelError(f"{path}: unreadable promotion record: {exc}") from None
    served = record.get("served") if isinstance(record, dict) else None
    if not isinstance(record, dict) or not (served is None or valid_version(str(served))):
        raise IncompatibleModelError(f"{path}: not a promotion record")
    if not isinstance(record.get("versions", {}), dict):
        raise IncompatibleModelError(f"{path}: 'versions' is not an object")
    return record


def _model_folder(models_dir: Path, name: str) -> Path:
    ref = ModelRef.parse(name)
    parent = Path(models_dir) / ref.name
    if (parent.is_symlink() or parent.exists()) and not _inside(parent, Path(models_dir).resolve()):
        raise InvalidModelRefError(f"model {ref.name!r} resolves outside {models_dir}")
    return parent


@contextlib.contextmanager
def promotion_lock(models_dir: Path, name: str) -> Iterator[Path]:
    """Hold the model's promotion lock (one decision at a time); yield the model folder.

    An advisory ``flock`` on the model folder itself (no lock file): released when the holder
    ends, however it ends."""
    parent = _model_folder(models_dir, name)
    parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield parent
    finally:
        os.close(fd)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def record_decision(
    parent: Path,
    version: str,
    *,
    promoted: bool,
    by: str,
    reason: str,
    gate: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Record a decision on ``version`` (and serve it if ``promoted``); return the record.

    Call it holding ``promotion_lock``. Written to a temporary file, flushed and renamed over
    the record: a killed run leaves the old record, and with it what is served."""
    if not valid_version(version):
        raise InvalidModelRefError(f"invalid model version {version!r}")
    record = read_promotion(parent) or {"format": PROMOTION_FORMAT, "name": parent.name}
    entry: dict[str, Any] = {"decision": "promoted" if promoted else "refused", "by": by}
    entry |= {"reason": reason, "at": _now()} | ({"gate": dict(gate)} if gate else {})
    record.setdefault("versions", {})[version] = entry
    if promoted:
        previous = record.get("served")
        record["served"] = version
        history = record.setdefault("history", [])
        history.append({"at": entry["at"], "served": version, "previous": previous, "by": by})
        del history[:-MAX_HISTORY]
    tmp = parent / f".{PROMOTION_FILE}.{os.getpid()}.tmp"
    try:
        artifact.write_json(tmp, record)
        os.replace(tmp, parent / PROMOTION_FILE)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(parent)
    return record


def served_version(models_dir: Path, name: str) -> str | None:
    """The version the promotion record of ``name`` serves (None when it has no record)."""
    served = read_promotion(_model_folder(models_dir, name)).get("served")
    return str(served) if served is not None else None


def served_ref(models_dir: Path, name: str) -> str | None:
    """``NAME@VERSION`` of what the promotion record of ``name`` serves, if it has one and
    the version is complete (what ``tagger serve`` follows); None otherwise."""
    ref = ModelRef.parse(name)
    if served_version(models_dir, ref.name) is None:
        return None
    folder = resolve(models_dir, ModelRef(ref.name, LATEST))
    return f"{ref.name}@{folder.name}"


def adopt_newest(models_dir: Path, name: str) -> str | None:
    """Give a name that has versions but no promotion record one serving its newest version
    (what it served until now), so that saving a version does not change what is served."""
    with promotion_lock(models_dir, name) as parent:
        if read_promotion(parent).get("served") is not None:
            return None
        found = versions(parent, Path(models_dir).resolve())
        if not found:
            return None
        reason = "the newest version when promotion records began"
        record_decision(parent, found[-1], promoted=True, by="adopted", reason=reason)
        return found[-1]


def promote(models_dir: Path, ref: str | ModelRef, reason: str = "promoted by hand") -> str:
    """Serve version ``ref`` (verified first) whatever the gate said; return NAME@VERSION."""
    ref = ref if isinstance(ref, ModelRef) else ModelRef.parse(ref)
    if ref.version in (LATEST, NEWEST):
        raise InvalidModelRefError(f"promote takes NAME@VERSION, not {ref}")
    folder = verify(models_dir, ref)
    with promotion_lock(models_dir, ref.name) as parent:
        record_decision(parent, folder.name, promoted=True, by="override", reason=reason)
    return f"{ref.name}@{folder.name}"


def statuses(models_dir: Path, name: str, found: list[str]) -> dict[str, dict[str, str]]:
    """Each version's status (``served``, ``candidate``, ``retired``) and why."""
    record = read_promotion(_model_folder(models_dir, name))
    served = record.get("served") or (found[-1] if found else None)
    out = {}
    for version in found:
        entry = record.get("versions", {}).get(version) or {}
        why = str(entry.get("reason") or "no gate decision recorded (saved outside tagger train)")
        if not record:
            why = "newest version (no promotion record)"
        if version == served:
            status = "served"
        elif entry.get("decision") == "promoted":
            status, why = "retired", f"served before; {why}"
        else:
            status = "candidate"
        out[version] = {"status": status, "reason": why, "by": str(entry.get("by", ""))}
    return out


def version_card(models_dir: Path, ref: str | ModelRef) -> str:
    """The model card (Markdown) of a version, with its promotion status."""
    from classifier.card import model_card

    folder = verify(models_dir, ref)
    status = statuses(models_dir, folder.parent.name, versions(folder.parent))
    return model_card(artifact.read_metadata(folder), status.get(folder.name))
