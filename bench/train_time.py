"""End-to-end training time of tagger next to fastText and Annif omikuji, in one run.

    python -m bench.train_time [--corpora tiku fudan] [--jobs 2] [--set KEY=VALUE ...]
                               [--data ../shared/data] [--out bench/out]

For each corpus, one after the other on the same machine:

1. ``tagger train`` on the raw ``train/`` folder: read, segment (rjieba), fit, tune thresholds,
   refit, save: wall and CPU seconds of the whole command;
2. ``bench/anchors.sh`` with TOOLS="tagger fasttext annif_omikuji" into a fresh segmentation
   folder, so the harness's jieba segmentation (which fastText and omikuji need and tagger
   does not) is timed too; each tool's ``train`` wall and CPU seconds come from the harness's
   results.json (tagger there trains on the harness's pre-segmented paragraphs).

Prints a markdown table and writes everything to --out/train-time-<timestamp>/train-time.json
(beside the harness's output for each corpus).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import library
from bench.harness import (
    ROOT,
    Report,
    arguments,
    children_cpu_s,
    fmt,
    logger,
    markdown_table,
)

TOOLS = ("tagger", "fasttext", "annif_omikuji")
log = logger("train-time")


def run(cmd: list[str], log_path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a command to completion, output to a log file; return its wall and CPU seconds."""
    cpu0, t0 = children_cpu_s(), time.perf_counter()
    with log_path.open("wb") as out:
        rc = subprocess.call(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    return {
        "cmd": cmd,
        "rc": rc,
        "wall_s": time.perf_counter() - t0,
        "cpu_s": children_cpu_s() - cpu0,
        "log": str(log_path),
    }


def tagger_train(data: Path, corpus: str, jobs: int, sets: list[str], scratch: Path) -> dict:
    """Time ``tagger train`` on the raw corpus, end to end."""
    cmd = library.cli_command() + ["train", str(data / corpus / "train")]
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
    lines = []
    for corpus, r in rows.items():
        t, a = r["tagger_train"], r["anchors"]
        tools = a.get("tools", {})

        def tool(name: str, tools: dict[str, Any] = tools) -> str:
            x = tools.get(name, {})
            return f"{fmt(x.get('train_wall_s'), 1)} ({fmt(x.get('train_cpu_s'), 1)})"

        lines.append(
            [
                corpus,
                f"{fmt(t['wall_s'], 1)} ({fmt(t['cpu_s'], 1)})",
                fmt(a.get("segment_s"), 0),
                tool("tagger"),
                tool("fasttext"),
                tool("annif_omikuji"),
            ]
        )
    return markdown_table(head, lines) + "\n\nseconds: wall (CPU, all threads and processes)\n"


def main() -> int:
    parser = arguments(
        "train_time", __doc__, corpora=("tiku", "fudan"), sets="a TrainingConfig override"
    )
    args = parser.parse_args()
    report = Report("train-time", args.out, corpora={})
    out = args.out / report.stem
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="tagger-train-time-"))
    failed = False
    try:
        for corpus in args.corpora:
            log(f"{corpus}: tagger train")
            t = tagger_train(args.data, corpus, args.jobs, args.sets, scratch)
            log(f"{corpus}: anchors")
            a = anchors(corpus, args.jobs, args.sets, out, scratch)
            failed = failed or t["rc"] != 0 or a["rc"] != 0 or "error" in a
            for r in (t, a):
                r["log_tail"] = Path(r["log"]).read_text(errors="replace").splitlines()[-3:]
            report.data["corpora"][corpus] = {"tagger_train": t, "anchors": a}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report.show(table(report.data["corpora"]))
    path = report.write(out / "train-time.json")
    print(f"{report.load_line()}; wrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
