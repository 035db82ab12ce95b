"""Batch tagging into a folder: the input cut into partitions of documents, each tagged (on a
Dask cluster's workers, or in this process), written as one part file each with a manifest;
a re-run with the same model, inputs and options resumes, tagging only the parts missing.

The parts, concatenated in order, are exactly what ``tagger predict`` prints: each holds
``prediction_lines`` of its documents. Every write is atomic (a temporary file renamed into
place; the manifest after the part it records), so a crash leaves whole parts and a manifest
naming only those; a part is reused only if the manifest names it, its file has the
recorded sha256 and its documents (read again) have the recorded digest.

On a cluster, the client reads the input (a bounded number of partitions in flight) and
writes the parts: workers need no access to the input or output folders. The model's
verified files go to every worker once (``scatter(broadcast=True)``), and each worker
loads them once (``worker_model``, cached by the files' digest).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifier import artifact
from classifier.artifact import LoadedModel
from classifier.corpus import Document
from classifier.errors import ClassifierError
from classifier.progress import ProgressHook, no_progress
from training.report import prediction_lines

if TYPE_CHECKING:
    from distributed import Client

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
PART_DOCUMENTS = 1024
FORMATS = ("jsonl", "parquet")
# partitions handed to the cluster at a time, per worker thread: bounds the client's memory
IN_FLIGHT_PER_THREAD = 2


class BatchError(ClassifierError):
    """An output folder that cannot be written or resumed."""


@dataclass(frozen=True)
class ModelFiles:
    """A version's verified files, as sent to workers: what they load the model from."""

    metadata: dict[str, Any]
    files: dict[str, bytes]
    folder: str

    @property
    def digest(self) -> str:
        return "+".join(self.metadata["files"][n]["sha256"] for n in sorted(self.files))


@dataclass(frozen=True)
class Options:
    """What ``prediction_lines`` is asked, the same for every part."""

    top_k: int | None = None
    threshold: float | None = None
    paragraphs: bool = False
    explain: bool = False


@dataclass
class BatchResult:
    out: Path
    parts: int = 0
    reused: int = 0
    documents: int = 0
    tagged: list[str] = field(default_factory=list)  # names of the parts tagged in this run
    usage: dict[str, Any] = field(default_factory=dict)  # on a cluster: ``cluster.usage``


_WORKER_MODELS: dict[str, LoadedModel] = {}
_LOADS: list[str] = []  # the digest of each model this process loaded, in order


def worker_model(files: ModelFiles) -> LoadedModel:
    """The model of ``files``, loaded (and checked) once per process."""
    loaded = _WORKER_MODELS.get(files.digest)
    if loaded is None:
        _WORKER_MODELS.clear()  # one model at a time
        loaded = artifact.load_files(files.metadata, files.files, Path(files.folder))
        _WORKER_MODELS[files.digest] = loaded
        _LOADS.append(files.digest)
    return loaded


def tag_partition(model: ModelFiles | LoadedModel, docs: list[Document], options: Options) -> str:
    """The JSON lines of ``docs``, as ``tagger predict`` prints them."""
    loaded = worker_model(model) if isinstance(model, ModelFiles) else model
    return "".join(
        prediction_lines(
            loaded.model, docs, options.top_k, options.threshold, options.paragraphs,
            explain=options.explain,
        )
    )  # fmt: skip


