"""The ``tagger`` command: train, eval, predict, serve and list models.

Commands only parse options and call importable functions; scikit-learn and the segmenters
are imported inside the commands, so ``tagger --help`` answers at once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from classifier import __version__
from classifier.errors import ClassifierError
from classifier.feedback import ENV as FEEDBACK_ENV
from classifier.registry import DEFAULT_NAME, MODELS_DIR_ENV
from training.gate import DEFAULT_MARGIN

if TYPE_CHECKING:
    from rich.progress import Progress

# the service ``tagger serve`` runs, by import path: the command line never imports it
API_APP = "api.main:create_app"

app = typer.Typer(
    name="tagger",
    help="Train, evaluate and serve a multi-label topic tagger for Chinese (and other) text.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Tables keep their columns when piped (rich would assume 80 columns).
_WIDTH = None if sys.stdout.isatty() else 160
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)
out = Console(highlight=False, width=_WIDTH)

ModelsDir = Annotated[
    Path,
    typer.Option(
        "--models-dir", envvar=MODELS_DIR_ENV, help="Folder of trained models.", file_okay=False
    ),
]
ModelOpt = Annotated[
    str, typer.Option("--model", "-m", envvar="TAGGER_MODEL", help="Model as NAME\\[@VERSION].")
]
CorpusArgs = Annotated[
    list[Path],
    typer.Argument(
        help="Seed-format files, folders of them (recursive *.txt), or JSONL files.", exists=False
    ),
]
# more workers than this only adds processes (each holds a copy of the libraries): 100,000
# started hundreds of loky workers before anything failed
MAX_JOBS = 4 * (os.cpu_count() or 1)
Jobs = Annotated[int, typer.Option("--jobs", "-j", min=1, max=MAX_JOBS, help="Parallel workers.")]
NameOpt = Annotated[str, typer.Option("--name", "-n", help="Model name.")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML or JSON training config.")
]
Strict = Annotated[bool, typer.Option("--strict", help="Stop at the first malformed document.")]
ClusterOpt = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        envvar="TAGGER_CLUSTER",
        help="Run on a Dask cluster: its scheduler's address (tcp://HOST:PORT), or local:N "
        "for N local worker processes.",
    ),
]
GateCorpus = Annotated[
    list[Path],
    typer.Option(
        "--gate-corpus",
        help="Documents the promotion gate scores the new and the served version on "
        "(default: the new version's validation documents).",
    ),
]
GateMargin = Annotated[
    float,
    typer.Option(
        "--gate-margin",
        envvar="TAGGER_GATE_MARGIN",
        min=0.0,
        max=1.0,
        help="How much lower (0-1) document micro- or macro-F1 may be than the served "
        "version's for the new one to be served.",
    ),
]
FeedbackDb = Annotated[
    str | None,
    typer.Option(
        "--feedback-db",
        "--db",
        envvar=FEEDBACK_ENV,
        help="Feedback store: a SQLite file or a database URL (default data/feedback.sqlite3).",
    ),
]


def _version(value: bool) -> None:
    if value:
        out.print(f"tagger {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Train, evaluate and serve a multi-label topic tagger for Chinese (and other) text."""


def _progress() -> tuple[Progress, Callable[[str, float | None], Callable[[float], None]]]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("{task.description:<11}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
        disable=not err.is_terminal,
    )

    def hook(description: str, total: float | None = None) -> Callable[[float], None]:
        task = progress.add_task(description, total=total)
        return lambda n: progress.advance(task, n)

    return progress, hook


def _report_skips(report: Any) -> None:
    for skip in report.skipped[:20]:
        _line("yellow", "skipped", f"{skip.source}: {skip.reason}")
    if report.n_skipped > 20:
        err.print(f"[yellow]… and {report.n_skipped - 20} more skipped[/]")


