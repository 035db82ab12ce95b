"""End-to-end training time of tagger next to fastText and Annif omikuji, in one run.

    .venv/bin/python bench/train_time.py [--corpora tiku fudan] [--jobs 2] [--set KEY=VALUE ...]
                                         [--data ../shared/data] [--out bench/out]

For each corpus, one after the other on the same machine:

1. ``tagger train`` on the raw ``train/`` folder: read, segment (rjieba), fit, tune thresholds,
   refit, save: wall and CPU seconds of the whole command;
2. ``bench/anchors.sh`` with TOOLS="tagger fasttext annif_omikuji" into a fresh segmentation
   folder, so the harness's jieba segmentation (which fastText and omikuji need and tagger
   does not) is timed too; each tool's ``train`` wall and CPU seconds come from the harness's
   results.json (tagger there trains on the harness's pre-segmented paragraphs).

Prints a markdown table and writes everything to --out/train-time-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("tagger", "fasttext", "annif_omikuji")


def children_cpu_s() -> float:
    """CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a command to completion, output to a log file; return its wall and CPU seconds."""
    cpu0, t0 = children_cpu_s(), time.perf_counter()
    with log.open("wb") as out:
        rc = subprocess.call(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    return {
        "cmd": cmd,
        "rc": rc,
        "wall_s": time.perf_counter() - t0,
        "cpu_s": children_cpu_s() - cpu0,
        "log": str(log),
    }


def tagger_train(data: Path, corpus: str, jobs: int, sets: list[str], scratch: Path) -> dict:
    """Time ``tagger train`` on the raw corpus, end to end."""
    cmd = [sys.executable, "-m", "training.cli", "train", str(data / corpus / "train")]
    cmd += ["--name", corpus, "--models-dir", str(scratch / "models"), "--jobs", str(jobs)]
    for kv in sets:
        cmd += ["--set", kv]
    return run(cmd, scratch / f"tagger-train-{corpus}.log")


def anchors(corpus: str, jobs: int, sets: list[str], out: Path, scratch: Path) -> dict:
    """Run the harness for the three tools; read their train times and the segmentation time."""
    env = {
        **os.environ,
        "TOOLS": " ".join(TOOLS),
        "JOBS": str(jobs),
        "OUT_ROOT": str(out),
        "SEG_DIR": str(scratch / "seg"),
        "TAGGER_SET": " ".join(sets),
        # this interpreter runs tool_tagger.py (anchors.sh defaults to ROOT/.venv, which a
        # second worktree of the repository does not have)
        "TOOL_PY_tagger": os.environ.get("TOOL_PY_tagger", sys.executable),
    }
    result = run(
        [str(ROOT / "bench" / "anchors.sh"), corpus], scratch / f"anchors-{corpus}.log", env
    )
    folder = out / f"anchors-{corpus}"
    try:
        results = json.loads((folder / "results.json").read_text())
        wall = json.loads((folder / "anchors_wall.json").read_text())
    except (OSError, ValueError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        return result
    result["segment_s"] = wall["segment_s"]
    result["tools"] = {}
    for tool in TOOLS:
        train = results["tools"].get(tool, {}).get("train", {})
        cpu = train.get("user_s", 0.0) + train.get("sys_s", 0.0) if train else None
        result["tools"][tool] = {
            "train_wall_s": train.get("wall_s"),
            "train_cpu_s": cpu,
            "peak_rss_mb": train.get("peak_rss_mb"),
            "doc_micro_f1": (results["tools"].get(tool, {}).get("document") or {}).get("micro_f1"),
        }
    return result


def cell(x: float | None, digits: int = 1) -> str:
    """A table cell: the number, or ``-``."""
    return "-" if x is None else f"{x:,.{digits}f}"


def table(rows: dict[str, dict[str, Any]]) -> str:
    """Markdown: one row per corpus, wall (CPU) seconds."""
    head = [
        "corpus",
        "tagger train, raw text, end to end",
        "harness: jieba segmentation",
        "harness: tagger",
        "harness: fastText",
        "harness: omikuji",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for corpus, r in rows.items():
        t, a = r["tagger_train"], r["anchors"]
        tools = a.get("tools", {})

        def tool(name: str, tools: dict[str, Any] = tools) -> str:
            x = tools.get(name, {})
            return f"{cell(x.get('train_wall_s'))} ({cell(x.get('train_cpu_s'))})"

        lines.append(
            "| "
            + " | ".join(
                [
                    corpus,
                    f"{cell(t['wall_s'])} ({cell(t['cpu_s'])})",
                    cell(a.get("segment_s"), 0),
                    tool("tagger"),
                    tool("fasttext"),
                    tool("annif_omikuji"),
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n\nseconds: wall (CPU, all threads and processes)\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", nargs="+", default=["tiku", "fudan"])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    started = datetime.now(UTC)
    out = args.out / f"train-time-{started:%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "command": [sys.executable, *sys.argv],
        "loadavg_start": os.getloadavg(),
        "corpora": {},
    }
    scratch = Path(tempfile.mkdtemp(prefix="tagger-train-time-"))
    failed = False
    try:
        for corpus in args.corpora:
            print(f"[train-time] {corpus}: tagger train", file=sys.stderr, flush=True)
            t = tagger_train(args.data, corpus, args.jobs, args.sets, scratch)
            print(f"[train-time] {corpus}: anchors", file=sys.stderr, flush=True)
            a = anchors(corpus, args.jobs, args.sets, out, scratch)
            failed = failed or t["rc"] != 0 or a["rc"] != 0 or "error" in a
            for r in (t, a):
                r["log_tail"] = Path(r["log"]).read_text(errors="replace").splitlines()[-3:]
            report["corpora"][corpus] = {"tagger_train": t, "anchors": a}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report["loadavg_end"] = os.getloadavg()
    report["table"] = table(report["corpora"])
    path = out / "train-time.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(report["table"])
    print(
        f"load average {report['loadavg_start'][0]:.2f} at start, "
        f"{report['loadavg_end'][0]:.2f} at end; wrote {path}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
