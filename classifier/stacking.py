"""The second level ("stacking"): document scores from every label's first-level scores.

The first level (one linear model per label, on paragraphs) gives each document *views* of
its raw decision values, one column per label each: the mean of its paragraphs' values, the
value of the whole document as one text, and the max over its paragraphs (the last two only
when enough training documents have several paragraphs for them to differ). The second level
is, per label, one more linear model whose inputs are every label's views shifted and cut at
``floor`` (``max(s - floor, 0)``, each view keeping only a row's ``candidates`` best labels,
so the input is sparse), fitted on the documents where the first level ranks that label
among its ``candidates`` best: it learns which other labels' evidence confirms or rules out a
label. Elsewhere a label keeps its first-level mean score minus ``OFF_CANDIDATE_DROP``; the
output can be averaged with the first-level mean score (``mix``).

Fitting needs first-level scores of documents the first level did not see: out-of-fold
scores (``classifier.fit``). ``(floor, mix)`` is chosen from ``FLOORS`` × ``MIXES`` by the
micro-F1 of the second level's own out-of-fold scores on the same folds, under one global
threshold. Applying it is a sparse product, NumPy and SciPy only: scikit-learn is imported
only to fit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from classifier.calibration import Calibration, fit_calibration
from classifier.linear import (
    LabelBackend,
    LinearWeights,
    ProcessLabels,
    current_backend,
    one_blas_thread,
    quick_checks,
)
from classifier.native import candidate_sums_at, level2_inputs
from classifier.progress import ProgressHook, no_progress

# floors and mixes tried (every pair; one set of fits per floor, a mix is applied after);
# chosen per model by out-of-fold micro-F1. A floor of -2 was never better on the benchmark
# corpora (tiku 0.62 against 0.80 at -0.75) and costs a third more fits.
FLOORS = (-1.0, -0.75)
MIXES = (0.0, 0.5)
# Documents with several paragraphs needed (share of the training documents) for the whole-
# document and max views: with fewer they repeat the mean and only add weights
MULTI_VIEW_SHARE = 0.2
# How far below its first-level score a label falls where level 2 does not score it
OFF_CANDIDATE_DROP = 10.0
# liblinear's tolerance for level 2 (primal solver, its default)
LEVEL2_TOL = 0.01
LEVEL2_C = 1.0
# multiply-adds of one sparse level-2 product at most (bounds its memory; a batch is split
# beyond)
PRODUCT_ENTRIES = 4_000_000
# Level-2 weights are also held dense (float32) when they have at most this many entries
# (16 MB; 778 labels and one view: 2.4 MB): each input then needs only its weights at its
# row's candidates, gathered from the dense block (``candidate_product``)
DENSE_LEVEL2_FLOATS = 4 * 1024 * 1024
# cuts tried when choosing (floor, mix): among a row's this many best labels on average
CUT_DEPTH = 20
# Level-2 fits run on the cluster (``linear.label_backend``) or in ``jobs`` processes when
# there are at least this many (label, candidate document) pairs in all: a fit of a few
# hundred rows is mostly the Python around liblinear, which threads cannot share (two threads
# on tiku: 24.7 s wall against 21.9 for one, BENCHMARKS.md §4), and below this a round is too
# short to pay for the processes or the cluster's scheduling
LEVEL2_PARALLEL_ROWS = 100_000


# a sparse batch as CSR arrays (indptr, indices, data), without a SciPy matrix
Rows = tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float32]]


def document_views(
    par_decision: NDArray[np.floating],
    par_doc: NDArray[np.integer],
    n_docs: int,
    whole_decision: NDArray[np.floating] | None,
) -> NDArray[np.float32]:
    """The first-level views of each document: mean of its paragraphs' decision values, then
    (with ``whole_decision``) the whole document's and the max of its paragraphs'.

    ``par_doc`` lists each paragraph's document in order (every document has one at least,
    as ``prepare_text`` gives); a document's views depend on its own paragraphs only, not on
    the batch it is scored in.
    """
    par_doc = np.asarray(par_doc)
    if len(par_doc) == n_docs:  # one paragraph each: the mean and the max are that paragraph
        mean = top = np.asarray(par_decision, dtype=np.float32)
    else:
        if len(par_doc) and (np.any(np.diff(par_doc) < 0) or par_doc[0] != 0):
            raise ValueError("paragraphs must be listed document by document")
        starts = np.searchsorted(par_doc, np.arange(n_docs))
        counts = np.diff(np.append(starts, len(par_doc)))
        if np.any(counts == 0):
            raise ValueError("every document needs a paragraph")
        values = np.asarray(par_decision, dtype=np.float64)
        mean = (np.add.reduceat(values, starts, axis=0) / counts[:, None]).astype(np.float32)
        top = np.maximum.reduceat(values, starts, axis=0).astype(np.float32)
    if whole_decision is None:
        return np.array(mean, dtype=np.float32)
    return np.hstack([mean, np.asarray(whole_decision, dtype=np.float32), top])


def best_k_mask(scores: NDArray[np.floating], k: int) -> NDArray[np.bool_]:
    """Each row's ``k`` best entries (and any tied with the k-th)."""
    if k >= scores.shape[1]:
        return np.ones(scores.shape, dtype=bool)
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
    return scores >= kth