@app.command("train")
def train_cli(
    corpus: CorpusArgs,
    name: NameOpt = DEFAULT_NAME,
    config: ConfigOpt = None,
    overrides: Annotated[
        list[str], typer.Option("--set", help="Override one config field: KEY=VALUE.")
    ] = [],  # noqa: B006 (typer reads the default, never mutates it)
    models_dir: ModelsDir = Path("models"),
    jobs: Jobs = 1,
    strict: Strict = False,
    feedback: Annotated[
        str | None,
        typer.Option(
            "--feedback",
            help="Also learn from the corrections in this feedback store (path or URL).",
        ),
    ] = None,
    gate_corpus: GateCorpus = [],  # noqa: B006
    gate_margin: GateMargin = DEFAULT_MARGIN,
    cluster: ClusterOpt = None,
) -> None:
    """Train a model on CORPUS and save it as a new version of NAME; it is served if the
    promotion gate passes it (see `tagger models`). With --cluster the per-label models are
    fitted on a Dask cluster's workers (the same model)."""
    from classifier.config import load_config, with_overrides
    from training.train import train

    cfg = with_overrides(load_config(config), overrides)
    progress, hook = _progress()
    gate = {"gate_corpus": gate_corpus or None, "gate_margin": gate_margin}
    with progress:
        result = train(
            corpus, models_dir, name=name, config=cfg, jobs=jobs, strict=strict, progress=hook,
            feedback=feedback, cluster=cluster, **gate,
        )  # fmt: skip
    _report_skips(result.report)
    for line in result.summary():
        err.print(Text(line), soft_wrap=True)
    out.print(Text(result.headline()), soft_wrap=True)


@app.command("tune")
def tune_cli(
    corpus: CorpusArgs,
    name: NameOpt = DEFAULT_NAME,
    config: ConfigOpt = None,
    grid: Annotated[
        str | None,
        typer.Option(
            "--grid",
            help="Candidate values: a JSON file, or the JSON itself, e.g. '{\"C\": [0.5, 1]}'.",
        ),
    ] = None,
    models_dir: ModelsDir = Path("models"),
    jobs: Jobs = 1,
    strict: Strict = False,
    gate_corpus: GateCorpus = [],  # noqa: B006
    gate_margin: GateMargin = DEFAULT_MARGIN,
) -> None:
    """Search hyperparameters on a validation split of CORPUS, then train the best (served
    if the promotion gate passes it)."""
    from classifier.config import load_config
    from classifier.tune import load_grid
    from training.train import tune_and_train

    search, cfg = load_grid(grid) if grid else None, load_config(config)
    progress, hook = _progress()
    with progress:
        result = tune_and_train(
            corpus,
            models_dir,
            name=name,
            config=cfg,
            grid=search,
            jobs=jobs,
            strict=strict,
            progress=hook,
            gate_corpus=gate_corpus or None,
            gate_margin=gate_margin,
        )
    tuning = result.metadata["tuning"]
    for trial in tuning["trials"]:
        err.print(Text(f"  {trial['score']:.4f}  {trial['params']}"), soft_wrap=True)
    best = f"best {tuning['best']} (validation document micro-F1 {tuning['best_score']:.4f})"
    out.print(Text(best), soft_wrap=True)
    out.print(Text(f"saved {result.ref} to {result.folder}"), soft_wrap=True)
    if result.gate:
        out.print(Text(result.gate.line()), soft_wrap=True)


@app.command("eval")
def eval_cli(
    corpus: CorpusArgs,
    model: ModelOpt = DEFAULT_NAME,
    models_dir: ModelsDir = Path("models"),
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the full results (per label too) here.")
    ] = None,
    per_label: Annotated[int, typer.Option(min=0, help="Show this many labels, by support.")] = 10,
    jobs: Jobs = 1,
    strict: Strict = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write a self-contained HTML report (plots, tables)."),
    ] = None,
) -> None:
    """Evaluate a model on a labelled CORPUS at paragraph and document level."""
    from classifier.registry import load_model
    from training.evaluate import evaluate_scored
    from training.report import metrics_table, per_label_table, write_json_atomic

    loaded = load_model(models_dir, model)
    progress, hook = _progress()
    with progress:
        result, scored = evaluate_scored(loaded, corpus, jobs=jobs, strict=strict, progress=hook)
    out.print(metrics_table(result))
    if per_label:
        out.print(per_label_table(result["document"]["per_label"], per_label))
    if json_out:
        write_json_atomic(json_out, result)
        err.print(Text(f"wrote {json_out}"), soft_wrap=True)
    if report:
        from training.html_report import write_report

        write_report(report, loaded, result, scored)
        err.print(Text(f"wrote {report}"), soft_wrap=True)


