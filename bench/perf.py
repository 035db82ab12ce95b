"""Performance benchmark of tagger: segmentation, in-process prediction and the HTTP API.

    python -m bench.perf [--model-dir DIR --model NAME] [--train-tiku [--set K=V]...]
                         [--repeats 5] [--sections seg,predict,api] [--port 8765]
                         [--seg-mb 5] [--data ../shared/data] [--out bench/out]

Sections (each row is a median over --repeats runs, or over requests for the API, next to
its ratio to a reference measured in the same run, so a busy machine shifts both alike):

* seg (bench.perf_seg): MB/s of tagger's ``tokenize`` with rjieba and with jieba, of plain
  ``rjieba.cut`` and of plain ``jieba.lcut`` (the reference) on the first --seg-mb MB of raw
  fudan/test text, per wall second and per CPU second of the one thread doing it; the token
  agreement of tagger's rjieba tokens with tagger's jieba tokens (same (start, end) span, as
  in bench.invariance).
* predict (bench.perf_predict): a tiku model (--model-dir/--model, or --train-tiku to train
  one into a scratch folder first) in process: one-paragraph latencies of ``predict``,
  ``prepare``, ``features`` and ``score_prepared`` on the first 200 tiku/test texts, batch
  throughput of ``score_prepared`` and ``predict`` on 1000 texts; the reference is a
  per-label Python loop over the weight columns (as a one-vs-rest ensemble scores), on the
  same inputs. Also the model's size, shape and the RSS of a fresh process that loaded it.
* api (bench.perf_api): ``tagger serve`` with 1 and 2 workers on 127.0.0.1:--port, driven by
  bench.loadgen (keep-alive sockets, requests encoded once; an HTTP client library would use
  more CPU per request than the server) in this process: sequential single-text requests
  (p50/p99), 16 concurrent clients for 10 s (req/s, p50/p99, errors), 64-text batches from 8
  clients for 10 s (texts/s); the reference is GET /healthz (the framework floor) in the
  same modes. Each phase reports the server's CPU seconds (sum over its process tree), this
  client's CPU seconds and the server's RSS (sum over the tree). The server is always
  stopped.

The tables are printed as markdown and everything is written to --out/perf-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench import perf_api, perf_predict, perf_seg
from bench.harness import Report, arguments, logger, train_model

SECTIONS = ("seg", "predict", "api")
log = logger("perf")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = arguments(
        "perf", __doc__, sets="config override for --train-tiku (e.g. rare_labels=keep)"
    )
    parser.add_argument("--model-dir", type=Path, help="models folder holding --model")
    parser.add_argument("--model", default="tiku", help="model as NAME[@VERSION]")
    parser.add_argument("--train-tiku", action="store_true", help="train a tiku model first")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seg-mb", type=float, default=5.0, help="MB of fudan/test to segment")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    needs_model = {"predict", "api"} & set(args.sections)
    if needs_model and not (args.train_tiku or args.model_dir):
        parser.error("the predict and api sections need --model-dir (and --model) or --train-tiku")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen sections, print their tables and write the JSON."""
    args = parse_args(argv)
    report = Report("perf", args.out, repeats=args.repeats, sections={})
    sections = report.data["sections"]
    failed = False
    scratch = Path(tempfile.mkdtemp(prefix="tagger-perf-"))
    try:
        models_dir, name = args.model_dir, args.model
        if args.train_tiku and {"predict", "api"} & set(args.sections):
            models_dir, report.data["training"] = train_model(
                args.data / "tiku" / "train", scratch, "tiku", args.sets, jobs=2
            )
            name = "tiku"
        for section in args.sections:
            log(f"section {section}")
            try:
                if section == "seg":
                    res, tables = perf_seg.run(args.data, args.seg_mb, args.repeats)
                elif section == "predict":
                    res, tables = perf_predict.run(models_dir, name, args.data, args.repeats)
                else:
                    in_process = sections.get("predict")
                    in_process = None if in_process is None or "error" in in_process else in_process
                    res, tables = perf_api.run(models_dir, name, args.data, args.port, in_process)
            except Exception as exc:  # one failing section must not hide the others
                failed = True
                sections[section] = {"error": f"{type(exc).__name__}: {exc}"}
                log(f"section {section} FAILED: {type(exc).__name__}: {exc}")
                continue
            sections[section] = res
            for table in tables:
                report.show(table)
            failed = failed or (section == "api" and perf_api.problems(res) > 0)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    path = report.write()
    print(f"{report.load_line()}; {report.data['seconds']:.0f} s in all; wrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
