"""Running work on a Dask cluster: connecting (an address, or ``local:N`` for a local
cluster) and fitting the per-label models there (``DaskLabels``, a ``linear.LabelBackend``).

dask is an optional dependency (the ``cluster`` extra) and imported only here, when used.
The feature matrix goes to every worker once (``scatter(broadcast=True)``); labels go out in
batches, each a task that fits its labels (``linear.fit_label_batch`` for the first level,
the second level's own for it), and come back as they finish. A worker lost mid-run costs
only its batches: the scheduler runs them again on another worker (a batch is given up after
``distributed.scheduler.allowed-failures`` lost workers, 3 by default), and since every
label is fitted by the same function on the same matrix, the model is the same as a local
run's.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import scipy.sparse as sp

from classifier import resources
from classifier.errors import ClusterError
from classifier.linear import batch_size

if TYPE_CHECKING:
    from distributed import Client


T = TypeVar("T")

CONNECT_TIMEOUT_S = 10
MAX_LOCAL_WORKERS = 64
# messages of a comm dask keeps for debugging (``connect``)
MESSAGE_LOG = 8
_LOCAL = re.compile(r"local:(\d+)")
USAGE = "tcp://HOST:PORT (a Dask scheduler), HOST:PORT, or local:N (N local workers)"


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ClusterError(
            "--cluster needs dask.distributed: pip install 'tagger[cluster]'"
        ) from None
    return distributed


def local_workers(address: str) -> int | None:
    """N for ``local:N``; None for a scheduler's address."""
    match = _LOCAL.fullmatch(address.strip())
    if match is None:
        if address.strip().startswith("local"):
            raise ClusterError(f"bad cluster address {address!r}: expected {USAGE}")
        return None
    n = int(match.group(1))
    if not 1 <= n <= MAX_LOCAL_WORKERS:
        raise ClusterError(f"bad cluster address {address!r}: N must be 1 to {MAX_LOCAL_WORKERS}")
    return n


@contextmanager
def connect(address: str, processes: bool = True) -> Iterator[Client]:
    """A client of the scheduler at ``address``, or of a new local cluster for ``local:N``
    (N worker processes of one thread each, closed at the end of the block).

    Inside the block dask keeps at most ``MESSAGE_LOG`` messages of each stream for debugging
    (1,000 by default): a message that submits a task carries its arguments, a partition of
    documents to tag, so the client (and a local cluster's scheduler, in this process) would
    otherwise hold the last thousand partitions sent.
    """
    import dask

    with dask.config.set({"distributed.admin.low-level-log-length": MESSAGE_LOG}):
        with _connect(address, processes) as client:
            yield client


@contextmanager
def _connect(address: str, processes: bool) -> Iterator[Client]:
    distributed = _distributed()
    n = local_workers(address)
    if n is not None:
        with (
            distributed.LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = distributed.Client(address.strip(), timeout=CONNECT_TIMEOUT_S)
    except (OSError, ValueError, TypeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ClusterError(f"cannot reach the Dask scheduler at {address!r}: {reason}") from None
    with client:
        yield client


def n_threads(client: Client) -> int:
    return max(1, sum(client.nthreads().values()))


def usage(client: Client) -> dict[str, Any]:
    """Peak RSS and CPU seconds of this process (the client) and of each worker process
    (since it started: a long-lived cluster's workers count earlier work too)."""
    try:
        workers = client.run(resources.usage)
    except Exception:  # a worker going away while asked: report the others next time
        workers = {}
    return {"client": resources.usage(), "workers": dict(sorted(workers.items()))}


class DaskLabels:
    """Fit the per-label models on the workers of ``client`` (a ``linear.LabelBackend``)."""

    def __init__(self, client: Client, batch_labels: int | None = None, retries: int = 1):
        self.client, self.batch_labels, self.retries = client, batch_labels, retries
        # filled after every fit: the peak RSS of the client and each worker (``usage``)
        self.usage: dict[str, Any] = {}

    def batch_size(self, n_labels: int) -> int:
        if self.batch_labels:
            return self.batch_labels
        # enough tasks to balance the workers (and lose little to a lost worker), few enough
        # that each carries real work
        return batch_size(n_labels, n_threads(self.client))

    def run_batches(
        self, fn: Callable[..., T], matrix: sp.csr_matrix, tasks: Sequence[tuple[Any, ...]]
    ) -> Iterator[T]:
        """Each task run on a worker, its result yielded as it finishes."""
        distributed = _distributed()
        client, run = self.client, uuid.uuid4().hex[:12]
        shared = client.scatter(matrix, broadcast=True, hash=False)
        futures = [
            client.submit(
                fn,
                shared,
                *task,
                key=f"tagger-{fn.__name__}-{run}-{i}",
                retries=self.retries,
            )
            for i, task in enumerate(tasks)
        ]
        try:
            for future, result in distributed.as_completed(futures, with_results=True):
                future.release()
                yield result
        except distributed.KilledWorker as exc:
            raise ClusterError(f"a batch of labels was lost with too many workers: {exc}") from None
        finally:
            client.cancel(futures + [shared])
            self.usage.update(usage(client))


@contextmanager
def fitting_on(address: str, batch_labels: int | None = None) -> Iterator[dict[str, Any]]:
    """Inside the block, every ``linear.fit_one_vs_rest`` fits on the cluster at ``address``.

    Yields a summary for the metadata: the address, the number of workers, and (updated in
    place after each fit, so it is current when the metadata is written) the peak RSS of
    the client and of each worker.
    """
    from classifier.linear import label_backend

    with connect(address) as client:
        backend = DaskLabels(client, batch_labels)
        summary = {"address": address, "workers": len(client.nthreads()), "usage": backend.usage}
        with label_backend(backend):
            yield summary