@app.command("predict")
def predict_cli(
    inputs: Annotated[
        list[str] | None,
        typer.Argument(help="Text files, seed files, folders or JSONL; '-' or nothing: stdin."),
    ] = None,
    model: ModelOpt = DEFAULT_NAME,
    models_dir: ModelsDir = Path("models"),
    top_k: Annotated[int | None, typer.Option("--top-k", "-k", min=1, max=1000)] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", "-t", min=0.0, max=1.0)] = None,
    paragraphs: Annotated[bool, typer.Option(help="Also tag each paragraph.")] = False,
    explain: Annotated[
        bool,
        typer.Option(help="Give each tag the terms that raised its score, with their spans."),
    ] = False,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            file_okay=False,
            help="Write the lines as parts in this folder, with a manifest; a re-run resumes.",
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="Parts as jsonl, or parquet (with --out).")
    ] = "jsonl",
    part_documents: Annotated[
        int, typer.Option("--part-documents", min=1, help="Documents a part (with --out).")
    ] = 1024,
    cluster: ClusterOpt = None,
) -> None:
    """Tag documents; print one JSON line per input document (or, with --out, write them as
    parts, tagged on a Dask cluster with --cluster)."""
    from classifier.corpus import read_inputs
    from classifier.registry import load_model
    from training.report import prediction_lines

    if out_dir is not None or cluster is not None or fmt != "jsonl":
        _predict_to_folder(inputs or ["-"], out_dir, model, models_dir, fmt, part_documents,
                           cluster, top_k=top_k, threshold=threshold, paragraphs=paragraphs,
                           explain=explain)  # fmt: skip
        return
    loaded = load_model(models_dir, model)
    documents = read_inputs(inputs or ["-"], sys.stdin)
    lines = prediction_lines(loaded.model, documents, top_k, threshold, paragraphs, explain=explain)
    for line in lines:
        sys.stdout.write(line)


def _predict_to_folder(
    inputs: list[str], out_dir: Path | None, model: str, models_dir: Path, fmt: str,
    part_documents: int, cluster: str | None, **options: Any,
) -> None:  # fmt: skip
    from training.batch import BatchError, Options, predict_to_folder

    if out_dir is None:
        raise BatchError("--cluster and --format write parts to a folder: give --out DIR")
    progress, hook = _progress()
    with progress:
        result = predict_to_folder(
            inputs, out_dir, models_dir, model, Options(**options), fmt=fmt,
            part_documents=part_documents, cluster=cluster, progress=hook,
        )  # fmt: skip
    out.print(
        Text(
            f"tagged {result.documents} documents into {result.parts} part(s) in {result.out} "
            f"({result.reused} reused from an earlier run)"
        ),
        soft_wrap=True,
    )
    if result.usage:
        from training.train import usage_line

        err.print(Text(usage_line(result.usage)), soft_wrap=True)


ServeModels = Annotated[
    list[str] | None,
    typer.Option(
        "--model",
        "-m",
        help="Model as NAME\\[@VERSION]; repeat to serve several, the first the default "
        "(or TAGGER_MODELS=a,b; else TAGGER_MODEL).",
        show_default=DEFAULT_NAME,
    ),
]


@app.command("serve")
def serve_cli(
    model: ServeModels = None,
    models_dir: ModelsDir = Path("models"),
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (one a core is the usual).")
    ] = 1,
    feedback_db: FeedbackDb = None,
) -> None:
    """Serve the HTTP API and the web page. Given NAME or NAME@latest, every worker moves to
    a version promoted in the registry within about a second."""
    from classifier import workers as service

    specs = model or served_specs(os.environ)
    pinned, follows = serving_plan(models_dir, specs)  # fails here, in one line
    if feedback_db:
        os.environ[FEEDBACK_ENV] = feedback_db  # what the workers' settings read
    if os.environ.get("TAGGER_EDITOR_TOKEN", "").strip():  # feedback accepted: made, migrated
        from classifier.feedback import DEFAULT_DB, open_store

        open_store(feedback_db or DEFAULT_DB).close()  # here once, not in each worker
    os.environ[MODELS_DIR_ENV] = str(models_dir)
    os.environ["TAGGER_MODEL"] = specs[0]  # what a reload without a version takes the latest of
    os.environ["TAGGER_MODELS"] = ",".join(specs)  # every worker serves every one
    # "serving" is said by the supervisor once the port is known free and a worker answers
    service.serve(API_APP, host, port, workers, pinned, err.print, follows)


