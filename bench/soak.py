"""Soak test of ``tagger serve``: sustained open-loop load while hot-swapping the model.

    python -m bench.soak [--model-dir DIR --model NAME[@VERSION] | --train-sample
                          | --train-tiku] [--minutes 10] [--load 0.7]
                          [--reload-every 60] [--port 8766] [--workers 1]
                          [--data ../shared/data] [--out bench/out]

1. Model: copy the given version into a scratch models folder, or train one there (the
   sample corpus data/sample, or tiku/train as bench.perf does), then save a second version
   of it (same model, new version id) so reloads can alternate between two versions.
2. Start ``tagger serve`` on 127.0.0.1:--port with a random ``TAGGER_ADMIN_TOKEN``, serving
   the first version.
3. Capacity: 16 concurrent closed-loop clients for 15 s sending one-text POST /v1/predict
   (the first 300 characters of each of the first 500 tiku/test documents); req/s.
4. Soak: an open-loop generator starts requests at a fixed rate of --load × capacity for
   --minutes (at most 16 in flight; starts more than 10 ms behind schedule are counted as
   late), while POST /v1/admin/reload alternates between the two versions every
   --reload-every seconds. Every answer must be HTTP 200, hold one result and name one of the
   two versions; anything else (or an exception) is an error, counted by kind.
5. Server RSS (sum over its process tree) every 10 s; its growth = (end − start) / start.

Load comes from bench.loadgen, closed loop for the capacity and open loop for the soak.
Prints a markdown report and writes bench/out/soak-<timestamp>.json (or --out). The server is
always stopped, also on Ctrl-C, SIGTERM and errors. Exit code 0 when there were no request
errors, no failed reload, no stale answer (one from the version before a reload that had
answered), RSS grew less than 10 % and the server stayed up; 1 otherwise, 130
when interrupted. The load generator shares the machine with the server: see client CPU s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import library, loadgen
from bench.harness import (
    HOST,
    ROOT,
    Report,
    Server,
    Table,
    arguments,
    client_cpu_s,
    first_texts,
    fmt,
    logger,
    pct,
    phase,
    process_tree,
    tail,
    train_model,
    tree_cpu_s,
    tree_rss_mb,
    warm,
)

TEXTS = 500
TEXT_CHARS = 300
CAPACITY_CLIENTS = 16
CAPACITY_SECONDS = 15.0
# No more in flight than the clients capacity was measured with: a generator that falls
# behind then queues requests on its side, where lateness shows it, instead of opening ever
# more connections (a client's CPU per request grows with them, so it would stay behind).
MAX_IN_FLIGHT = CAPACITY_CLIENTS
LATE_S = 0.010
RSS_EVERY_S = 10.0
REQUEST_TIMEOUT_S = 30.0
RELOAD_TIMEOUT_S = 180.0
DRAIN_S = 60.0
RSS_GROWTH_LIMIT = 0.10
MAX_MESSAGES = 10

log = logger("soak")


# --- models -------------------------------------------------------------------------------
def prepare_models(args: argparse.Namespace, scratch: Path) -> tuple[Path, list[str], dict]:
    """A scratch models folder holding two versions of the model; its refs and how it was made."""
    models = scratch / "models"
    info: dict[str, Any] = {}
    if args.train_tiku:
        models, info = train_model(args.data / "tiku" / "train", scratch, "tiku", jobs=2)
        folder = Path(info["folder"])
    elif args.train_sample:
        models, info = train_model(ROOT / "data" / "sample", scratch, "default")
        folder = Path(info["folder"])
    else:
        source = library.resolve(args.model_dir, args.model)
        folder = models / source.parent.name / source.name
        shutil.copytree(source, folder)
        info = {"copied_from": str(source)}
    first = f"{folder.parent.name}@{folder.name}"
    refs = [first, library.save_copy(models, first)]
    log(f"versions: {refs[0]} (served first) and {refs[1]}")
    return models, refs, info


# --- the soak -----------------------------------------------------------------------------
@dataclass
class Soak:
    """What the soak phase observed (times are seconds since its start)."""

    paced: loadgen.Paced | None = None
    reloads: list[dict[str, Any]] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)
    helper_errors: Counter[str] = field(default_factory=Counter)
    helper_messages: list[str] = field(default_factory=list)

    @property
    def answers(self) -> list[loadgen.Answer]:
        return self.paced.answers if self.paced else []

    @property
    def ok(self) -> list[loadgen.Answer]:
        return [a for a in self.answers if a.ok]


async def reloader(
    port: int, refs: list[str], token: str, every: float, seconds: float, t0: float, soak: Soak
) -> None:
    """POST /v1/admin/reload every ``every`` s, alternating versions (the second one first)."""
    headers = {"Authorization": f"Bearer {token}"}
    k = 1
    while k * every < seconds:
        await asyncio.sleep(max(0.0, t0 + k * every - time.perf_counter()))
        target = refs[k % 2]
        start = time.perf_counter()
        record: dict[str, Any] = {
            "n": k,
            "model": target,
            "at_s": start - t0,
            "status": "unfinished",
            "ok": False,
            "duration_s": float("nan"),
            "done_s": float("inf"),
        }
        soak.reloads.append(record)  # a reload that never returns stays a failed one
        try:
            # A connection of its own: an idle keep-alive connection may be closed by the
            # server (uvicorn: after 5 s) just as the next reload reuses it.
            req = loadgen.Request.post("/v1/admin/reload", {"model": target}, headers=headers)
            status, body = await loadgen.fetch(HOST, port, req, RELOAD_TIMEOUT_S)
            record["status"] = status
            served = json.loads(body).get("model") if status == 200 else None
            record["ok"] = served == target
            if not record["ok"]:
                record["detail"] = body[:300].decode(errors="replace")
        except Exception as exc:  # any exception fails this reload, recorded by type
            record.update(status=type(exc).__name__, ok=False, detail=str(exc)[:300])
        record["duration_s"] = time.perf_counter() - start
        record["done_s"] = record["at_s"] + record["duration_s"]
        log(
            f"reload {k} to {target}: {record['status']} in {record['duration_s']:.2f} s"
            + ("" if record["ok"] else f" FAILED {record.get('detail', '')}")
        )
        k += 1


async def rss_sampler(pid: int, seconds: float, t0: float, soak: Soak) -> None:
    """Sample the server tree's RSS every RSS_EVERY_S seconds from 0 until ``seconds``."""
    k = 0
    while k * RSS_EVERY_S < seconds:
        await asyncio.sleep(max(0.0, t0 + k * RSS_EVERY_S - time.perf_counter()))
        soak.rss.append((time.perf_counter() - t0, await asyncio.to_thread(tree_rss_mb, pid)))
        k += 1


