"""The api section of bench.perf: ``tagger serve`` with 1 and 2 workers under bench.loadgen.

Sequential single-text requests (p50/p99), CONC_CLIENTS concurrent clients for CONC_SECONDS
(req/s, p50/p99, errors), API_BATCH-text batches from BATCH_CLIENTS clients (texts/s); the
reference is GET /healthz (the framework floor) in the same modes. Each phase reports the
server's CPU seconds and RSS (sums over its process tree) and this client's CPU seconds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.harness import Server, Table, first_texts, fmt, logger, phase, tail, tree_rss, warm
from bench.loadgen import Request
from bench.perf_predict import BATCH_TEXTS, SINGLE_TEXTS

log = logger("perf")
SEQ_REQUESTS = 500
CONC_CLIENTS = 16
CONC_SECONDS = 10.0
API_BATCH = 64
BATCH_CLIENTS = 8  # with 2, both connections land on one worker half the time
BATCH_SECONDS = 10.0
WORKERS = (1, 2)
HEADERS = ["workers", "phase", "clients", "ok", "errors", "req/s", "texts/s", "p50 ms"]
HEADERS += ["p99 ms", "× ref", "server CPU s", "server CPU ms/req", "client CPU s"]
HEADERS += ["server RSS MB"]


def api_requests(texts: list[str]) -> dict[str, list[Request]]:
    """The request sets: healthz, single-text predicts and API_BATCH-text batches."""
    singles = [Request.post("/v1/predict", {"text": t}) for t in texts[:SINGLE_TEXTS]]
    batches = [
        Request.post("/v1/predict", {"texts": texts[i : i + API_BATCH]}, API_BATCH)
        for i in range(0, len(texts) - API_BATCH + 1, API_BATCH)
    ]
    return {"healthz": [Request.make("GET", "/healthz")], "single": singles, "batch": batches}


def serve_and_load(
    models_dir: Path,
    name: str,
    port: int,
    workers: int,
    reqs: dict[str, list[Request]],
    logs: Path,
) -> dict[str, Any]:
    """Start ``tagger serve``, run every phase against it, always stop it."""
    server = Server(models_dir, name, port, workers, logs / f"serve-w{workers}.log")
    out: dict[str, Any] = {"command": server.command, "phases": {}}
    with server:
        out["startup_s"] = server.startup_s
        out["process_rss_mb_idle"] = tree_rss(server.pid)
        out["processes"] = len(out["process_rss_mb_idle"])
        out["rss_mb_idle"] = sum(p["rss_mb"] for p in out["process_rss_mb_idle"].values())
        phases = [
            ("healthz sequential", reqs["healthz"], 1, SEQ_REQUESTS, None),
            ("predict sequential", reqs["single"], 1, SEQ_REQUESTS, None),
            ("healthz concurrent", reqs["healthz"], CONC_CLIENTS, None, CONC_SECONDS),
            ("predict concurrent", reqs["single"], CONC_CLIENTS, None, CONC_SECONDS),
            (f"predict batch {API_BATCH}", reqs["batch"], BATCH_CLIENTS, None, BATCH_SECONDS),
        ]
        warm(server, reqs["single"])
        for title, phase_reqs, clients, count, seconds in phases:
            log(f"api workers={workers}: {title}")
            out["phases"][title] = phase(server, phase_reqs, clients, count, seconds)
        out["alive_after"] = server.alive()
        out["process_rss_mb_end"] = tree_rss(server.pid)
    out["server_log_tail"] = tail(server.log_path)
    return out


def run(
    models_dir: Path, name: str, data: Path, port: int, in_process: dict[str, Any] | None
) -> tuple[dict[str, Any], list[Table]]:
    """HTTP latency and throughput of ``tagger serve`` with 1 and 2 workers."""
    reqs = api_requests(first_texts(data / "tiku" / "test", BATCH_TEXTS))
    result: dict[str, Any] = {"workers": {}}
    table = Table(
        "api: tagger serve on 127.0.0.1, bench/loadgen.py load generator in this process",
        HEADERS,
    )
    with tempfile.TemporaryDirectory(prefix="tagger-perf-logs-") as logs:
        for workers in WORKERS:
            try:
                served = serve_and_load(models_dir, name, port, workers, reqs, Path(logs))
            except Exception as exc:  # reported in the table and the JSON, then go on
                result["workers"][workers] = {"error": f"{type(exc).__name__}: {exc}"}
                table.rows.append(
                    [str(workers), f"ERROR {type(exc).__name__}: {exc}"]
                    + [""] * (len(table.headers) - 2)
                )
                continue
            result["workers"][workers] = served
            table.rows += api_rows(workers, served["phases"])
            table.notes.append(
                f"workers={workers}: ready after {served['startup_s']:.1f} s, "
                f"{served['processes']} processes, idle RSS {served['rss_mb_idle']:.0f} MB in "
                f"all; per process idle {process_rss(served['process_rss_mb_idle'])}, after the "
                f"phases {process_rss(served.get('process_rss_mb_end', {}))}"
                + ("" if served.get("alive_after", True) else "; SERVER DIED during the phases")
            )
    table.notes += [
        "× ref: p50 ÷ healthz p50 for sequential phases; req/s ÷ healthz req/s (concurrent); "
        "texts/s ÷ in-process model.predict(1000 texts) texts/s for batches.",
        f"sequential: {SEQ_REQUESTS} requests one after another; concurrent: {CONC_CLIENTS} "
        f"clients for {CONC_SECONDS:.0f} s; batch: {BATCH_CLIENTS} clients sending "
        f"{API_BATCH} texts per request for {BATCH_SECONDS:.0f} s. The load generator shares "
        "the 2 cores with the server: see client CPU s.",
    ]
    table.notes += load_notes(result)
    if in_process:
        table.notes += floor_notes(result, in_process)
    fill_ratios(table, result, in_process)
    return result, [table]


def load_notes(result: dict[str, Any]) -> list[str]:
    """Notes on phases where the client outworked the server, or requests failed."""
    notes = []
    for workers, run in result["workers"].items():
        for title, p in run.get("phases", {}).items():
            if p["clients"] > 1 and p["client_cpu_s"] > p["server_cpu_s"]:
                notes.append(
                    f"workers={workers} {title}: the load generator used more CPU "
                    f"({p['client_cpu_s'] / max(p['ok'], 1) * 1e3:.2f} ms/req) than the server "
                    f"({p['server_cpu_ms_per_req']:.2f} ms/req): on 2 shared cores it, not the "
                    "server, may be what limits req/s here."
                )
            if p["errors"]:
                notes.append(
                    f"workers={workers} {title}: {p['errors']} errors, e.g. "
                    f"{p['error_messages'][0]}"
                )
    return notes


def floor_notes(result: dict[str, Any], in_process: dict[str, Any]) -> list[str]:
    """Sequential predict p50 against healthz p50 plus the in-process predict p50."""
    p50 = in_process["single"]["model.predict([text])"]["p50_s"] * 1e3
    result["in_process_predict_p50_ms"] = p50
    notes = []
    for workers, run in result["workers"].items():
        phases = run.get("phases", {})
        if "predict sequential" in phases and "healthz sequential" in phases:
            api = phases["predict sequential"]["p50_ms"]
            floor = phases["healthz sequential"]["p50_ms"]
            notes.append(
                f"workers={workers}: predict sequential p50 {api:.2f} ms vs healthz p50 + "
                f"in-process model.predict([text]) p50 = {floor:.2f} + {p50:.2f} = "
                f"{floor + p50:.2f} ms: {api - floor - p50:+.2f} ms not explained by either."
            )
    return notes


def process_rss(processes: dict[int, dict[str, Any]]) -> str:
    """``MB (role)`` of each server process, largest first: supervisor, worker or helper."""

    def role(cmd: str) -> str:
        if "spawn_main" in cmd:
            return "worker"
        return "helper" if "resource_tracker" in cmd else "main"

    rows = sorted(processes.values(), key=lambda p: -p["rss_mb"])
    return ", ".join(f"{p['rss_mb']:.0f} MB ({role(p['cmd'])})" for p in rows) or "-"


def api_rows(workers: int, phases: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Table rows of one server run (the ratio column is filled in later)."""
    return [
        [
            str(workers),
            title,
            str(p["clients"]),
            str(p["ok"]),
            str(p["errors"]),
            fmt(p["req_per_s"], 1),
            fmt(p["items_per_s"], 1),
            fmt(p["p50_ms"], 2),
            fmt(p["p99_ms"], 2),
            "",
            fmt(p["server_cpu_s"], 2),
            fmt(p["server_cpu_ms_per_req"], 2),
            fmt(p["client_cpu_s"], 2),
            fmt(p["server_rss_mb"], 0),
        ]
        for title, p in phases.items()
    ]


