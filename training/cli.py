"""The ``tagger`` command: train, eval, predict, serve and list models.

Commands only parse options and call importable functions; scikit-learn and the segmenters
are imported inside the commands, so ``tagger --help`` answers at once.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from classifier.errors import ClassifierError
from classifier.persistence import DEFAULT_NAME, MODELS_DIR_ENV

if TYPE_CHECKING:
    from rich.progress import Progress

    from classifier.corpus import Document

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
    str, typer.Option("--model", "-m", envvar="TAGGER_MODEL", help="Model as NAME[@VERSION].")
]
CorpusArgs = Annotated[
    list[Path],
    typer.Argument(
        help="Seed-format files, folders of them (recursive *.txt), or JSONL files.", exists=False
    ),
]
Jobs = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Parallel workers.")]
NameOpt = Annotated[str, typer.Option("--name", "-n", help="Model name.")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML or JSON training config.")
]
Strict = Annotated[bool, typer.Option("--strict", help="Stop at the first malformed document.")]


def _progress() -> tuple[Progress, Callable[[str, float | None], Callable[[float], None]]]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(
        TextColumn("{task.description:<11}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
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
        err.print(f"[yellow]skipped[/] {skip.source}: {skip.reason}")
    if len(report.skipped) > 20:
        err.print(f"[yellow]… and {len(report.skipped) - 20} more skipped[/]")


def _parse_set(values: list[str]) -> dict[str, Any]:
    overrides = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        try:
            overrides[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key.strip()] = raw
    return overrides


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
) -> None:
    """Train a model on CORPUS and save it as a new version of NAME."""
    from classifier.config import load_config
    from training.train import train

    cfg = load_config(config).replace(**_parse_set(overrides))
    progress, hook = _progress()
    with progress:
        result = train(
            corpus, models_dir, name=name, config=cfg, jobs=jobs, strict=strict, progress=hook
        )
    _report_skips(result.report)
    meta = result.metadata
    val = meta["metrics"]["validation"].get("document", {})
    c = meta["corpus"]
    err.print(
        f"read {c['documents_read']} documents, made {c['paragraphs']} paragraphs, "
        f"skipped {c['documents_skipped']} {c['skipped_by_reason'] or ''}".rstrip()
    )
    if meta["labels_dropped"]["labels"]:
        err.print(
            f"dropped {len(meta['labels_dropped']['labels'])} rare labels: "
            f"{meta['labels_dropped']['rule']}"
        )
    out.print(
        f"saved {meta['name']}@{result.folder.name} to {result.folder}  "
        f"labels={len(meta['labels'])}  validation document micro-F1="
        f"{val.get('micro', {}).get('f1', float('nan')):.3f}"
    )


@app.command("tune")
def tune_cli(
    corpus: CorpusArgs,
    name: NameOpt = DEFAULT_NAME,
    config: ConfigOpt = None,
    grid: Annotated[
        Path | None,
        typer.Option("--grid", help='JSON object of candidate values, e.g. {"C": [0.5, 1]}.'),
    ] = None,
    models_dir: ModelsDir = Path("models"),
    jobs: Jobs = 1,
    strict: Strict = False,
) -> None:
    """Search hyperparameters on a validation split of CORPUS, then train the best."""
    from classifier.config import load_config
    from training.train import tune_and_train

    search = _load_grid(grid) if grid else None
    progress, hook = _progress()
    with progress:
        result = tune_and_train(
            corpus,
            models_dir,
            name=name,
            config=load_config(config),
            grid=search,
            jobs=jobs,
            strict=strict,
            progress=hook,
        )
    tuning = result.metadata["tuning"]
    for trial in tuning["trials"]:
        err.print(f"  {trial['score']:.4f}  {trial['params']}")
    out.print(f"best {tuning['best']} (validation document micro-F1 {tuning['best_score']:.4f})")
    out.print(f"saved {result.metadata['name']}@{result.folder.name} to {result.folder}")


def _load_grid(path: Path) -> dict[str, list[Any]]:
    try:
        grid = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ClassifierError(f"{path}: cannot read grid: {exc}") from None
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise ClassifierError(f"{path}: the grid must map field names to non-empty lists")
    return grid


@app.command("eval")
def eval_cli(
    corpus: CorpusArgs,
    model: ModelOpt = DEFAULT_NAME,
    models_dir: ModelsDir = Path("models"),
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the full results (per label too) here.")
    ] = None,
    per_label: Annotated[int, typer.Option(help="Show this many labels, by support.")] = 10,
    jobs: Jobs = 1,
    strict: Strict = False,
) -> None:
    """Evaluate a model on a labelled CORPUS at paragraph and document level."""
    from classifier.persistence import load_model
    from training.evaluate import evaluate
    from training.report import metrics_table, per_label_table

    loaded = load_model(models_dir, model)
    progress, hook = _progress()
    with progress:
        result = evaluate(loaded, corpus, jobs=jobs, strict=strict, progress=hook)
    out.print(metrics_table(result))
    if per_label:
        out.print(per_label_table(result["document"]["per_label"], per_label))
    if json_out:
        _atomic_write(json_out, json.dumps(result, ensure_ascii=False, indent=2))
        err.print(f"wrote {json_out}")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _predict_inputs(sources: list[str]) -> Iterator[Document]:
    from classifier.corpus import Document, parse_json_record, read_corpus
    from classifier.errors import CorpusFormatError

    for source in sources:
        if source != "-":
            yield from read_corpus([source], require_tags=False, strict=True)
            continue
        text = sys.stdin.read()
        if text.lstrip().startswith("{"):
            for n, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    doc = parse_json_record(line, f"<stdin>:{n}", require_tags=False)
                    if not isinstance(doc, Document):
                        raise CorpusFormatError(doc.source, doc.reason)
                    yield doc
        elif text.strip():
            yield Document("<stdin>", text)


def _batched(items: Iterator[Document], n: int) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


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
) -> None:
    """Tag documents; print one JSON line per input document."""
    from classifier.persistence import load_model
    from classifier.tokenizer import warm_up
    from training.report import prediction_record

    loaded = load_model(models_dir, model)
    warm_up(loaded.model.segmenter)
    for batch in _batched(_predict_inputs(inputs or ["-"]), 64):
        predictions = loaded.model.predict(
            [d.text for d in batch], top_k=top_k, threshold=threshold, paragraphs=paragraphs
        )
        for doc, pred in zip(batch, predictions, strict=True):
            sys.stdout.write(json.dumps(prediction_record(doc.id, pred), ensure_ascii=False))
            sys.stdout.write("\n")


@app.command("serve")
def serve_cli(
    model: ModelOpt = DEFAULT_NAME,
    models_dir: ModelsDir = Path("models"),
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the HTTP API and the web page."""
    from api.serving import serve
    from classifier.persistence import resolve, verify

    folder = resolve(models_dir, model)  # fail here, in one line, rather than in each worker
    verify(folder)
    os.environ[MODELS_DIR_ENV] = str(models_dir)
    os.environ["TAGGER_MODEL"] = model
    err.print(f"serving {folder.parent.name}@{folder.name} on http://{host}:{port}")
    serve(host, port, workers)


@app.command("models")
def models_cli(models_dir: ModelsDir = Path("models")) -> None:
    """List trained model versions with their headline validation metrics."""
    from classifier.persistence import list_models
    from training.report import models_table

    rows = list(list_models(models_dir))
    if not rows:
        err.print(f"no trained model in {models_dir}")
        raise typer.Exit(1)
    out.print(models_table(rows))


def main() -> None:
    """Entry point: run the app, turning expected errors into one line and exit code 1."""
    try:
        app()
    except ClassifierError as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(1)
    except OSError as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        sys.exit(130)
    except Exception as exc:  # a bug: still one line, unless asked for the traceback
        if os.environ.get("TAGGER_DEBUG"):
            raise
        err.print(
            f"[red]internal error:[/] {type(exc).__name__}: {exc} (TAGGER_DEBUG=1 shows more)"
        )
        sys.exit(70)


if __name__ == "__main__":
    main()