def inputs(views: NDArray[np.floating], floor: float, n_labels: int, k: int) -> sp.csr_matrix:
    """Level 2's input: ``max(view - floor, 0)``, each view cut to each row's ``k`` best."""
    indptr, indices, data = _input_rows(views, floor, n_labels, k)
    return sp.csr_matrix((data, indices, indptr), shape=views.shape)


def _input_rows(views: NDArray[np.floating], floor: float, n_labels: int, k: int) -> Rows:
    """``inputs`` as CSR arrays (indptr, indices, data), without building a SciPy matrix
    (compiled: ``native.level2_inputs``)."""
    return level2_inputs(views, floor, n_labels, k)[0]


def _halves(rows: Rows) -> tuple[Rows, Rows]:
    """CSR arrays (indptr, indices, data) cut into their first ``n // 2`` rows and the rest
    (both products split a batch so to bound their memory)."""
    indptr, indices, data = rows
    half, cut = (len(indptr) - 1) // 2, indptr[(len(indptr) - 1) // 2]
    top = (indptr[: half + 1], indices[:cut], data[:cut])
    return top, (indptr[half:] - cut, indices[cut:], data[cut:])


def level2_product(
    rows: Rows,
    coef: sp.csr_matrix,
    max_entries: int = PRODUCT_ENTRIES,
) -> NDArray[np.float64]:
    """``(z @ coef).toarray()`` for ``z`` given as CSR arrays, by gathering, for each input
    of each row, its row of weights and summing them per label in float64
    (``np.bincount``): for the few inputs a row has this is several times faster than a
    SciPy product, and a row's result does not depend on the other rows of the batch (the
    same sums in the same order)."""
    indptr, indices, data = rows
    n, n_labels = len(indptr) - 1, coef.shape[1]
    lengths = coef.indptr[indices + 1] - coef.indptr[indices]
    cumulative = np.concatenate([[0], np.cumsum(lengths)])
    if n > 1 and cumulative[-1] > max_entries:
        top, rest = _halves(rows)
        return np.vstack(
            [level2_product(top, coef, max_entries), level2_product(rest, coef, max_entries)]
        )
    starts = np.repeat(coef.indptr[indices] - cumulative[:-1], lengths)
    positions = starts + np.arange(int(cumulative[-1]))
    row_of_input = np.repeat(np.arange(n), np.diff(indptr))
    target = np.repeat(row_of_input, lengths) * n_labels + coef.indices[positions]
    values = coef.data[positions].astype(np.float64) * np.repeat(data, lengths)
    out = np.bincount(target, weights=values, minlength=n * n_labels)
    # with no input at all (a text of no known term) NumPy's bincount answers int64 zeros
    return out.astype(np.float64, copy=False).reshape(n, n_labels)