async def soak_load(
    server: Server,
    reqs: list[loadgen.Request],
    rate: float,
    seconds: float,
    refs: list[str],
    token: str,
    reload_every: float,
) -> Soak:
    """Open-loop requests at ``rate``/s for ``seconds`` with periodic reloads and RSS samples."""
    soak = Soak()
    t0 = time.perf_counter()
    helpers = [
        asyncio.create_task(rss_sampler(server.pid, seconds, t0, soak)),
        asyncio.create_task(reloader(server.port, refs, token, reload_every, seconds, t0, soak)),
    ]
    soak.paced = await loadgen.open_loop(
        HOST,
        server.port,
        reqs,
        rate,
        max(1, math.floor(rate * seconds)),
        max_in_flight=MAX_IN_FLIGHT,
        timeout_s=REQUEST_TIMEOUT_S,
        drain_s=DRAIN_S,
        models=refs,
        t0=t0,
    )
    _, pending_helpers = await asyncio.wait(helpers, timeout=RELOAD_TIMEOUT_S)
    for task in pending_helpers:
        task.cancel()
    for task in helpers:
        if task.done() and not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            soak.helper_errors[f"helper {type(exc).__name__}"] += 1
            soak.helper_messages.append(f"helper task failed: {exc!r}")
    return soak


