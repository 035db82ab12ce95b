"""What the benchmark scripts share: timing, process metrics, tables, the report, the server.

* ``arguments``: the command line with the options every script spells alike; ``logger``;
* timing: ``timed``, ``med``, ``pct``, ``rotated``, ``latencies``; inputs: the first texts
  of a corpus, a scratch model (``train_model``);
* process metrics from /proc: RSS and CPU seconds of a process tree, this process's CPU;
* ``Table`` and ``markdown_table`` for the printed markdown, ``fmt`` for its cells;
* ``Report``: one run's JSON in bench/out/<name>-<timestamp>.json and the tables it prints;
* ``Server``: ``tagger serve`` started in its own session, waited for, always stopped;
  ``phase`` runs one closed-loop load phase against it and adds server and client CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench import library, loadgen

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "bench" / "out"
HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 180.0
WARMUP_REQUESTS = 20
CLK_TCK = os.sysconf("SC_CLK_TCK")


def arguments(
    name: str,
    doc: str | None,
    *,
    data: bool = True,
    out: bool = True,
    corpora: Sequence[str] = (),
    sets: str | None = None,
) -> argparse.ArgumentParser:
    """The command line of ``python -m bench.NAME``, with the options the scripts share.

    Described by the docstring's first line; ``--data`` (the corpora) and ``--out`` (the
    report's folder); with ``corpora``, ``--corpora`` (those by default) and ``--jobs``;
    with ``sets`` (its help), ``--set KEY=VALUE`` into ``args.sets``.
    """
    parser = argparse.ArgumentParser(
        prog=f"python -m bench.{name}", description=(doc or "").split("\n")[0]
    )
    if data:
        parser.add_argument("--data", type=Path, default=DATA, help="folder of the corpora")
    if corpora:
        parser.add_argument("--corpora", nargs="+", default=list(corpora))
        parser.add_argument("--jobs", type=int, default=2)
    if sets is not None:
        parser.add_argument(
            "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help=sets
        )
    if out:
        parser.add_argument("--out", type=Path, default=OUT, help="folder of the JSON report")
    return parser


def logger(name: str) -> Callable[[str], None]:
    """A function printing ``[name HH:MM:SS] message`` progress lines on stderr."""

    def log(message: str) -> None:
        print(f"[{name} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    return log


# --- timing -------------------------------------------------------------------------------
def cpu_seconds() -> float:
    """CPU seconds of this process and of its child processes alive now (``--jobs`` fits
    in loky worker processes, which outlive a fit): the delta over a step counts both."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:  # gone meanwhile
            pass
    return total


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Run ``fn``; return wall seconds, CPU seconds (this process and its worker processes)
    and its result."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, cpu_seconds() - c0, result


def latencies(fn: Callable[[int], Any], n: int) -> list[float]:
    """Wall seconds of ``fn(i)`` for each i < n."""
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        lat.append(time.perf_counter() - t0)
    return lat


