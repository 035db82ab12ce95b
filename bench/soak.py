"""Soak test of ``tagger serve``: sustained open-loop load while hot-swapping the model.

    .venv/bin/python bench/soak.py [--model-dir DIR --model NAME[@VERSION] | --train-sample
                                    | --train-tiku] [--minutes 10] [--load 0.7]
                                    [--reload-every 60] [--port 8766] [--workers 1]
                                    [--data ../shared/data] [--out bench/out]

1. Model: copy the given version into a scratch models folder, or train one there (the
   sample corpus data/sample, or tiku/train as bench/perf.py does), then save a second version
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

Prints a markdown report and writes bench/out/soak-<timestamp>.json (or --out). The server is
always stopped, also on Ctrl-C, SIGTERM and errors. Exit code 0 when there were no request
errors, no failed reload, RSS grew less than 10 % and the server stayed up; 1 otherwise, 130
when interrupted. The load generator shares the machine with the server: see client CPU s.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from perf import (  # noqa: E402  (perf.py also puts the project root on sys.path)
    ROOT,
    WARMUP_REQUESTS,
    Req,
    Table,
    client_cpu_s,
    first_texts,
    fmt,
    pct,
    port_in_use,
    process_tree,
    run_phase,
    start_server,
    stop_server,
    tail,
    timed,
    train_tiku,
    tree_cpu_s,
    tree_rss_mb,
    wait_ready,
)

from classifier.persistence import load_model, new_version, resolve, save_model  # noqa: E402
from training.train import library_versions  # noqa: E402

TEXTS = 500
TEXT_CHARS = 300
CAPACITY_CLIENTS = 16
CAPACITY_SECONDS = 15.0
# httpx's client CPU per request grows with open connections (on this machine ~1.3 ms at 8,
# 2 ms at 16, 3.8 ms at 64 in flight): with 64 allowed, a generator that falls behind
# stays behind, as the backlog itself makes the client slower. 16 = the capacity clients.
MAX_IN_FLIGHT = CAPACITY_CLIENTS
LATE_S = 0.010
RSS_EVERY_S = 10.0
REQUEST_TIMEOUT_S = 30.0
RELOAD_TIMEOUT_S = 180.0
DRAIN_S = 60.0
RSS_GROWTH_LIMIT = 0.10
MAX_MESSAGES = 10
JSON_HEADERS = {"content-type": "application/json"}


def log(message: str) -> None:
    """Progress message on stderr."""
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- models and server --------------------------------------------------------------------
def second_version(models_dir: Path, ref: str) -> str:
    """Save the model of ``ref`` again under a new version id; return the new reference."""
    loaded = load_model(models_dir, ref)
    keep = {k: v for k, v in loaded.metadata.items() if k not in ("name", "version", "saved_ns")}
    name = loaded.metadata["name"]
    folder = save_model(models_dir, name, loaded.model, keep, new_version(secrets.token_hex(32)))
    del loaded
    gc.collect()
    return f"{name}@{folder.name}"


def prepare_models(args: argparse.Namespace, scratch: Path) -> tuple[Path, list[str], dict]:
    """A scratch models folder holding two versions of the model; its refs and how it was made."""
    models = scratch / "models"
    info: dict[str, Any] = {}
    if args.train_tiku:
        models, _, info = train_tiku(args.data, scratch)
        folder = Path(info["folder"])
    elif args.train_sample:
        from training.train import train

        log("training a model on data/sample")
        wall, cpu, res = timed(lambda: train([ROOT / "data" / "sample"], models, name="default"))
        folder = res.folder
        info = {"folder": str(folder), "wall_s": wall, "parent_cpu_s": cpu}
    else:
        source = resolve(args.model_dir, args.model)
        folder = models / source.parent.name / source.name
        shutil.copytree(source, folder)
        info = {"copied_from": str(source)}
    first = f"{folder.parent.name}@{folder.name}"
    refs = [first, second_version(models, first)]
    log(f"versions: {refs[0]} (served first) and {refs[1]}")
    return models, refs, info


# --- the soak -----------------------------------------------------------------------------
@dataclass
class Soak:
    """What the soak phase observed (times are seconds since its start)."""

    scheduled: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    messages: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    from_schedule: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    capped: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    models: Counter[str] = field(default_factory=Counter)
    answers: list[tuple[float, float, str]] = field(default_factory=list)
    done: list[tuple[float, float, bool]] = field(default_factory=list)
    reloads: list[dict[str, Any]] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)
    wall_s: float = 0.0

    def error(self, kind: str, message: str, at: float, sent: float) -> None:
        """Count one failed request."""
        self.errors[kind] += 1
        self.done.append((at, at - sent, False))
        if len(self.messages) < MAX_MESSAGES:
            self.messages.append(f"t={at:.1f}s {kind}: {message[:200]}")


async def one_request(
    client: Any, body: bytes, due: float, sent: float, refs: list[str], soak: Soak, t0: float
) -> None:
    """Send one predict request and check its status, result count and model version."""
    try:
        resp = await client.post("/v1/predict", content=body, headers=JSON_HEADERS)
        end = time.perf_counter()
        at = end - t0
        if resp.status_code != 200:
            soak.error(f"HTTP {resp.status_code}", resp.text, at, sent)
            return
        data = resp.json()
        model = data.get("model")
        if model not in refs:
            soak.error("unknown model", f"{model!r}", at, sent)
        elif len(data.get("results") or []) != 1:
            soak.error("wrong result count", resp.text, at, sent)
        else:
            soak.ok += 1
            soak.models[model] += 1
            soak.answers.append((sent - t0, at, model))
            soak.latencies.append(end - sent)
            soak.from_schedule.append(end - due)
            soak.done.append((at, end - sent, True))
    except Exception as exc:  # any exception is an error of this request, counted by type
        soak.error(type(exc).__name__, str(exc) or repr(exc), time.perf_counter() - t0, sent)
    finally:
        soak.in_flight -= 1


async def reloader(
    base_url: str, refs: list[str], token: str, every: float, seconds: float, t0: float, soak: Soak
) -> None:
    """POST /v1/admin/reload every ``every`` s, alternating versions (the second one first)."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    # A new connection per reload: an idle keep-alive connection may be closed by the server
    # (uvicorn: after 5 s) just as the next reload reuses it, a client-side race.
    async with httpx.AsyncClient(
        base_url=base_url,
        timeout=RELOAD_TIMEOUT_S,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    ) as client:
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
                resp = await client.post(
                    "/v1/admin/reload", json={"model": target}, headers=headers
                )
                record["status"] = resp.status_code
                served = resp.json().get("model") if resp.status_code == 200 else None
                record["ok"] = served == target
                if not record["ok"]:
                    record["detail"] = resp.text[:300]
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
    base_url: str,
    pid: int,
    bodies: list[bytes],
    rate: float,
    seconds: float,
    refs: list[str],
    token: str,
    reload_every: float,
) -> Soak:
    """Open-loop requests at ``rate``/s for ``seconds`` with periodic reloads and RSS samples."""
    import httpx

    soak = Soak(scheduled=max(1, math.floor(rate * seconds)))
    # Idle connections are dropped by this client (after 4 s) before uvicorn closes them (5 s),
    # so no request is sent on a connection the server is closing (the reloader's race).
    limits = httpx.Limits(
        max_connections=MAX_IN_FLIGHT,
        max_keepalive_connections=MAX_IN_FLIGHT,
        keepalive_expiry=4.0,
    )
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    tasks: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=REQUEST_TIMEOUT_S, trust_env=False
    ) as client:
        t0 = time.perf_counter()
        helpers = [
            asyncio.create_task(rss_sampler(pid, seconds, t0, soak)),
            asyncio.create_task(reloader(base_url, refs, token, reload_every, seconds, t0, soak)),
        ]

        async def guarded(body: bytes, due: float, sent: float) -> None:
            try:
                await one_request(client, body, due, sent, refs, soak, t0)
            finally:
                slots.release()

        for i in range(soak.scheduled):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if slots.locked():
                soak.capped += 1
            await slots.acquire()
            sent = time.perf_counter()
            soak.lateness.append(sent - due)
            soak.in_flight += 1
            soak.max_in_flight = max(soak.max_in_flight, soak.in_flight)
            task = asyncio.create_task(guarded(bodies[i % len(bodies)], due, sent))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            _, pending = await asyncio.wait(set(tasks), timeout=DRAIN_S)
            for task in pending:
                task.cancel()
            if pending:
                soak.errors["unfinished after drain"] += len(pending)
        soak.wall_s = time.perf_counter() - t0
        _, pending_helpers = await asyncio.wait(helpers, timeout=RELOAD_TIMEOUT_S)
        for task in pending_helpers:
            task.cancel()
        for task in helpers:
            if task.done() and not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                soak.errors[f"helper {type(exc).__name__}"] += 1
                soak.messages.append(f"helper task failed: {exc!r}")
    return soak


