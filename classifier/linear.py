"""One-vs-rest linear weights: fit one binary model per label, stack them, score in one product."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from classifier import learners
from classifier.native import dense_product
from classifier.progress import ProgressHook, no_progress

if TYPE_CHECKING:
    from classifier.config import TrainingConfig


@dataclass(frozen=True)
class LinearWeights:
    """Stacked weights (features × labels, sparse float32) and one intercept per label."""

    coef: sp.csr_matrix
    intercept: NDArray[np.float32]

    def __post_init__(self) -> None:
        if self.coef.shape[1] != len(self.intercept):
            raise ValueError("one intercept per label column")

    @property
    def n_labels(self) -> int:
        return int(self.coef.shape[1])

    def decision(self, x: sp.csr_matrix) -> NDArray[np.float32]:
        """Raw linear scores ``X @ W + b`` (``native.dense_product``: the sparse product's
        sums, into a dense result, no loop over labels)."""
        out = dense_product(x, self.coef)
        out += self.intercept
        return out


T = TypeVar("T")

# (label index, kept feature rows, their weights, intercept): one label's pruned model
LabelFit = tuple[int, NDArray[np.intp], NDArray[np.float32], float]


class LabelBackend(Protocol):
    """Somewhere else to run per-label fits, in batches of labels: local processes
    (``ProcessLabels``) or a cluster's workers (``classifier.cluster.DaskLabels``). The first
    level's fits (``fit_label_batch``) and the second level's (``stacking``) both go there."""

    def batch_size(self, n_labels: int) -> int:
        """Labels a task, for ``n_labels`` in all."""
        ...

    def run_batches(
        self, fn: Callable[..., T], matrix: sp.csr_matrix, tasks: Sequence[tuple[Any, ...]]
    ) -> Iterator[T]:
        """``fn(matrix, *task)`` for every task, yielded as each finishes, in any order; the
        matrix reaches each worker once, not once a task."""
        ...


_backend: LabelBackend | None = None


@contextmanager
def label_backend(backend: LabelBackend | None) -> Iterator[None]:
    """Run every ``fit_one_vs_rest`` inside the block on ``backend`` (None: local threads).

    A process-wide setting, like joblib's ``parallel_config``, so that the orchestration in
    ``fit.py`` (however many times it fits, from whichever thread) needs no parameter for it.
    """
    global _backend
    previous, _backend = _backend, backend
    try:
        yield
    finally:
        _backend = previous


def current_backend() -> LabelBackend | None:
    """The backend ``label_backend`` set (None: none is)."""
    return _backend


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limit: Any = None


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with one BLAS thread (liblinear's primal solver calls BLAS).

    The parallelism is across labels: BLAS threads inside each fit only compete for the
    same cores (with 2 OpenBLAS threads a fit took 5 times the CPU on a loaded machine), and
    a sum split over a machine-dependent number of threads rounds differently, so weights
    would depend on where the fit ran (a local run and a cluster's workers differed by 0.01
    on 20k paragraphs). threadpoolctl's limit is process-wide, so concurrent and nested
    blocks share one limit, set by the first and restored when the last one ends: let that
    be the thread that set it (OpenBLAS ignores a raise from another thread), as
    ``fit_one_vs_rest`` and ``fit_label_batch`` do by holding it around their fits.
    """
    from threadpoolctl import threadpool_limits

    global _blas_users, _blas_limit
    with _blas_lock:
        if _blas_users == 0:
            _blas_limit = threadpool_limits(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limit.restore_original_limits()
                _blas_limit = None


@contextmanager
def quick_checks() -> Iterator[None]:
    """Skip scikit-learn's checks of parameters and of finite input inside the block (this
    thread only): our own code made both, and on small fits (level 2: a few hundred rows)
    the checks cost more than the solver."""
    from sklearn import config_context

    with config_context(assume_finite=True, skip_parameter_validation=True):
        yield


def fit_label(
    x64: sp.csr_matrix, target: NDArray[Any], cfg: TrainingConfig
) -> tuple[NDArray[np.intp], NDArray[np.float32], float]:
    """One label's binary model: the feature rows kept (|w| > ``cfg.prune_below``), their
    weights and the intercept.

    A label on every row needs no model: weight zero, intercept 1; nor does a label on no
    row (a rare label whose documents are all held out of a cross-validation fold): weight
    zero, intercept -1.
    """
    from sklearn.exceptions import ConvergenceWarning

    if target.all() or not target.any():
        bias = 1.0 if target.all() else -1.0
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float32), bias
    estimator = learners.get(cfg.learner).make(cfg, x64.shape[0])
    with warnings.catch_warnings(), one_blas_thread(), quick_checks():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(x64, target)
    w = estimator.coef_.ravel()
    keep = np.flatnonzero(np.abs(w) > cfg.prune_below)
    return keep, w[keep].astype(np.float32), float(estimator.intercept_[0])