def med(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    return float(np.median(values))


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile, NaN for an empty sequence."""
    return float(np.percentile(values, q)) if len(values) else float("nan")


def rotated(items: list[str], k: int) -> list[str]:
    """``items`` rotated by ``k``, so no candidate always runs first within a repeat."""
    k %= len(items)
    return items[k:] + items[:k]


# --- inputs -------------------------------------------------------------------------------
def first_texts(folder: Path, n: int) -> list[str]:
    """The texts of the first ``n`` documents of a corpus folder (sorted file order)."""
    return [doc.text for doc, _ in zip(library.documents(folder), range(n), strict=False)]


def first_megabytes(folder: Path, mb: float) -> list[str]:
    """Whole document texts from the start of a corpus folder until ``mb`` MB of UTF-8."""
    texts: list[str] = []
    size = 0
    for doc in library.documents(folder):
        if size >= mb * 1e6:
            break
        texts.append(doc.text)
        size += len(doc.text.encode())
    return texts


def token_agreement(a: list[str], b: list[str]) -> tuple[int, int]:
    """Tokens of ``a`` whose (start, end) span also occurs in ``b``; and len(a)."""

    def spans(tokens: list[str]) -> set[tuple[int, int]]:
        out, pos = set(), 0
        for t in tokens:
            out.add((pos, pos + len(t)))
            pos += len(t)
        return out

    return len(spans(a) & spans(b)), len(a)


def train_model(
    corpus: Path, scratch: Path, name: str, sets: Sequence[str] = (), jobs: int = 1
) -> tuple[Path, dict[str, Any]]:
    """Train ``name`` on a corpus folder into scratch/models; return that folder and timings."""
    log = logger("train")
    log(f"training {name} on {corpus} (jobs={jobs}, {' '.join(sets) or 'defaults'})")
    models = scratch / "models"
    cfg = library.config(sets)
    wall, cpu, res = timed(lambda: library.train([corpus], models, name, cfg, jobs))
    log(f"trained {res.folder} in {wall:.0f} s")
    return models, {"folder": str(res.folder), "wall_s": wall, "parent_cpu_s": cpu}


# --- process metrics (/proc) --------------------------------------------------------------
def proc_stat(pid: int) -> tuple[int, float] | None:
    """Parent pid and CPU seconds (utime + stime) of a process, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def vm_rss_mb(pid: int | str = "self") -> float:
    """VmRSS of a process in MB (0 when it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cmdline(pid: int) -> str:
    """The command line of a process, shortened ('' when it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\x00", b" ").decode(errors="replace").strip()[:200]


def process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := proc_stat(int(entry))) is not None:
            parents[int(entry)] = stat[0]
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree += frontier
    return tree


def tree_cpu_s(root: int) -> float:
    """CPU seconds used so far by a process tree (live processes only)."""
    return sum(s[1] for pid in process_tree(root) if (s := proc_stat(pid)) is not None)


def tree_rss_mb(root: int) -> float:
    """Sum of VmRSS over a process tree, in MB."""
    return sum(vm_rss_mb(pid) for pid in process_tree(root))


def tree_rss(root: int) -> dict[int, dict[str, Any]]:
    """RSS and command line of each process of a tree."""
    return {pid: {"rss_mb": vm_rss_mb(pid), "cmd": cmdline(pid)} for pid in process_tree(root)}


def client_cpu_s() -> float:
    """CPU seconds used so far by this process (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu_s() -> float:
    """CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- tables -------------------------------------------------------------------------------
def fmt(x: float | None, digits: int = 2) -> str:
    """Format a number for a table cell (``-`` when missing)."""
    if x is None or not np.isfinite(x):
        return "-"
    return f"{x:,.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table: header, rule and one line per row."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


@dataclass
class Table:
    """A titled markdown table with notes printed under it."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        """Render the table as markdown."""
        lines = [f"### {self.title}", "", markdown_table(self.headers, self.rows)]
        if self.notes:
            lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


# --- the report ---------------------------------------------------------------------------
class Report:
    """One run: its JSON report and the tables it prints.

    ``data`` starts with when and how the run was started, the machine and the library
    versions; a script adds its results. ``write`` puts it in OUT/<name>-<timestamp>.json.
    """

    def __init__(self, name: str, out: Path, **fields: Any) -> None:
        self.name, self.out = name, out
        self.started = datetime.now(UTC)
        self.data: dict[str, Any] = {
            "started": self.started.isoformat(timespec="seconds"),
            "command": [sys.executable, *sys.argv],
            **fields,
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "loadavg_start": os.getloadavg(),
            },
            "versions": library.versions(),
        }

    @property
    def stem(self) -> str:
        """``<name>-<timestamp>``, the name of what this run writes."""
        return f"{self.name}-{self.started:%Y%m%d-%H%M%S}"

    def show(self, table: Table | str) -> None:
        """Print a table (or any markdown) now, and keep it in the report."""
        text = table.markdown() if isinstance(table, Table) else table
        print(text, flush=True)
        self.data.setdefault("tables", []).append(text)

    def end(self) -> None:
        """Record the load average and the seconds so far (once; ``write`` does it too)."""
        self.data["machine"].setdefault("loadavg_end", os.getloadavg())
        self.data["seconds"] = (datetime.now(UTC) - self.started).total_seconds()

    def load_line(self) -> str:
        """``load average A at start, B at end (N CPUs)``."""
        m = self.data["machine"]
        return (
            f"load average {m['loadavg_start'][0]:.2f} at start, {m['loadavg_end'][0]:.2f} at "
            f"end ({m['cpus']} CPUs)"
        )

    def write(self, path: Path | None = None) -> Path:
        """Write the JSON to ``path`` (default OUT/<stem>.json) and return where it went."""
        self.end()
        path = path or self.out / f"{self.stem}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.data, ensure_ascii=False, indent=2, default=str) + "\n")
        return path


# --- the server ---------------------------------------------------------------------------
def port_in_use(port: int) -> bool:
    """Whether something already listens on HOST:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex((HOST, port)) == 0


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file."""
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Server:
    """``tagger serve`` on HOST:port in its own session, its output in a log file.

    Use as a context manager: entering starts it and waits until it answers and every
    worker has loaded (``startup_s``); leaving always stops it.
    """

    def __init__(
        self,
        models_dir: Path,
        ref: str,
        port: int,
        workers: int,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port, self.log_path = port, log_path
        options = {"--models-dir": models_dir, "--model": ref, "--host": HOST, "--port": port}
        options["--workers"] = workers
        self.command = library.cli_command() + ["serve"]
        for option, value in options.items():
            self.command += [option, str(value)]
        self.env = {**os.environ, "TAGGER_DEBUG": "1", **(extra_env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s = float("nan")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> Server:
        if port_in_use(self.port):
            raise RuntimeError(f"{HOST}:{self.port} is already in use; choose another --port")
        with self.log_path.open("wb") as log_file:
            self.proc = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            self.startup_s = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_ready(self) -> float:
        """Wait for /healthz, then for the server's CPU to settle (every worker loaded)."""
        assert self.proc is not None
        t0 = time.perf_counter()
        deadline = t0 + STARTUP_TIMEOUT_S
        healthz = loadgen.Request.make("GET", "/healthz")
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}: {tail(self.log_path)}"
                )
            if time.perf_counter() > deadline:
                raise RuntimeError(
                    f"no /healthz after {STARTUP_TIMEOUT_S:.0f} s: {tail(self.log_path)}"
                )
            try:
                status, _ = asyncio.run(loadgen.fetch(HOST, self.port, healthz, 5.0))
                if status == 200:
                    break
            except (OSError, asyncio.IncompleteReadError, ValueError):
                pass  # not listening yet (TimeoutError is an OSError)
            time.sleep(0.2)
        previous = tree_cpu_s(self.pid)
        while time.perf_counter() < deadline:
            time.sleep(1.0)
            current = tree_cpu_s(self.pid)
            if current - previous < 0.05:
                break
            previous = current
        return time.perf_counter() - t0

    def stop(self) -> None:
        """SIGTERM the server (it stops its workers), then SIGKILL its process group."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the session started for this server only
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def warm(server: Server, reqs: list[loadgen.Request]) -> None:
    """Send WARMUP_REQUESTS from 2 clients, unmeasured, before the first measured phase."""
    loadgen.closed_loop(HOST, server.port, reqs, 2, count=WARMUP_REQUESTS)


def phase(
    server: Server,
    reqs: list[loadgen.Request],
    clients: int,
    count: int | None = None,
    seconds: float | None = None,
) -> dict[str, Any]:
    """One closed-loop load phase; with the server's and this client's CPU, the server RSS."""
    server0, client0 = tree_cpu_s(server.pid), client_cpu_s()
    res = loadgen.closed_loop(HOST, server.port, reqs, clients, count, seconds)
    server_cpu, client_cpu = tree_cpu_s(server.pid) - server0, client_cpu_s() - client0
    lat = res.latencies
    return {
        "clients": clients,
        "requests": res.ok + res.errors,
        "ok": res.ok,
        "errors": res.errors,
        "error_messages": res.messages,
        "wall_s": res.wall_s,
        "req_per_s": res.ok / res.wall_s if res.wall_s else float("nan"),
        "items_per_s": res.items / res.wall_s if res.wall_s else float("nan"),
        "p50_ms": pct(lat, 50) * 1e3,
        "p99_ms": pct(lat, 99) * 1e3,
        "mean_ms": float(np.mean(lat)) * 1e3 if lat else float("nan"),
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
        "server_cpu_ms_per_req": server_cpu / max(res.ok, 1) * 1e3,
        "server_rss_mb": tree_rss_mb(server.pid),
    }