def stale_answers(soak: Soak, refs: list[str]) -> int:
    """Answers naming a wrong version: sent after a reload returned, answered before the next."""
    # Requests overlapping a reload may get either version and are not counted. With several
    # workers each reload reaches one of them, so the count is then expected to be > 0.
    epochs: list[tuple[float, float, str]] = []  # (sent from, answered by, expected model)
    start, expected = float("-inf"), refs[0]
    for r in soak.reloads:
        epochs.append((start, r["at_s"], expected))
        start = r["done_s"]
        if r["ok"]:
            expected = r["model"]
    epochs.append((start, float("inf"), expected))
    return sum(
        any(lo <= sent and end <= hi and model != want for lo, hi, want in epochs)
        for sent, end, model in soak.answers
    )


def windows(soak: Soak, seconds: float) -> list[dict[str, Any]]:
    """Requests finished, errors and p99 latency per RSS_EVERY_S window of the soak."""
    n = max(1, math.ceil(seconds / RSS_EVERY_S))
    buckets: list[list[tuple[float, bool]]] = [[] for _ in range(n + 1)]
    for at, latency, ok in soak.done:
        buckets[min(n, int(at // RSS_EVERY_S))].append((latency, ok))
    out = []
    for k, bucket in enumerate(buckets):
        lat = [latency for latency, ok in bucket if ok]
        out.append(
            {
                "from_s": k * RSS_EVERY_S,
                "finished": len(bucket),
                "errors": sum(not ok for _, ok in bucket),
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
    for at, latency, ok in soak.done:
        if ok:
            (during if any(lo <= at <= hi for lo, hi in spans) else other).append(latency)
    return {
        "answers": len(during),
        "p99_ms": pct(during, 99) * 1e3,
        "max_ms": max(during, default=float("nan")) * 1e3,
        "p99_ms_otherwise": pct(other, 99) * 1e3,
    }


def summarise(soak: Soak, seconds: float, rate: float, refs: list[str]) -> dict[str, Any]:
    """The soak's numbers for the report and the JSON."""
    rss = [mb for _, mb in soak.rss]
    start_rss, end_rss = (rss[0], rss[-1]) if rss else (float("nan"), float("nan"))
    durations = [r["duration_s"] for r in soak.reloads if r["ok"]]
    errors = sum(soak.errors.values())
    return {
        "seconds": seconds,
        "wall_s": soak.wall_s,
        "target_req_per_s": rate,
        "achieved_req_per_s": (soak.ok + errors) / soak.wall_s if soak.wall_s else float("nan"),
        "scheduled": soak.scheduled,
        "ok": soak.ok,
        "errors": errors,
        "errors_by_kind": dict(soak.errors),
        "error_messages": soak.messages,
        "late_starts": sum(x > LATE_S for x in soak.lateness),
        "lateness_p99_ms": pct(soak.lateness, 99) * 1e3,
        "lateness_max_ms": max(soak.lateness, default=float("nan")) * 1e3,
        "waited_for_in_flight_slot": soak.capped,
        "max_in_flight": soak.max_in_flight,
        "p50_ms": pct(soak.latencies, 50) * 1e3,
        "p99_ms": pct(soak.latencies, 99) * 1e3,
        "max_ms": max(soak.latencies, default=float("nan")) * 1e3,
        "from_schedule_p99_ms": pct(soak.from_schedule, 99) * 1e3,
        "from_schedule_max_ms": max(soak.from_schedule, default=float("nan")) * 1e3,
        "answers_by_model": {ref: soak.models[ref] for ref in refs},
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
    if report["workers"] > 1:
        summary.notes.append(
            "several workers: each reload reaches one worker, so stale answers are expected."
        )
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


def request_bodies(data: Path) -> list[bytes]:
    """One-text predict bodies: the first TEXT_CHARS characters of the first TEXTS documents."""
    texts = [t[:TEXT_CHARS] for t in first_texts(data / "tiku" / "test", TEXTS)]
    return [json.dumps({"text": t}, ensure_ascii=False).encode() for t in texts if t.strip()]


def run(args: argparse.Namespace, scratch: Path, report: dict[str, Any]) -> None:
    """Prepare the models, start the server, measure capacity and soak; fill ``report``."""
    bodies = request_bodies(args.data)
    models, refs, report["model"] = prepare_models(args, scratch)
    report["refs"] = refs
    if port_in_use(args.port):
        raise RuntimeError(f"127.0.0.1:{args.port} is already in use; choose another --port")
    base_url = f"http://127.0.0.1:{args.port}"
    token = secrets.token_urlsafe(24)
    log_path = scratch / "serve.log"
    proc = start_server(
        models, refs[0], args.port, args.workers, log_path, {"TAGGER_ADMIN_TOKEN": token}
    )
    try:
        report["startup_s"] = wait_ready(proc, base_url, log_path)
        report["processes"] = len(process_tree(proc.pid))
        log(f"server ready after {report['startup_s']:.1f} s, {report['processes']} processes")
        reqs = [Req("POST", "/v1/predict", body) for body in bodies]
        run_phase(base_url, proc.pid, reqs, 2, count=WARMUP_REQUESTS)
        log(f"capacity: {CAPACITY_CLIENTS} clients for {CAPACITY_SECONDS:.0f} s")
        cap = run_phase(base_url, proc.pid, reqs, CAPACITY_CLIENTS, seconds=CAPACITY_SECONDS)
        report["capacity"] = cap
        if not cap["ok"]:
            raise RuntimeError(f"no successful request while measuring capacity: {cap}")
        rate = args.load * cap["req_per_s"]
        seconds = args.minutes * 60
        log(
            f"capacity {cap['req_per_s']:.1f} req/s ({cap['errors']} errors); soak at "
            f"{rate:.1f} req/s for {seconds:.0f} s, reload every {args.reload_every:.0f} s"
        )
        server0, client0 = tree_cpu_s(proc.pid), client_cpu_s()
        soak = asyncio.run(
            soak_load(base_url, proc.pid, bodies, rate, seconds, refs, token, args.reload_every)
        )
        server_cpu, client_cpu = tree_cpu_s(proc.pid) - server0, client_cpu_s() - client0
        soak.rss.append((soak.wall_s, tree_rss_mb(proc.pid)))
        s = summarise(soak, seconds, rate, refs)
        done = max(1, s["ok"] + s["errors"])
        s.update(
            server_cpu_s=server_cpu,
            client_cpu_s=client_cpu,
            server_cpu_ms_per_req=server_cpu / done * 1e3,
            client_cpu_ms_per_req=client_cpu / done * 1e3,
        )
        report["soak"] = s
        report["alive_after"] = proc.poll() is None
    finally:
        stop_server(proc)
        report["server_log_tail"] = tail(log_path, 30)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
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
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
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
    started = datetime.now(UTC)
    report: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "command": [sys.executable, *sys.argv],
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "workers": args.workers,
        "load": args.load,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_start": os.getloadavg(),
        },
        "versions": library_versions(),
    }
    scratch = Path(tempfile.mkdtemp(prefix="tagger-soak-"))
    code = 0
    try:
        run(args, scratch, report)
        report["machine"]["loadavg_end"] = os.getloadavg()
        report["failures"] = failures(report)
        for table in tables(report):
            print(table.markdown(), flush=True)
        code = 1 if report["failures"] else 0
    except (KeyboardInterrupt, asyncio.CancelledError):
        log("interrupted; the server was stopped")
        report["failures"] = ["interrupted"]
        code = 130
    except Exception as exc:  # still write what was measured, and fail the check
        log(f"FAILED: {type(exc).__name__}: {exc}")
        report["failures"] = [f"{type(exc).__name__}: {exc}"]
        code = 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report["seconds"] = (datetime.now(UTC) - started).total_seconds()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"soak-{started:%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n")
    print(f"{report['seconds']:.0f} s in all; exit code {code}; wrote {path}")
    return code


if __name__ == "__main__":
    sys.exit(main())