def fill_ratios(table: Table, result: dict[str, Any], in_process: dict[str, Any] | None) -> None:
    """Put each phase's ratio to its reference into the table and the JSON."""
    batch_ref = None
    if in_process:
        batch_ref = next(
            (v["texts_per_s"] for k, v in in_process["batch"].items() if "predict(" in k), None
        )
    for row in table.rows:
        run = result["workers"].get(int(row[0]), {})
        p = run.get("phases", {}).get(row[1])
        if p is None:
            continue
        hz_seq = run["phases"].get("healthz sequential", {})
        hz_conc = run["phases"].get("healthz concurrent", {})
        if row[1].endswith("sequential"):
            ratio = p["p50_ms"] / hz_seq.get("p50_ms", float("nan"))
        elif row[1].endswith("concurrent"):
            ratio = p["req_per_s"] / hz_conc.get("req_per_s", float("nan"))
        else:
            ratio = p["items_per_s"] / batch_ref if batch_ref else float("nan")
        p["ratio_to_reference"] = ratio
        row[9] = fmt(ratio, 3)


def problems(result: dict[str, Any]) -> int:
    """Failed server runs plus failed requests."""
    runs = result.get("workers", {}).values()
    return sum("error" in run for run in runs) + sum(
        p["errors"] for run in runs for p in run.get("phases", {}).values()
    )
