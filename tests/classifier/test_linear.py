"""The per-label fits give one model however many jobs run them: local processes fit each
label alone (liblinear's shuffles come from one generator per process, which concurrent fits
in threads of one process would share)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from classifier import linear
from classifier.config import TrainingConfig


def problem() -> tuple[sp.csr_matrix, sp.csc_matrix, TrainingConfig]:
    rng = np.random.default_rng(4)
    x = sp.random(3000, 1500, density=0.02, format="csr", random_state=5, dtype=np.float64)
    signal = np.asarray(x[:, :12].sum(axis=1)).ravel()
    y = np.column_stack(
        [(signal * rng.random(3000) > rng.uniform(0.02, 0.2)) for _ in range(12)]
    ).astype(np.int8)
    # a tight tolerance: fits long enough for two of them to overlap in time
    return x, sp.csc_matrix(y), TrainingConfig(tol=1e-4, prune_below=0.0)


def same(a: linear.LinearWeights, b: linear.LinearWeights) -> bool:
    return (
        np.array_equal(a.coef.indptr, b.coef.indptr)
        and np.array_equal(a.coef.indices, b.coef.indices)
        and np.array_equal(a.coef.data, b.coef.data)
        and np.array_equal(a.intercept, b.intercept)
    )


def test_two_jobs_fit_the_model_one_job_fits_to_the_bit() -> None:
    x, y, cfg = problem()
    one = linear.fit_one_vs_rest(x, y, cfg, jobs=1)
    assert one.coef.nnz > 0
    for _ in range(2):
        assert same(linear.fit_one_vs_rest(x, y, cfg, jobs=2), one)


def test_the_process_pool_reports_every_label_once() -> None:
    x, y, cfg = problem()
    pool = linear.ProcessLabels(2)
    tasks = linear.label_batches(y, pool.batch_size(y.shape[1]), cfg)
    batches = list(pool.run_batches(linear.fit_label_batch, x, tasks))
    assert sorted(j for batch in batches for j, *_ in batch) == list(range(y.shape[1]))
    assert len(batches) > 2  # in batches, so both processes get a share
