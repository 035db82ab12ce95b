"""Batch tagging into a folder: parts + manifest equal to `tagger predict`'s lines, resumed
after a crash without redoing finished parts, on a Dask cluster too, and as Parquet."""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path

import pytest

from classifier.corpus import Document, read_inputs
from training.batch import MANIFEST, BatchError, Options, predict_to_folder
from training.report import prediction_lines

PARTS = 20  # documents a part: the sample's 72 documents make 4 parts


@pytest.fixture(scope="module")
def expected(trained, sample_dir: Path) -> str:
    """What `tagger predict SAMPLE` prints."""
    docs = read_inputs([str(sample_dir)], None)
    return "".join(prediction_lines(trained.model, docs, None, None, False))


def joined(out: Path) -> str:
    return "".join(p.read_text(encoding="utf-8") for p in sorted(out.glob("part-*.jsonl")))


def run(sample_dir: Path, models_dir: Path, out: Path, **kwargs):
    return predict_to_folder(
        [str(sample_dir)], out, models_dir, "default", Options(), part_documents=PARTS, **kwargs
    )


def test_parts_joined_are_the_lines_predict_prints(
    trained_models_dir: Path, sample_dir: Path, tmp_path: Path, expected: str
) -> None:
    result = run(sample_dir, trained_models_dir, tmp_path / "out")
    assert (result.parts, result.reused, result.documents) == (4, 0, 72)
    assert joined(tmp_path / "out") == expected
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["complete"] and manifest["documents"] == 72
    assert sorted(manifest["parts"]) == [f"part-{i:05d}.jsonl" for i in range(4)]
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_a_rerun_after_a_crash_redoes_only_the_parts_missing(
    trained_models_dir: Path, sample_dir: Path, tmp_path: Path, expected: str
) -> None:
    out = tmp_path / "out"

    def crash_after_two(name: str) -> None:
        if name == "part-00001.jsonl":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(sample_dir, trained_models_dir, out, on_part=crash_after_two)
    manifest = json.loads((out / MANIFEST).read_text())
    assert not manifest["complete"] and sorted(manifest["parts"]) == [
        "part-00000.jsonl",
        "part-00001.jsonl",
    ]
    (out / "part-00002.jsonl").write_text("a torn part the manifest never named\n")
    result = run(sample_dir, trained_models_dir, out)
    assert result.reused == 2 and sorted(result.tagged) == ["part-00002.jsonl", "part-00003.jsonl"]
    assert joined(out) == expected
    (out / "part-00001.jsonl").write_text("damaged\n")  # the sha256 no longer matches
    assert run(sample_dir, trained_models_dir, out).tagged == ["part-00001.jsonl"]
    assert joined(out) == expected


def test_another_run_never_writes_over_a_folder(
    trained_models_dir: Path, sample_dir: Path, tmp_path: Path
) -> None:
    run(sample_dir, trained_models_dir, tmp_path / "out")
    with pytest.raises(BatchError, match="holds the output of another run"):
        predict_to_folder(
            [str(sample_dir)], tmp_path / "out", trained_models_dir, "default", Options(top_k=1)
        )
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(BatchError, match="is not empty"):
        run(sample_dir, trained_models_dir, tmp_path / "other")


def test_on_a_cluster_each_worker_loads_the_model_once(
    dask_client, trained_models_dir: Path, sample_dir: Path, tmp_path: Path, expected: str
) -> None:
    address = dask_client.scheduler.address
    result = run(sample_dir, trained_models_dir, tmp_path / "out", cluster=address)
    assert result.parts == 4
    assert joined(tmp_path / "out") == expected
    assert len(result.usage["workers"]) == 2 and result.usage["client"]["peak_rss_mb"] > 0

    def loads() -> list[str]:
        from training import batch

        return list(batch._LOADS)

    # a worker that tagged loaded the model once, however many partitions it tagged
    held = [digests for digests in dask_client.run(loads).values() if digests]
    assert held and all(len(digests) == 1 for digests in held)


def test_parquet_parts_hold_the_same_records(
    trained_models_dir: Path, sample_dir: Path, tmp_path: Path, expected: str
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    run(sample_dir, trained_models_dir, tmp_path / "out", fmt="parquet")
    rows = [
        r
        for p in sorted((tmp_path / "out").glob("part-*.parquet"))
        for r in pq.read_table(p).to_pylist()
    ]
    records = [json.loads(line) for line in expected.splitlines()]
    assert [{"id": r["id"], "tags": r["tags"]} for r in rows] == records
    assert [r["record"] for r in rows] == expected.splitlines()


def test_the_command_writes_parts_and_refuses_a_format_without_a_folder(
    trained_models_dir: Path, sample_dir: Path, tmp_path: Path, expected: str, monkeypatch, capsys
) -> None:
    from training import cli

    base = ["tagger", "predict", str(sample_dir), "--models-dir", str(trained_models_dir)]
    monkeypatch.setattr("sys.argv", [*base, "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code in (0, None)
    assert "tagged 72 documents into 1 part(s)" in capsys.readouterr().out
    assert joined(tmp_path / "out") == expected
    monkeypatch.setattr("sys.argv", [*base, "--format", "parquet"])
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code == 1
    assert capsys.readouterr().err.strip() == (
        "error: --cluster and --format write parts to a folder: give --out DIR"
    )


def test_on_a_cluster_a_bounded_number_of_partitions_is_read_ahead_or_held(
    dask_client, trained_models_dir: Path, sample_dir: Path, tmp_path: Path, expected: str
) -> None:
    from classifier import artifact, registry
    from classifier.cluster import MESSAGE_LOG
    from training import batch

    size = 2  # 36 partitions of the 72 documents
    folder = registry.verify(trained_models_dir, "default")
    meta, files = artifact.read_verified(folder)
    model = batch.ModelFiles(meta, files, str(folder))
    window = batch.IN_FLIGHT_PER_THREAD * 2  # two workers of one thread
    pulled = 0

    def documents():
        nonlocal pulled
        for doc in read_inputs([str(sample_dir)], None):
            pulled += 1
            yield doc

    def alive() -> int:  # documents in this process: ours, and the scheduler's copies
        gc.collect()
        return sum(isinstance(o, Document) for o in gc.get_objects())

    before = alive()

    def held(dask_scheduler) -> int:  # partitions the cluster holds: running or done, unsent
        return sum(str(key).startswith("tag_partition") for key in dask_scheduler.tasks)

    ahead, on_cluster = [], []

    def on_part(name: str) -> None:
        ahead.append(pulled - size * (len(ahead) + 1))  # read, not yet written
        on_cluster.append(dask_client.run_on_scheduler(held))

    result = batch.tag_to_folder(
        documents(), tmp_path / "out", model, {"test": 1}, Options(),
        part_documents=size, client=dask_client, on_part=on_part,
    )  # fmt: skip
    assert result.parts == 36 and joined(tmp_path / "out") == expected
    # in flight, plus the one being written (the scheduler hears of a release a moment late)
    assert max(ahead) <= window * size and max(on_cluster) <= window + 1
    deadline = time.monotonic() + 10
    while dask_client.run_on_scheduler(held) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dask_client.run_on_scheduler(held) == 0  # nothing left behind on the workers
    # nor here: dask's message logs (client to scheduler, scheduler to each worker: the
    # scheduler runs in this process) keep a few messages, not every partition sent
    assert alive() - before <= 3 * MESSAGE_LOG * size < 72