def partitions(documents: Iterable[Document], size: int) -> Iterator[list[Document]]:
    chunk: list[Document] = []
    for doc in documents:
        chunk.append(doc)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def input_digest(docs: Sequence[Document]) -> str:
    h = hashlib.sha256()
    for d in docs:
        h.update(json.dumps([d.id, d.text], ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()


def part_name(index: int, fmt: str) -> str:
    return f"part-{index:05d}.{fmt}"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def encode_part(lines: str, fmt: str) -> bytes:
    """A part's file: the JSON lines as they are, or a Parquet table of their records."""
    if fmt == "jsonl":
        return lines.encode("utf-8")
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [json.loads(line) for line in lines.splitlines()]
    tag = pa.struct([("tag", pa.string()), ("score", pa.float64())])
    table = pa.table(
        {
            "id": pa.array([r["id"] for r in records], pa.string()),
            "tags": pa.array([r["tags"] for r in records], pa.list_(tag)),
            # anything else a record holds (--paragraphs, --explain), as its JSON line
            "record": pa.array(lines.splitlines(), pa.string()),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


class Manifest:
    """The manifest of an output folder: the run's identity and the parts written."""

    def __init__(self, out: Path, job: dict[str, Any]) -> None:
        self.path, self.job = out / MANIFEST, job
        self.parts: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                old = json.loads(self.path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise BatchError(f"{self.path}: unreadable manifest: {exc}") from None
            if old.get("job") != job:
                raise BatchError(
                    f"{out} holds the output of another run (other model, inputs or options); "
                    "give another --out or remove it"
                )
            self.parts = dict(old.get("parts", {}))
        elif any(out.iterdir()):
            raise BatchError(f"{out} is not empty and holds no {MANIFEST}; give another --out")

    def reusable(self, name: str, digest: str) -> bool:
        entry = self.parts.get(name)
        if entry is None or entry.get("input_sha256") != digest:
            return False
        path = self.path.parent / name
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        except OSError:
            return False

    def record(self, name: str, entry: dict[str, Any], complete: bool = False) -> None:
        self.parts[name] = entry
        self.save(complete)

    def save(self, complete: bool) -> None:
        body = {
            "format_version": MANIFEST_VERSION,
            "job": self.job,
            "complete": complete,
            "documents": sum(p["documents"] for p in self.parts.values()),
            "parts": dict(sorted(self.parts.items())),
        }
        _atomic_write(self.path, json.dumps(body, ensure_ascii=False, indent=2).encode())


def tag_to_folder(
    documents: Iterable[Document],
    out: Path,
    model: ModelFiles,
    job: dict[str, Any],
    options: Options,
    *,
    fmt: str = "jsonl",
    part_documents: int = PART_DOCUMENTS,
    client: Client | None = None,
    progress: ProgressHook = no_progress,
    on_part: Callable[[str], None] = lambda name: None,
) -> BatchResult:
    """Tag ``documents`` into parts under ``out`` (on ``client``'s workers, or here),
    reusing the parts a previous run of the same ``job`` finished."""
    if fmt not in FORMATS:
        raise BatchError(f"unknown output format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out.mkdir(parents=True, exist_ok=True)
    job = {**job, "format": fmt, "part_documents": part_documents}
    manifest = Manifest(out, job)
    result = BatchResult(out)
    advance = progress("tagging", None)
    stale = set(manifest.parts)
    pending: dict[int, tuple[str, str, int]] = {}

    def todo() -> Iterator[tuple[int, list[Document]]]:
        for index, docs in enumerate(partitions(documents, part_documents)):
            name, digest = part_name(index, fmt), input_digest(docs)
            stale.discard(name)
            result.parts += 1
            result.documents += len(docs)
            if manifest.reusable(name, digest):
                result.reused += 1
                advance(len(docs))
                continue
            pending[index] = (name, digest, len(docs))
            yield index, docs

    def write(index: int, lines: str) -> None:
        name, digest, n = pending.pop(index)
        data = encode_part(lines, fmt)
        _atomic_write(out / name, data)
        entry = {"documents": n, "input_sha256": digest, "sha256": hashlib.sha256(data).hexdigest()}
        manifest.record(name, entry)
        result.tagged.append(name)
        advance(n)
        on_part(name)

    if client is None:
        loaded = worker_model(model)
        for index, docs in todo():
            write(index, tag_partition(loaded, docs, options))
    else:
        from classifier.cluster import usage

        for index, lines in _on_cluster(client, model, todo(), options):
            write(index, lines)
        result.usage = usage(client)
    for name in stale:  # parts of a longer input than this one's: not part of this output
        manifest.parts.pop(name, None)
        (out / name).unlink(missing_ok=True)
    manifest.save(complete=True)
    return result


def _on_cluster(
    client: Client, model: ModelFiles, todo: Iterator[tuple[int, list[Document]]], options: Options
) -> Iterator[tuple[int, str]]:
    """Each partition's lines from the workers as they finish, a bounded number in flight."""
    from distributed import KilledWorker, as_completed

    from classifier.cluster import n_threads
    from classifier.errors import ClusterError

    files = client.scatter(model, broadcast=True, hash=False)
    window = IN_FLIGHT_PER_THREAD * n_threads(client)
    running = as_completed()
    index_of: dict[str, int] = {}
    try:
        for index, docs in todo:
            future = client.submit(tag_partition, files, docs, options, retries=1, pure=False)
            index_of[future.key] = index
            running.add(future)
            while running.count() >= window:
                done = next(running)
                yield index_of.pop(done.key), done.result()
        for done in running:
            yield index_of.pop(done.key), done.result()
    except KilledWorker as exc:
        raise ClusterError(f"a partition was lost with too many workers: {exc}") from None
    finally:
        client.cancel([files])


def predict_to_folder(
    sources: Sequence[str],
    out: Path,
    models_dir: Path,
    ref: str,
    options: Options,
    *,
    fmt: str = "jsonl",
    part_documents: int = PART_DOCUMENTS,
    cluster: str | None = None,
    progress: ProgressHook = no_progress,
    stdin: Any = None,
    on_part: Callable[[str], None] = lambda name: None,
) -> BatchResult:
    """``tagger predict SOURCES --out OUT [--cluster ADDRESS]``: the model ``ref`` verified
    here, then ``tag_to_folder`` (on the cluster when one is given)."""
    import sys
    from contextlib import nullcontext

    from classifier import registry
    from classifier.corpus import read_inputs

    if fmt not in FORMATS:
        raise BatchError(f"unknown output format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise BatchError(
                "--format parquet needs pyarrow: pip install 'tagger[cluster]'"
            ) from None
    folder = registry.verify(models_dir, ref)
    meta, data = artifact.read_verified(folder)
    model = ModelFiles(meta, data, str(folder))
    job = {
        "model": f"{meta['name']}@{meta['version']}",
        "model_sha256": model.digest,
        "inputs": list(sources),
        "options": dataclasses.asdict(options),
    }
    if cluster is not None:
        from classifier.cluster import connect

        connected: Any = connect(cluster)
    else:
        connected = nullcontext(None)
    with connected as client:
        documents = read_inputs(sources, stdin or sys.stdin)
        return tag_to_folder(
            documents, out, model, job, options, fmt=fmt, part_documents=part_documents,
            client=client, progress=progress, on_part=on_part,
        )  # fmt: skip