def stale_answers(soak: Soak, refs: list[str]) -> int:
    """Answers naming a wrong version: sent after a reload returned, answered before the next."""
    # Requests overlapping a reload may get either version and are not counted. A reload
    # answers once every worker has swapped (two phases), so any other answer is stale.
    epochs: list[tuple[float, float, str]] = []  # (sent from, answered by, expected model)
    start, expected = float("-inf"), refs[0]
    for r in soak.reloads:
        epochs.append((start, r["at_s"], expected))
        start = r["done_s"]
        if r["ok"]:
            expected = r["model"]
    epochs.append((start, float("inf"), expected))
    return sum(
        any(lo <= a.sent and a.end <= hi and a.model != want for lo, hi, want in epochs)
        for a in soak.ok
    )


def windows(soak: Soak, seconds: float) -> list[dict[str, Any]]:
    """Requests finished, errors and p99 latency per RSS_EVERY_S window of the soak."""
    n = max(1, math.ceil(seconds / RSS_EVERY_S))
    buckets: list[list[loadgen.Answer]] = [[] for _ in range(n + 1)]
    for a in soak.answers:
        buckets[min(n, int(a.end // RSS_EVERY_S))].append(a)
    out = []
    for k, bucket in enumerate(buckets):
        lat = [a.end - a.sent for a in bucket if a.ok]
        out.append(
            {
                "from_s": k * RSS_EVERY_S,
                "finished": len(bucket),
                "errors": sum(not a.ok for a in bucket),
                "p99_ms": pct(lat, 99) * 1e3,
                "max_ms": max(lat) * 1e3 if lat else float("nan"),
            }
        )
    return out


def around_reloads(soak: Soak) -> dict[str, Any]:
    """p99 latency of answers finished during a reload (until 1 s after it) and of the rest."""
    spans = [
        (r["at_s"], min(r["done_s"], r["at_s"] + RELOAD_TIMEOUT_S) + 1.0) for r in soak.reloads
    ]
    during, other = [], []
    for a in soak.ok:
        (during if any(lo <= a.end <= hi for lo, hi in spans) else other).append(a.end - a.sent)
    return {
        "answers": len(during),
        "p99_ms": pct(during, 99) * 1e3,
        "max_ms": max(during, default=float("nan")) * 1e3,
        "p99_ms_otherwise": pct(other, 99) * 1e3,
    }


def summarise(soak: Soak, seconds: float, rate: float, refs: list[str]) -> dict[str, Any]:
    """The soak's numbers for the report and the JSON."""
    assert soak.paced is not None
    paced, good = soak.paced, soak.ok
    failed = [a for a in soak.answers if not a.ok]
    by_kind = Counter(a.kind for a in failed) + soak.helper_errors
    if paced.unfinished:
        by_kind["unfinished after drain"] += paced.unfinished
    messages = [f"t={a.end:.1f}s {a.kind}: {a.detail[:200]}" for a in failed[:MAX_MESSAGES]]
    latencies = [a.end - a.sent for a in good]
    from_schedule = [a.end - a.due for a in good]
    models = Counter(a.model for a in good)
    rss = [mb for _, mb in soak.rss]
    start_rss, end_rss = (rss[0], rss[-1]) if rss else (float("nan"), float("nan"))
    durations = [r["duration_s"] for r in soak.reloads if r["ok"]]
    errors = sum(by_kind.values())
    return {
        "seconds": seconds,
        "wall_s": paced.wall_s,
        "target_req_per_s": rate,
        "achieved_req_per_s": (len(good) + errors) / paced.wall_s if paced.wall_s else math.nan,
        "scheduled": paced.scheduled,
        "ok": len(good),
        "errors": errors,
        "errors_by_kind": dict(by_kind),
        "error_messages": messages + soak.helper_messages,
        "late_starts": sum(x > LATE_S for x in paced.lateness),
        "lateness_p99_ms": pct(paced.lateness, 99) * 1e3,
        "lateness_max_ms": max(paced.lateness, default=float("nan")) * 1e3,
        "waited_for_in_flight_slot": paced.waited_for_slot,
        "max_in_flight": paced.max_in_flight,
        "p50_ms": pct(latencies, 50) * 1e3,
        "p99_ms": pct(latencies, 99) * 1e3,
        "max_ms": max(latencies, default=float("nan")) * 1e3,
        "from_schedule_p99_ms": pct(from_schedule, 99) * 1e3,
        "from_schedule_max_ms": max(from_schedule, default=float("nan")) * 1e3,
        "answers_by_model": {ref: models[ref] for ref in refs},
        "stale_answers": stale_answers(soak, refs),
        "reloads": soak.reloads,
        "reloads_ok": sum(r["ok"] for r in soak.reloads),
        "reloads_failed": sum(not r["ok"] for r in soak.reloads),
        "reload_median_s": float(np.median(durations)) if durations else float("nan"),
        "reload_max_s": max(durations, default=float("nan")),
        "rss_samples_mb": soak.rss,
        "rss_start_mb": start_rss,
        "rss_end_mb": end_rss,
        "rss_max_mb": max(rss, default=float("nan")),
        "rss_growth": (end_rss - start_rss) / start_rss if rss else float("nan"),
        "during_reloads": around_reloads(soak),
        "windows": windows(soak, seconds),
    }


# --- report -------------------------------------------------------------------------------
def tables(report: dict[str, Any]) -> list[Table]:
    """The summary table and the table of reloads."""
    cap, s = report["capacity"], report["soak"]
    kinds = ", ".join(f"{k}: {v}" for k, v in sorted(s["errors_by_kind"].items())) or "none"
    answers = ", ".join(f"{ref.split('@')[1]}: {n:,}" for ref, n in s["answers_by_model"].items())
    summary = Table(
        f"soak: tagger serve --workers {report['workers']}, model {report['refs'][0]} ⇄ "
        f"{report['refs'][1].split('@')[1]}",
        ["metric", "value"],
        [
            [
                "capacity (16 clients, 15 s)",
                f"{fmt(cap['req_per_s'], 1)} req/s, p50 {fmt(cap['p50_ms'])} ms, "
                f"p99 {fmt(cap['p99_ms'])} ms, {cap['errors']} errors",
            ],
            ["duration", f"{fmt(s['seconds'], 0)} s planned, {fmt(s['wall_s'], 1)} s wall"],
            ["target rate", f"{fmt(s['target_req_per_s'], 1)} req/s ({report['load']} × capacity)"],
            ["achieved rate", f"{fmt(s['achieved_req_per_s'], 1)} req/s"],
            [
                "requests",
                f"{s['scheduled']:,} scheduled, {s['ok']:,} ok; {s['late_starts']:,} started "
                f"> {LATE_S * 1e3:.0f} ms late (p99 {fmt(s['lateness_p99_ms'])} ms, max "
                f"{fmt(s['lateness_max_ms'], 0)} ms), {s['waited_for_in_flight_slot']:,} waited "
                f"for one of {MAX_IN_FLIGHT} slots; max in flight {s['max_in_flight']}",
            ],
            ["errors", f"{s['errors']:,} ({kinds})"],
            [
                "latency p50 / p99 / max",
                f"{fmt(s['p50_ms'])} / {fmt(s['p99_ms'])} / {fmt(s['max_ms'], 0)} ms (from send); "
                f"p99 / max from schedule {fmt(s['from_schedule_p99_ms'])} / "
                f"{fmt(s['from_schedule_max_ms'], 0)} ms",
            ],
            ["answers by version", f"{answers}; stale after a reload: {s['stale_answers']:,}"],
            [
                "reloads ok / failed",
                f"{s['reloads_ok']} / {s['reloads_failed']}, median {fmt(s['reload_median_s'])} s,"
                f" max {fmt(s['reload_max_s'])} s",
            ],
            [
                "latency during reloads",
                f"p99 {fmt(s['during_reloads']['p99_ms'])} ms, max "
                f"{fmt(s['during_reloads']['max_ms'], 0)} ms over "
                f"{s['during_reloads']['answers']:,} answers (p99 otherwise "
                f"{fmt(s['during_reloads']['p99_ms_otherwise'])} ms)",
            ],
            [
                "server RSS start / end / max",
                f"{fmt(s['rss_start_mb'], 1)} / {fmt(s['rss_end_mb'], 1)} / "
                f"{fmt(s['rss_max_mb'], 1)} MB; growth {fmt(s['rss_growth'] * 100, 1)} %",
            ],
            [
                "server CPU s",
                f"{fmt(s['server_cpu_s'], 1)} ({fmt(s['server_cpu_ms_per_req'])} ms/req)",
            ],
            [
                "client CPU s",
                f"{fmt(s['client_cpu_s'], 1)} ({fmt(s['client_cpu_ms_per_req'])} ms/req)",
            ],
            [
                "verdict",
                "PASS" if not report["failures"] else "FAIL: " + "; ".join(report["failures"]),
            ],
        ],
    )
    worst = max(s["windows"], key=lambda w: -1.0 if math.isnan(w["p99_ms"]) else w["p99_ms"])
    summary.notes += [
        "latency from send: request start to response; from schedule: from the start time the "
        "open-loop schedule gave it (includes waiting for the event loop or a free slot).",
        f"worst {RSS_EVERY_S:.0f}-s window by p99: from {worst['from_s']:.0f} s, p99 "
        f"{fmt(worst['p99_ms'])} ms, max {fmt(worst['max_ms'], 0)} ms, {worst['finished']} "
        "finished (all windows in the JSON).",
        f"RSS sampled every {RSS_EVERY_S:.0f} s over the server's process tree: "
        + ", ".join(f"{mb:.0f}" for _, mb in s["rss_samples_mb"])
        + " MB.",
        f"machine: {report['machine']['cpus']} CPUs, load average "
        f"{report['machine']['loadavg_start'][0]:.2f} at start, "
        f"{report['machine'].get('loadavg_end', [float('nan')])[0]:.2f} at end.",
    ]
    behind = s["achieved_req_per_s"] < 0.97 * s["target_req_per_s"] or s["lateness_max_ms"] > 5e3
    if behind:
        summary.notes.append(
            f"the schedule was not kept (achieved {fmt(s['achieved_req_per_s'], 1)} of "
            f"{fmt(s['target_req_per_s'], 1)} req/s, starts up to "
            f"{fmt(s['lateness_max_ms'] / 1e3, 1)} s late): server and load generator together "
            "could not sustain the target rate on this machine at the time (other jobs share "
            "the cores), so requests queued; see latency from schedule."
        )
    elif s["late_starts"] > 0.01 * s["scheduled"]:
        summary.notes.append(
            f"{s['late_starts'] / s['scheduled']:.1%} of starts were late (p99 "
            f"{fmt(s['lateness_p99_ms'])} ms): short stalls of the load generator or waits for a "
            "slot, the rate was kept overall."
        )
    if s["error_messages"]:
        summary.notes.append("first errors: " + " | ".join(s["error_messages"][:3]))
    reloads = Table(
        "soak: reloads",
        ["#", "at s", "to version", "status", "duration s", "ok"],
        [
            [
                str(r["n"]),
                fmt(r["at_s"], 1),
                r["model"].split("@")[1],
                str(r["status"]),
                fmt(r["duration_s"]),
                "yes" if r["ok"] else "NO: " + r.get("detail", "")[:80].replace("|", "/"),
            ]
            for r in s["reloads"]
        ],
    )
    return [summary, reloads]


def failures(report: dict[str, Any]) -> list[str]:
    """Why this run fails as a check (empty when it passes)."""
    s, out = report["soak"], []
    if report["capacity"]["errors"]:
        out.append(f"{report['capacity']['errors']} errors while measuring capacity")
    if s["errors"]:
        out.append(f"{s['errors']} request errors")
    if s["reloads_failed"]:
        out.append(f"{s['reloads_failed']} reloads failed")
    if s["stale_answers"]:
        out.append(f"{s['stale_answers']} answers from the version before a finished reload")
    if not s["rss_growth"] < RSS_GROWTH_LIMIT:
        out.append(f"RSS grew {s['rss_growth']:.1%} (limit {RSS_GROWTH_LIMIT:.0%})")
    if not report.get("alive_after", False):
        out.append("the server was not running at the end")
    return out


# --- main ---------------------------------------------------------------------------------
def on_sigterm(signum: int, frame: object) -> None:
    """Stop on SIGTERM as on Ctrl-C: cancel the running asyncio tasks, else interrupt."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise KeyboardInterrupt from None
    for task in asyncio.all_tasks(loop):
        task.cancel()


def predict_requests(data: Path) -> list[loadgen.Request]:
    """One-text predicts: the first TEXT_CHARS characters of the first TEXTS documents."""
    texts = [t[:TEXT_CHARS] for t in first_texts(data / "tiku" / "test", TEXTS)]
    return [loadgen.Request.post("/v1/predict", {"text": t}) for t in texts if t.strip()]


def run(args: argparse.Namespace, scratch: Path, report: dict[str, Any]) -> None:
    """Prepare the models, start the server, measure capacity and soak; fill ``report``."""
    reqs = predict_requests(args.data)
    models, refs, report["model"] = prepare_models(args, scratch)
    report["refs"] = refs
    token = secrets.token_urlsafe(24)
    server = Server(
        models,
        refs[0],
        args.port,
        args.workers,
        scratch / "serve.log",
        {"TAGGER_ADMIN_TOKEN": token},
    )
    try:
        with server:
            report["startup_s"] = server.startup_s
            report["processes"] = len(process_tree(server.pid))
            log(f"server ready after {server.startup_s:.1f} s, {report['processes']} processes")
            warm(server, reqs)
            log(f"capacity: {CAPACITY_CLIENTS} clients for {CAPACITY_SECONDS:.0f} s")
            cap = phase(server, reqs, CAPACITY_CLIENTS, seconds=CAPACITY_SECONDS)
            report["capacity"] = cap
            if not cap["ok"]:
                raise RuntimeError(f"no successful request while measuring capacity: {cap}")
            rate = args.load * cap["req_per_s"]
            seconds = args.minutes * 60
            log(
                f"capacity {cap['req_per_s']:.1f} req/s ({cap['errors']} errors); soak at "
                f"{rate:.1f} req/s for {seconds:.0f} s, reload every {args.reload_every:.0f} s"
            )
            server0, client0 = tree_cpu_s(server.pid), client_cpu_s()
            soak = loadgen.run(
                soak_load(server, reqs, rate, seconds, refs, token, args.reload_every)
            )
            server_cpu, client_cpu = tree_cpu_s(server.pid) - server0, client_cpu_s() - client0
            soak.rss.append((soak.paced.wall_s, tree_rss_mb(server.pid)))
            s = summarise(soak, seconds, rate, refs)
            done = max(1, s["ok"] + s["errors"])
            s.update(
                server_cpu_s=server_cpu,
                client_cpu_s=client_cpu,
                server_cpu_ms_per_req=server_cpu / done * 1e3,
                client_cpu_ms_per_req=client_cpu / done * 1e3,
            )
            report["soak"] = s
            report["alive_after"] = server.alive()
    finally:
        report["server_log_tail"] = tail(server.log_path, 30)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = arguments("soak", __doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-dir", type=Path, help="models folder holding --model")
    source.add_argument("--train-sample", action="store_true", help="train on data/sample first")
    source.add_argument("--train-tiku", action="store_true", help="train on tiku/train first")
    parser.add_argument("--model", default="default", help="NAME[@VERSION] in --model-dir")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--load", type=float, default=0.7, help="soak rate as share of capacity")
    parser.add_argument("--reload-every", type=float, default=60.0, help="seconds")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= 24 * 60:
        parser.error("--minutes must be in (0, 1440]")
    if not 0 < args.load <= 2:
        parser.error("--load must be in (0, 2]")
    if args.reload_every <= 0:
        parser.error("--reload-every must be positive")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak, print the report, write the JSON; 0 when the check passes."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, on_sigterm)  # the server is stopped on SIGTERM too
    report = Report(
        "soak",
        args.out,
        args={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        workers=args.workers,
        load=args.load,
    )
    data = report.data
    scratch = Path(tempfile.mkdtemp(prefix="tagger-soak-"))
    code = 0
    try:
        run(args, scratch, data)
        report.end()
        data["failures"] = failures(data)
        for table in tables(data):
            report.show(table)
        code = 1 if data["failures"] else 0
    except (KeyboardInterrupt, asyncio.CancelledError):
        log("interrupted; the server was stopped")
        data["failures"] = ["interrupted"]
        code = 130
    except Exception as exc:  # still write what was measured, and fail the check
        log(f"FAILED: {type(exc).__name__}: {exc}")
        data["failures"] = [f"{type(exc).__name__}: {exc}"]
        code = 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    path = report.write()
    print(f"{data['seconds']:.0f} s in all; exit code {code}; wrote {path}")
    return code


if __name__ == "__main__":
    sys.exit(main())
