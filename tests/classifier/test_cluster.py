"""Fitting on a Dask cluster: the same model as a local run, a lost worker survived, and
addresses that do not work refused in one line. One LocalCluster (two worker processes,
``dask_client``) serves the session."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

distributed = pytest.importorskip("distributed")

from classifier import cluster  # noqa: E402
from classifier.config import TrainingConfig  # noqa: E402
from classifier.corpus import read_corpus  # noqa: E402
from classifier.errors import ClusterError  # noqa: E402
from classifier.features import fit_features  # noqa: E402
from classifier.labels import label_matrix  # noqa: E402
from classifier.linear import LinearWeights, fit_one_vs_rest  # noqa: E402


@pytest.fixture
def client(dask_client):
    return dask_client


@pytest.fixture(scope="module")
def problem(sample_dir: Path) -> tuple[sp.csr_matrix, sp.csc_matrix, TrainingConfig]:
    docs = list(read_corpus([sample_dir]))
    labels = sorted({t for d in docs for t in d.tags})
    cfg = TrainingConfig().resolved()
    _, x = fit_features([d.text for d in docs], cfg)
    return x, label_matrix([d.tags for d in docs], labels), cfg


def same(a: LinearWeights, b: LinearWeights) -> None:
    assert a.coef.shape == b.coef.shape
    assert abs(a.coef - b.coef).max() <= 1e-6
    np.testing.assert_array_equal(a.intercept, b.intercept)


def test_fitting_on_the_cluster_gives_the_local_model(client, problem) -> None:
    x, y, cfg = problem
    seen: list[tuple[str, float | None, float]] = []

    def hook(description: str, total: float | None = None):
        seen.append((description, total, 0))
        return lambda n: seen.append((description, total, n))

    remote = fit_one_vs_rest(x, y, cfg, progress=hook, backend=cluster.DaskLabels(client, 3))
    same(fit_one_vs_rest(x, y, cfg), remote)
    assert seen[0][:2] == ("fitting", y.shape[1])  # labels done / total, a batch at a time
    advances = [n for _, _, n in seen[1:]]
    assert sum(advances) == y.shape[1] and max(advances) == 3 and len(advances) == 3


@pytest.fixture(scope="module")
def slower_problem() -> tuple[sp.csr_matrix, sp.csc_matrix, TrainingConfig]:
    """16 labels of about 0.1 s each: batches are still running when the first returns."""
    rng = np.random.default_rng(0)
    x = sp.random(3000, 2000, density=0.02, format="csr", random_state=0, dtype=np.float32)
    y = sp.csc_matrix((x[:, :16].toarray() > 0) | (rng.random((3000, 16)) < 0.2))
    return x, y, TrainingConfig().resolved()


def test_a_worker_killed_mid_run_changes_nothing(client, slower_problem) -> None:
    x, y, cfg = slower_problem
    scheduler = client.cluster.scheduler
    killed: list[int] = []

    def hook(description: str, total: float | None = None):
        def advance(n: float) -> None:
            if killed:
                return
            busy = [w for w in scheduler.workers.values() if w.processing]
            assert busy, "every batch finished before a worker could be killed"
            killed.append(busy[0].pid)
            os.kill(busy[0].pid, signal.SIGKILL)

        return advance

    remote = fit_one_vs_rest(x, y, cfg, progress=hook, backend=cluster.DaskLabels(client, 1))
    assert killed
    same(fit_one_vs_rest(x, y, cfg), remote)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it


def test_training_on_the_cluster_saves_the_local_model(
    client, trained, sample_dir: Path, tmp_path: Path
) -> None:
    from classifier.registry import load_model
    from training.train import train

    result = train([sample_dir], tmp_path, name="default", cluster=client.scheduler.address)
    where = result.metadata["cluster"]
    assert (where["address"], where["workers"]) == (client.scheduler.address, 2)
    assert where["usage"]["client"]["peak_rss_mb"] > 0
    assert len(where["usage"]["workers"]) == 2
    assert all(w["peak_rss_mb"] > 0 for w in where["usage"]["workers"].values())
    assert any(line.startswith("fitted on tcp://") for line in result.summary())
    remote = load_model(tmp_path, "default").model
    same(trained.model.scorer.weights, remote.scorer.weights)
    assert remote.thresholds == trained.model.thresholds
    assert remote.labels == trained.model.labels


@pytest.mark.parametrize("address", ["local:0", "local:x", "local"])
def test_a_bad_address_is_one_line(address: str) -> None:
    with pytest.raises(ClusterError, match="bad cluster address"), cluster.connect(address):
        pass


def test_an_unreachable_scheduler_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)
    with (
        pytest.raises(
            ClusterError, match=r"cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"
        ),
        cluster.connect("tcp://127.0.0.1:9"),
    ):
        pass


def test_the_command_says_a_bad_address_in_one_line(
    sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from training import cli

    argv = ["tagger", "train", str(sample_dir), "--models-dir", str(tmp_path)]
    monkeypatch.setattr("sys.argv", [*argv, "--cluster", "local:x"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: bad cluster address 'local:x': expected tcp://HOST:PORT (a Dask scheduler), "
        "HOST:PORT, or local:N (N local workers)"
    ]


def test_fits_run_with_one_blas_thread_and_the_limit_is_restored(problem) -> None:
    """BLAS threads would make the weights depend on the machine (and waste CPU): the run
    holds one limit, which the fits in joblib's threads share, restored at its end."""
    from threadpoolctl import threadpool_info

    from classifier import linear

    def blas_threads() -> set[int]:
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    before, seen = blas_threads(), []
    x, y, cfg = problem

    def hook(description: str, total: float | None = None):
        return lambda n: seen.append(blas_threads())

    linear.fit_one_vs_rest(x, y, cfg, jobs=2, progress=hook)
    assert seen and all(s <= {1} for s in seen)
    assert blas_threads() == before and linear._blas_users == 0


def test_the_second_level_fits_on_the_cluster_to_the_local_weights(client) -> None:
    from classifier.linear import label_backend
    from classifier.stacking import fit_stacker
    from tests.classifier.test_stacking import level2_problem

    views, gold, folds = level2_problem()
    sent: list[tuple[str, int]] = []

    class Watched(cluster.DaskLabels):
        def run_batches(self, fn, matrix, tasks):
            sent.append((fn.__name__, len(tasks)))
            return super().run_batches(fn, matrix, tasks)

    local = fit_stacker(views, gold, folds, candidates=4)
    with label_backend(Watched(client, batch_labels=2)):
        remote = fit_stacker(views, gold, folds, candidates=4, parallel_rows=0)
    # every fit of the second level (2 floors × 3 folds, then all documents) went out in
    # batches of 2 labels
    assert sent == [("_fit_level2_batch", 4)] * 7
    assert (local[0].weights.coef != remote[0].weights.coef).nnz == 0
    np.testing.assert_array_equal(local[0].weights.intercept, remote[0].weights.intercept)
    np.testing.assert_array_equal(local[1], remote[1])
    assert local[2] == remote[2]
    # below the size that pays for the scheduling, the fits stay here
    sent.clear()
    with label_backend(Watched(client)):
        fit_stacker(views, gold, folds, candidates=4)
    assert sent == []