def fit_label_batch(
    x64: sp.csr_matrix, y: sp.csc_matrix, first: int, cfg: TrainingConfig
) -> list[LabelFit]:
    """``fit_label`` for each column of ``y``, the label columns ``first``, ``first + 1``…"""
    with one_blas_thread():  # set once for the batch, not once a label
        return [
            (first + i, *fit_label(x64, y[:, i].toarray().ravel(), cfg)) for i in range(y.shape[1])
        ]


# labels a task of a process pool or cluster fits at most, and tasks a worker gets at least
# (the last tasks then even out how the workers finish)
MAX_BATCH_LABELS = 64
TASKS_PER_WORKER = 4


def label_batches(
    y: sp.csc_matrix, size: int, cfg: TrainingConfig
) -> list[tuple[sp.csc_matrix, int, TrainingConfig]]:
    """``fit_label_batch``'s arguments after the matrix, ``size`` labels a task."""
    return [(y[:, first : first + size], first, cfg) for first in range(0, y.shape[1], size)]


def batch_size(n_labels: int, workers: int) -> int:
    """Labels a task: ``TASKS_PER_WORKER`` tasks a worker, at most ``MAX_BATCH_LABELS``."""
    return max(1, min(MAX_BATCH_LABELS, -(-n_labels // (TASKS_PER_WORKER * workers))))


class ProcessLabels:
    """The per-label fits in ``jobs`` local processes (joblib's loky pool), in batches.

    Not threads: scikit-learn's liblinear draws the dual solver's shuffles from one random
    generator per process, which every fit reseeds, so fits running at once in threads of one
    process disturb each other's order and the weights depend on the timing (two threads:
    every label's weights differed from a one-thread run's, BENCHMARKS.md §4). In a process
    of its own each fit runs alone, so the model is the one ``jobs = 1`` fits, to the bit.
    The matrix reaches each process once, memory-mapped by joblib, not once per label.
    """

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def batch_size(self, n_labels: int) -> int:
        return batch_size(n_labels, self.jobs)

    def run_batches(
        self, fn: Callable[..., T], matrix: sp.csr_matrix, tasks: Sequence[tuple[Any, ...]]
    ) -> Iterator[T]:
        from joblib import Parallel, delayed

        return Parallel(n_jobs=self.jobs, backend="loky", return_as="generator_unordered")(
            delayed(fn)(matrix, *task) for task in tasks
        )


def fit_one_vs_rest(
    x: sp.csr_matrix,
    y: sp.csc_matrix,
    cfg: TrainingConfig,
    jobs: int = 1,
    progress: ProgressHook = no_progress,
    backend: LabelBackend | None = None,
) -> LinearWeights:
    """One binary model per label column of ``y``, stacked: in this thread with ``jobs = 1``,
    in ``jobs`` local processes (``ProcessLabels``) otherwise.

    Each label's weights are pruned to |w| > ``cfg.prune_below`` as they arrive, so memory
    holds one dense vector per running fit rather than one per label. With a ``backend``
    (default: the one set by ``label_backend``), the fits run there instead, in batches of
    labels. Everywhere each label's model is fitted by the same ``fit_label`` on the same
    matrix, alone in its process, so it is the same model.
    """

    x64 = sp.csr_matrix(x, dtype=np.float64)
    n_features, n_labels = x.shape[1], y.shape[1]
    backend = backend or _backend
    if backend is None and jobs > 1 and n_labels > 1:
        backend = ProcessLabels(jobs)

    advance = progress("fitting", n_labels)
    rows, cols, vals = [], [], []
    intercept = np.zeros(n_labels, dtype=np.float32)
    if backend is not None:
        batches: Iterable[list[LabelFit]] = backend.run_batches(
            fit_label_batch, x64, label_batches(sp.csc_matrix(y), backend.batch_size(n_labels), cfg)
        )
    else:
        batches = ([(j, *fit_label(x64, y[:, j].toarray().ravel(), cfg))] for j in range(n_labels))
    done = 0
    with one_blas_thread():  # set once for the run (each fit_label holds it too)
        arriving = iter(batches)
        try:
            for batch in arriving:
                for j, keep, w, b in batch:
                    rows.append(keep)
                    cols.append(np.full(len(keep), j, dtype=np.int32))
                    vals.append(w)
                    intercept[j] = b
                done += len(batch)
                advance(len(batch))
        finally:  # a backend's generator ends here (its tasks cancelled), even on an error
            getattr(arriving, "close", lambda: None)()
    if done != n_labels:
        raise RuntimeError(f"{done} of {n_labels} labels came back from the fitting backend")
    coef = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_features, n_labels),
        dtype=np.float32,
    )
    return LinearWeights(coef, intercept)