def served_specs(environ: Mapping[str, str]) -> list[str]:
    """The models to serve when no ``--model`` is given: ``TAGGER_MODELS`` (comma-separated),
    else ``TAGGER_MODEL``, else the default name."""
    listed = [m.strip() for m in environ.get("TAGGER_MODELS", "").split(",") if m.strip()]
    return listed or [environ.get("TAGGER_MODEL") or DEFAULT_NAME]


def serving_plan(
    models_dir: Path, specs: list[str]
) -> tuple[list[str], list[Callable[[], str | None] | None]]:
    """For each model to serve, the NAME@VERSION every worker starts on (verified) and what
    names the version to follow (promotions, for NAME or NAME@latest; None when pinned)."""
    from classifier.registry import LATEST, ModelRef, served_ref, verify

    refs = [ModelRef.parse(spec) for spec in specs]
    names = [r.name for r in refs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ClassifierError(f"each model is served once, by name: {', '.join(twice)} twice")
    pinned, follows = [], []
    for spec, ref in zip(specs, refs, strict=True):
        folder = verify(models_dir, spec)
        pinned.append(f"{folder.parent.name}@{folder.name}")
        follows.append(
            (lambda name=ref.name: served_ref(models_dir, name)) if ref.version == LATEST else None
        )
    return pinned, follows


@app.command("promote")
def promote_cli(
    model: Annotated[str, typer.Argument(help="The version to serve, NAME@VERSION.")],
    models_dir: ModelsDir = Path("models"),
    reason: Annotated[str, typer.Option(help="Why, for the record.")] = "promoted by hand",
) -> None:
    """Serve NAME@VERSION whatever the promotion gate said (a running `tagger serve` of
    NAME follows within a second)."""
    from classifier.registry import promote

    out.print(Text(f"promoted {promote(models_dir, model, reason)}: now served"), soft_wrap=True)


@app.command("models")
def models_cli(
    models_dir: ModelsDir = Path("models"),
    card: Annotated[
        str | None, typer.Option("--card", help="Print the model card of NAME\\[@VERSION].")
    ] = None,
) -> None:
    """List trained model versions: which is served, the candidates and why, headline
    validation metrics; or print one version's model card (Markdown)."""
    from classifier.registry import list_models, version_card
    from training.report import models_table

    if card:
        sys.stdout.write(version_card(models_dir, card))
        return
    rows = list(list_models(models_dir))
    if not rows:
        err.print(Text(f"no trained model in {models_dir}"), soft_wrap=True)
        raise typer.Exit(1)
    out.print(models_table(rows))


feedback_app = typer.Typer(
    help="The editors' corrections (POST /v1/feedback): export them as a corpus.",
    no_args_is_help=True,
)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export_cli(
    out_file: Annotated[Path, typer.Option("--out", "-o", help="The JSONL corpus to write.")],
    db: FeedbackDb = None,
) -> None:
    """Write the latest correction of each document as JSONL {"id", "text", "tags"}."""
    from classifier.feedback import DEFAULT_DB, export_corpus, open_store

    with open_store(db or DEFAULT_DB, create=False) as store:
        report = export_corpus(store, out_file)
    if report.without_tags:
        err.print(Text(f"left out {report.without_tags} with no tag left"), soft_wrap=True)
    out.print(Text(f"wrote {report.written} corrections to {report.out}"), soft_wrap=True)


def _line(style: str, label: str, message: object) -> None:
    """``label message`` on stderr as one line however long: never wrapped, and the message
    is plain text (a file named ``[red]`` or ``:smile:`` is printed as it is named)."""
    text = " ".join(str(message).splitlines())
    err.print(Text.assemble((label, style), " ", text), soft_wrap=True)


def main() -> None:
    """Entry point: run the app, turning expected errors into one line and exit code 1."""
    try:
        app()
    except (ClassifierError, OSError) as exc:
        _line("red", "error:", exc)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        sys.exit(130)
    except Exception as exc:  # a bug: still one line, unless asked for the traceback
        if os.environ.get("TAGGER_DEBUG"):
            raise
        _line("red", "internal error:", f"{type(exc).__name__}: {exc} (TAGGER_DEBUG=1 shows more)")
        sys.exit(70)


if __name__ == "__main__":
    main()