def candidate_product(
    rows: Rows, dense: NDArray[np.float32], candidates: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """``level2_product(rows, coef)`` at each row's ``candidates`` only (the entries of
    ``np.nonzero(candidates)``, in that order), with ``dense`` = ``coef`` as an array.

    Each input's weights at its row's candidates are read from ``dense`` and summed per
    (row, candidate) in float64 in input order, as ``level2_product`` sums them: the float32
    products are exact in float64 and a weight of zero adds nothing, so the values are the
    same bit for bit, at a fraction of the work when a row has few candidates (compiled,
    ``native.candidate_sums_at``: no scratch array beyond the result).
    """
    at_rows, columns = np.nonzero(candidates)
    first = np.zeros(len(rows[0]), dtype=np.int64)
    np.cumsum(np.bincount(at_rows, minlength=len(rows[0]) - 1), out=first[1:])
    return candidate_sums_at(*rows, dense, first, columns)


@dataclass(frozen=True)
class Stacker:
    """The fitted second level: weights (``n_views * labels`` × labels), the (floor, mix)
    chosen, and a sigmoid to scores in [0, 1]."""

    weights: LinearWeights
    floor: float
    mix: float
    n_views: int
    candidates: int
    calibration: Calibration = Calibration()

    def __post_init__(self) -> None:
        if self.weights.coef.shape[0] != self.n_views * self.weights.n_labels:
            raise ValueError("level-2 weights need one row per label and view")

    @property
    def n_labels(self) -> int:
        return self.weights.n_labels

    @cached_property
    def dense_coef(self) -> NDArray[np.float32] | None:
        """The level-2 weights as an array, if small enough (``DENSE_LEVEL2_FLOATS``)."""
        coef = self.weights.coef
        if coef.shape[0] * coef.shape[1] > DENSE_LEVEL2_FLOATS:
            return None
        return np.asarray(coef.toarray(), dtype=np.float32)

    def decision(self, views: NDArray[np.floating]) -> NDArray[np.float32]:
        """Level 2's raw values for rows of first-level views."""
        return apply_level2(
            views, self.weights, self.floor, self.mix, self.candidates, self.dense_coef
        )

    def scores(self, views: NDArray[np.floating]) -> NDArray[np.float32]:
        """Document scores in [0, 1]."""
        return self.calibration.apply(self.decision(views))


def apply_level2(
    views: NDArray[np.floating],
    weights: LinearWeights,
    floor: float,
    mix: float,
    k: int,
    dense: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """Level 2 on rows of views: its values on each row's candidates, the first-level mean
    minus ``OFF_CANDIDATE_DROP`` elsewhere, averaged with the mean by ``mix``. With ``dense``
    (the weights as an array) only the candidates' values are computed: the same values."""
    n_labels = weights.n_labels
    mean = np.asarray(views[:, :n_labels], dtype=np.float32)
    rows, (first, columns) = level2_inputs(views, floor, n_labels, k)
    if dense is None:
        out = level2_product(rows, weights.coef)
        out += weights.intercept
        out = np.where(best_k_mask(mean, k), out, mean - OFF_CANDIDATE_DROP)
    else:
        out = (mean - OFF_CANDIDATE_DROP).astype(np.float64)
        at = np.repeat(np.arange(len(mean)), np.diff(first)), columns
        out[at] = candidate_sums_at(*rows, dense, first, columns) + weights.intercept[columns]
    if mix:
        out = (1 - mix) * out + mix * mean
    return np.asarray(out, dtype=np.float32)


@dataclass(frozen=True)
class StackingReport:
    """What fitting the second level chose and measured, for the metadata."""

    floor: float
    mix: float
    n_views: int
    # out-of-fold micro-F1 (one global threshold, at least the best label) of each grid point
    tried: dict[str, float] = field(default_factory=dict)


def fit_stacker(
    views: NDArray[np.float32],
    gold: NDArray[np.bool_],
    folds: NDArray[np.integer],
    candidates: int,
    seed: int = 0,
    min_labels: int = 1,
    jobs: int = 1,
    progress: ProgressHook = no_progress,
    parallel_rows: int = LEVEL2_PARALLEL_ROWS,
) -> tuple[Stacker, NDArray[np.float32], StackingReport]:
    """Fit the second level on out-of-fold first-level ``views`` of the training documents.

    Returns the stacker (fitted on every document), its own out-of-fold raw values under the
    chosen (floor, mix) (for thresholds and honest validation metrics) and a report. The
    fits run on the cluster that ``linear.label_backend`` set, if any, else in ``jobs``
    processes, when there are ``parallel_rows`` (label, candidate document) pairs; else here.
    """
    n_labels = gold.shape[1]
    n_views = views.shape[1] // n_labels
    mean = views[:, :n_labels]
    cand = best_k_mask(mean, candidates)
    # the fits go to the cluster's workers (``linear.label_backend``) or ``jobs`` processes
    # when there is enough to share out
    backend = None
    if cand.sum() >= parallel_rows:
        backend = current_backend() or (ProcessLabels(jobs) if jobs > 1 else None)
    fold_ids = np.unique(folds)
    advance = progress("stacking", len(FLOORS) * len(fold_ids) + 1)
    tried: dict[str, float] = {}
    best: tuple[float, float, float, NDArray[np.float32]] | None = None
    held = {f: folds == f for f in fold_ids}
    for floor in FLOORS:
        z = inputs(views, floor, n_labels, candidates)
        fitted = {}
        for f in fold_ids:
            fitted[f] = fit_level2(z, gold, cand & ~held[f][:, None], backend)
            advance(1)
        del z
        # one mix's out-of-fold values at a time: a documents × labels array beside the best
        # so far, not one a mix
        for mix in MIXES:
            oof = np.zeros(gold.shape, dtype=np.float32)
            for f, w in fitted.items():
                oof[held[f]] = apply_level2(views[held[f]], w, floor, mix, candidates)
            score = global_micro_f1(oof, gold, min_labels)
            tried[f"floor={floor:g},mix={mix:g}"] = score
            if best is None or score > best[0] + 1e-12:
                best = (score, floor, mix, oof)
            del oof
    assert best is not None
    _, floor, mix, oof = best
    weights = fit_level2(inputs(views, floor, n_labels, candidates), gold, cand, backend)
    advance(1)
    calibration = fit_calibration(oof, sp.csr_matrix(gold), seed)
    stacker = Stacker(weights, floor, mix, n_views, candidates, calibration)
    return stacker, oof, StackingReport(floor, mix, n_views, tried)


def fit_level2(
    z: sp.csr_matrix,
    gold: NDArray[np.bool_],
    rows: NDArray[np.bool_],
    backend: LabelBackend | None = None,
) -> LinearWeights:
    """Per label j, an L2-loss linear SVM on the rows where ``rows[:, j]``; a label with no
    such row gets weight 0 and intercept -OFF_CANDIDATE_DROP, one with a single class there
    weight 0 and intercept ±1. With a ``backend`` (local processes, or a cluster's workers)
    the labels are fitted there, in batches (the primal solver draws no random numbers: the
    same weights wherever they run)."""
    z64 = sp.csr_matrix(z, dtype=np.float64)
    rows_csc = sp.csc_matrix(rows)
    n_labels = gold.shape[1]
    # each label's rows and their classes, made here: a task gets its labels' only
    size = backend.batch_size(n_labels) if backend is not None else max(n_labels, 1)
    tasks = []
    for first in range(0, n_labels, size):
        batch = []
        for j in range(first, min(first + size, n_labels)):
            r = rows_csc.indices[rows_csc.indptr[j] : rows_csc.indptr[j + 1]]
            batch.append((j, r, gold[r, j]))
        tasks.append(batch)
    if backend is not None and len(tasks) > 1:
        done = backend.run_batches(_fit_level2_batch, z64, [(batch,) for batch in tasks])
        parts = [p for batch in done for p in batch]
    else:
        parts = [p for batch in tasks for p in _fit_level2_batch(z64, batch)]
    intercept = np.zeros(n_labels, dtype=np.float32)
    for j, _, _, b in parts:
        intercept[j] = b
    coef = sp.csr_matrix(
        (
            np.concatenate([p[2] for p in parts]),
            (
                np.concatenate([p[1] for p in parts]),
                np.concatenate([np.full(len(p[1]), p[0], dtype=np.int32) for p in parts]),
            ),
        ),
        shape=(z.shape[1], n_labels),
        dtype=np.float32,
    )
    return LinearWeights(coef, intercept)


def _fit_level2_batch(
    z64: sp.csr_matrix, batch: list[tuple[int, NDArray[np.intp], NDArray[np.bool_]]]
) -> list[tuple[int, NDArray[np.intp], NDArray[np.float32], float]]:
    """``fit_level2``'s fits of some labels, each given its rows and their classes."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    out = []
    empty = np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float32)
    # one BLAS thread: the primal solver calls BLAS, and the parallelism is across labels
    with one_blas_thread():
        for j, r, y in batch:
            if len(r) == 0:
                out.append((j, *empty, -OFF_CANDIDATE_DROP))
                continue
            if y.all() or not y.any():
                out.append((j, *empty, 1.0 if y.all() else -1.0))
                continue
            svm = LinearSVC(C=LEVEL2_C, dual=False, tol=LEVEL2_TOL)
            with warnings.catch_warnings(), quick_checks():
                warnings.simplefilter("ignore", ConvergenceWarning)
                svm.fit(z64[r], y)
            w = svm.coef_.ravel()
            keep = np.flatnonzero(w)
            out.append((j, keep, w[keep].astype(np.float32), float(svm.intercept_[0])))
    return out


def global_micro_f1(
    scores: NDArray[np.floating], gold: NDArray[np.bool_], min_labels: int = 1
) -> float:
    """The best micro-F1 of one threshold over ``scores`` (exact: every cut between two
    distinct scores), with each row's ``min_labels`` best labels always chosen."""
    n_gold = int(gold.sum())
    forced = np.zeros(scores.shape, dtype=bool)
    if min_labels:
        order = np.argsort(-scores, axis=1, kind="stable")[:, :min_labels]
        np.put_along_axis(forced, order, True, axis=1)
    tp_forced, n_forced = int((forced & gold).sum()), int(forced.sum())
    free_scores, free_gold = scores[~forced], gold[~forced]
    # the best cut never chooses more than CUT_DEPTH labels a row beyond the forced ones
    m = min(len(free_scores), CUT_DEPTH * len(scores))
    if m == 0:
        return 2 * tp_forced / max(n_forced + n_gold, 1)
    best = np.argpartition(-free_scores, m - 1)[:m]
    order = best[np.argsort(-free_scores[best], kind="stable")]
    s, g = free_scores[order], free_gold[order]
    tp = tp_forced + np.concatenate([[0], np.cumsum(g)])
    n_pred = n_forced + np.arange(len(s) + 1)
    f1 = 2 * tp / np.maximum(n_pred + n_gold, 1)
    # a cut after position i is possible only between distinct scores
    valid = np.concatenate([[True], s[:-1] > s[1:], [True]])
    return float(f1[valid].max())
