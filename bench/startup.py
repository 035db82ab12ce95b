"""Loading a model and answering its first request: this checkout beside another, interleaved.

    python -m bench.startup --models-dir M --model tiku [--other CHECKOUT --other-models-dir M2]
                            [--repeats 7] [--port 8123]

For each checkout (this one, and with ``--other`` a second one, e.g. an older commit with
its own model folder), ``--repeats`` times in turn A B A B …:

* in a new Python process, with that checkout first on the path: the seconds to import the
  loader, to load and verify the model, and the first and a later one-paragraph prediction;
* ``tagger predict`` on one paragraph as a whole process (start-up, load, answer);
* ``tagger serve`` started cold: seconds until ``/healthz`` answers, the latency of the
  first ``POST /v1/predict``, and the median of the next 20.

Each figure is the median over the repeats; the ratio column is the median of the A/B ratios
of the pairs run back to back, which holds when the machine's speed drifts.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.harness import HOST, ROOT, Report, Table, arguments, first_texts, fmt, logger, med

log = logger("startup")
# The same measurement in any checkout: the loader is found under its old or new name.
IN_PROCESS = """\
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
try:
    from classifier.registry import load_model
except ImportError:
    from classifier.persistence import load_model
t1 = time.perf_counter()
loaded = load_model(Path(sys.argv[1]), sys.argv[2])
t2 = time.perf_counter()
loaded.model.predict([sys.argv[3]])
t3 = time.perf_counter()
loaded.model.predict([sys.argv[4]])
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_predict_s": t3 - t2,
                  "second_predict_s": t4 - t3}))
"""


def run_in(checkout: Path, args: list[str], text: str | None = None) -> str:
    """``python ARGS`` with ``checkout`` first on the path, its standard output."""
    return subprocess.run(
        [sys.executable, *args],
        input=text,
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(checkout)},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout


def in_process(checkout: Path, models: Path, ref: str, texts: list[str]) -> dict[str, float]:
    out = run_in(checkout, ["-c", IN_PROCESS, str(models), ref, texts[0], texts[1]])
    return json.loads(out.strip().splitlines()[-1])


def cli_predict(checkout: Path, models: Path, ref: str, text: str) -> float:
    command = ["-m", "training.cli", "predict", "--models-dir", str(models), "--model", ref]
    t0 = time.perf_counter()
    run_in(checkout, command, text)
    return time.perf_counter() - t0


def serve_cold(checkout: Path, models: Path, ref: str, port: int, texts: list[str]) -> dict:
    """Start ``tagger serve``, wait for /healthz, time the first and the next 20 requests."""
    command = [sys.executable, "-m", "training.cli", "serve", "--models-dir", str(models)]
    command += ["--model", ref, "--host", HOST, "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    healthz = loadgen.Request.make("GET", "/healthz")
    posts = [loadgen.Request.post("/v1/predict", {"text": t}) for t in texts]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=checkout, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            if proc.poll() is not None or time.perf_counter() - t0 > 180:
                raise RuntimeError(f"{checkout}: tagger serve did not start")
            try:
                if asyncio.run(loadgen.fetch(HOST, port, healthz, 5.0))[0] == 200:
                    break
            except (OSError, asyncio.IncompleteReadError, ValueError):
                time.sleep(0.05)
        ready = time.perf_counter() - t0
        times = []
        for req in posts[:21]:
            s = time.perf_counter()
            status, _ = asyncio.run(loadgen.fetch(HOST, port, req, 30.0))
            times.append(time.perf_counter() - s)
            if status != 200:
                raise RuntimeError(f"{checkout}: POST /v1/predict answered {status}")
        return {"ready_s": ready, "first_request_s": times[0], "next_20_p50_s": med(times[1:])}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    parser = arguments("startup", __doc__, data=True)
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--model", default="default")
    parser.add_argument("--other", type=Path, help="a second checkout to measure beside")
    parser.add_argument("--other-models-dir", type=Path, help="its models folder")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--port", type=int, default=8123)
    args = parser.parse_args()
    texts = first_texts(args.data / "tiku" / "test", 30)
    sides = {"this": (ROOT, args.models_dir)}
    if args.other:
        sides["other"] = (args.other.resolve(), args.other_models_dir or args.models_dir)
    report = Report("startup", args.out, sides={k: [str(p) for p in v] for k, v in sides.items()})
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    for r in range(args.repeats):
        for side, (checkout, models) in sides.items():
            row: dict[str, Any] = in_process(checkout, models, args.model, texts)
            row["cli_predict_s"] = cli_predict(checkout, models, args.model, texts[2])
            row.update(serve_cold(checkout, models, args.model, args.port, texts[3:]))
            runs[side].append(row)
        log(f"repeat {r + 1}/{args.repeats} done")
    report.data["runs"] = runs
    names = list(runs["this"][0])
    columns = ["figure", f"this ({ROOT.name}) ms"]
    if "other" in runs:
        columns += [f"other ({sides['other'][0].name}) ms", "this / other (median of pairs)"]
    table = Table(f"model load and first request, median of {args.repeats}", columns)
    for name in names:
        this = [x[name] for x in runs["this"]]
        cells = [name, fmt(med(this) * 1e3, 1)]
        if "other" in runs:
            other = [x[name] for x in runs["other"]]
            ratios = [a / b for a, b in zip(this, other, strict=True)]
            cells += [fmt(med(other) * 1e3, 1), fmt(med(ratios), 3)]
        table.rows.append(cells)
    report.end()
    table.notes.append(report.load_line())
    report.show(table)
    print(f"wrote {report.write()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
