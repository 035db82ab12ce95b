"""Train a model from corpus files and register it as a new version."""

from __future__ import annotations

import hashlib
import platform
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from classifier import __version__, tokenizer
from classifier.artifact import LoadedModel, read_metadata
from classifier.config import TrainingConfig
from classifier.corpus import Document, ReadReport, read_corpus
from classifier.dataset import prepare_corpus
from classifier.errors import NotTrainedError
from classifier.feedback import MergeReport, corrections, merge, open_store, shown
from classifier.fit import FitReport, fit_classifier
from classifier.model import TopicClassifier
from classifier.progress import ProgressHook, no_progress
from classifier.registry import adopt_newest, new_version, save_model
from training.gate import DEFAULT_MARGIN, GateDecision, gate

MAX_SKIPS_IN_METADATA = 200
DECISION_RULE = (
    "labels scoring >= threshold, at most max_labels (the best), at least min_labels "
    "(the best) when none reaches it"
)


@dataclass(frozen=True)
class TrainResult:
    """Where the new version went, what it records, and what reading the corpus skipped."""

    folder: Path
    metadata: dict[str, Any]
    report: ReadReport
    gate: GateDecision | None = None

    @property
    def ref(self) -> str:
        return f"{self.metadata['name']}@{self.metadata['version']}"

    def summary(self) -> list[str]:
        """What the run read, made, skipped and dropped, in a few lines for a person."""
        c, dropped = self.metadata["corpus"], self.metadata["labels_dropped"]
        lines = [
            f"read {c['documents_read']} documents, made {c['paragraphs']} paragraphs, "
            f"skipped {c['documents_skipped']} {c['skipped_by_reason'] or ''}".rstrip()
        ]
        if dropped["labels"]:
            lines.append(f"dropped {len(dropped['labels'])} rare labels: {dropped['rule']}")
        if where := self.metadata.get("cluster"):
            lines.append(f"fitted on {where['address']}: {usage_line(where['usage'])}")
        if fb := self.metadata.get("feedback"):
            lines.append(
                f"learnt {fb['used']} of {fb['corrections']} corrections from {fb['store']}: "
                f"{fb['overrode']} overrode corpus documents, {fb['added']} new, "
                f"{fb['removed']} removed (no tag left)"
            )
        return lines

    def headline(self) -> str:
        """One line: the version saved, its label count and validation document micro-F1."""
        val = self.metadata["metrics"]["validation"].get("document", {})
        f1 = val.get("micro", {}).get("f1", float("nan"))
        return (
            f"saved {self.ref} to {self.folder}  labels={len(self.metadata['labels'])}  "
            f"validation document micro-F1={f1:.3f}"
        ) + (f"\n{self.gate.line()}" if self.gate else "")


def usage_line(usage: dict[str, Any]) -> str:
    """Peak RSS of the client and each worker (``cluster.usage``), in one line."""
    if not usage:
        return "no usage reported"
    workers = ", ".join(f"{u['peak_rss_mb']:.0f}" for u in usage["workers"].values())
    return f"peak RSS client {usage['client']['peak_rss_mb']:.0f} MB, workers [{workers}] MB"


def library_versions() -> dict[str, str]:
    names = ("scikit-learn", "numpy", "scipy", "joblib", "jieba", "rjieba")
    versions = {"tagger": __version__, "python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def counted(docs: Iterable[Document], advance: Any) -> Iterator[Document]:
    for doc in docs:
        advance(1)
        yield doc


def train(
    corpus: Sequence[str | Path],
    models_dir: Path,
    *,
    cluster: str | None = None,
    **options: Any,
) -> TrainResult:
    """Read ``corpus``, fit a tagger, save it as a new version of ``name``, and let the
    promotion gate (``training.gate``) decide whether it is served (``_train`` has the
    options).

    With ``cluster`` (a Dask scheduler's address, or ``local:N``), the per-label models are
    fitted on its workers, connected to before the corpus is read: the same model.
    """
    if cluster is None:
        return _train(corpus, models_dir, **options)
    from classifier.cluster import fitting_on

    with fitting_on(cluster) as summary:
        where = {"cluster": summary}  # its usage is filled in by the fits, before saving
        options["extra_metadata"] = {**where, **(options.get("extra_metadata") or {})}
        return _train(corpus, models_dir, **options)


def _train(
    corpus: Sequence[str | Path],
    models_dir: Path,
    *,
    name: str = "default",
    config: TrainingConfig | None = None,
    jobs: int = 1,
    strict: bool = False,
    progress: ProgressHook = no_progress,
    extra_metadata: dict[str, Any] | None = None,
    feedback: str | Path | None = None,
    gate_corpus: Sequence[str | Path] | None = None,
    gate_margin: float = DEFAULT_MARGIN,
) -> TrainResult:
    """``train`` on this machine. With ``feedback`` (a feedback store's path or URL) the
    latest correction of each document is learnt too: it overrides the corpus document of
    the same id, or is added.
    """
    cfg = (config or TrainingConfig()).resolved()
    tokenizer.warm_up(cfg.segmenter)
    report = ReadReport()
    started = time.perf_counter()
    docs: Iterable[Document] = read_corpus(corpus, report=report, strict=strict)
    merged = MergeReport()
    if feedback is not None:
        docs = merge(docs, _corrections(feedback), merged)
    with tempfile.TemporaryDirectory(prefix="tagger-train-") as tmp:
        # cross-validated fitting featurises in chunks: the prepared paragraphs wait on disk
        spool = Path(tmp, "paragraphs.jsonl") if cfg.cv_folds >= 2 else None
        data = prepare_corpus(
            counted(docs, progress("reading", None)), cfg.text, jobs, progress, spool=spool
        )
        if data.n_documents == 0:
            raise NotTrainedError(
                f"no valid document in {', '.join(map(str, corpus))}: {_skips(report)}"
            )
        prepared = time.perf_counter()
        model, fit = fit_classifier(data, cfg, jobs, progress)
        fitted = time.perf_counter()
    meta = build_metadata(model, fit, report, corpus, data.n_paragraphs)
    meta["training"]["label_documents"] = label_documents(data.doc_tags, model.labels)
    meta.update(extra_metadata or {})
    meta["training"]["seconds"] = {
        "read_and_segment": round(prepared - started, 3),
        "fit_and_tune": round(fitted - prepared, 3),
    }
    sha = report.sha256
    if feedback is not None:
        meta["feedback"] = {"store": shown(feedback), **merged.summary()}
        sha = hashlib.sha256(f"{sha}+{merged.sha256}".encode()).hexdigest()
    adopt_newest(models_dir, name)  # saving must not change what a name without a record serves
    folder = save_model(models_dir, name, model, meta, new_version(sha))
    saved = LoadedModel(model, read_metadata(folder), folder)
    decision = gate(models_dir, saved, gate_corpus=gate_corpus, margin=gate_margin)
    return TrainResult(folder, saved.metadata, report, decision)


def label_documents(doc_tags: Sequence[Sequence[str]], labels: Sequence[str]) -> dict[str, int]:
    """How many training documents carry each label (the report plots F1 against it)."""
    counts = dict.fromkeys(labels, 0)
    for tags in doc_tags:
        for t in set(tags):
            if t in counts:
                counts[t] += 1
    return counts


def _corrections(feedback: str | Path) -> list[Document]:
    """Every correction of the store, read at once (and the store closed) before the corpus
    is: they are what a person wrote, few next to a corpus."""
    with open_store(feedback, create=False) as store:
        return list(corrections(store))


def _skips(report: ReadReport) -> str:
    if not report.n_skipped:
        return "the corpus is empty"
    return "; ".join(f"{n} skipped ({why})" for why, n in report.skipped_by_reason.items())


def build_metadata(
    model: TopicClassifier,
    fit: FitReport,
    report: ReadReport,
    corpus: Sequence[str | Path],
    n_paragraphs: int,
) -> dict[str, Any]:
    cfg, scorer = model.config, model.scorer
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": library_versions(),
        "corpus": {
            "paths": [str(p) for p in corpus],
            **report.summary(),
            "paragraphs": n_paragraphs,
            "skipped": [
                {"source": s.source, "reason": s.reason}
                for s in report.skipped[:MAX_SKIPS_IN_METADATA]
            ],
        },
        "config": cfg.to_dict(),
        "tokenizer": {
            "function": f"{tokenizer.tokenize.__module__}.{tokenizer.tokenize.__qualname__}",
            "segmenter": model.segmenter,
            "normalization": "NFKC, lower-case, whitespace next to CJK removed",
        },
        "labels": list(model.labels),
        "labels_dropped": {
            "rule": f"tags on fewer than {cfg.min_label_docs} training documents "
            f"({cfg.rare_labels})",
            "labels": fit.labels_dropped,
        },
        "labels_unlearnable": fit.labels_unlearnable,
        "decision": {
            "rule": DECISION_RULE,
            "thresholds": dict(model.thresholds.level),
            "label_thresholds": {
                level: dict(zip(model.labels, map(float, vector), strict=True))
                for level, vector in model.thresholds.per_label.items()
            },
            "min_labels": cfg.min_labels,
            "max_labels": cfg.max_labels,
            "aggregation": "second level (stacking)" if model.stacker else cfg.aggregation,
            "calibration": {"a": scorer.calibration.a, "b": scorer.calibration.b},
            "cross_validation": fit.cross_validation,
            "neighbours": {
                "k": cfg.neighbours if scorer.neighbours is not None else 0,
                "weight": scorer.neighbour_weight,
                "validation_micro_f1_by_weight": fit.neighbours.get("tried", {}),
            },
        },
        "metrics": {"validation": fit.validation},
        "training": {
            "documents": report.n_documents,
            "fit_documents": fit.n_fit_documents,
            "validation_documents": fit.n_validation_documents,
            # held out from calibration and threshold tuning (and from the final weights
            # only when refit_on_all is false): the promotion gate's default evaluation set
            "validation_ids": fit.validation_ids,
            "paragraphs": n_paragraphs,
            "features": fit.n_features,
            "weights": fit.n_weights,
        },
    }


def tune_and_train(
    corpus: Sequence[str | Path],
    models_dir: Path,
    *,
    name: str = "default",
    config: TrainingConfig | None = None,
    grid: dict[str, list[Any]] | None = None,
    jobs: int = 1,
    strict: bool = False,
    progress: ProgressHook = no_progress,
    gate_corpus: Sequence[str | Path] | None = None,
    gate_margin: float = DEFAULT_MARGIN,
) -> TrainResult:
    """Search hyperparameters on the validation split, then train and save the winner
    (through the promotion gate).

    The search and every trial are recorded under ``tuning`` in the metadata.
    """
    from classifier.tune import DEFAULT_GRID, check_candidates, check_grid, tune

    cfg = (config or TrainingConfig()).resolved()
    if cfg.validation_fraction <= 0:
        raise NotTrainedError("tuning needs a validation split: set validation_fraction > 0")
    grid = check_grid(grid or DEFAULT_GRID, "grid")
    check_candidates(grid, cfg)  # before the corpus is read
    tokenizer.warm_up(cfg.segmenter)
    docs = list(counted(read_corpus(corpus, strict=strict), progress("reading", None)))
    if not docs:
        raise NotTrainedError(f"no valid document in {', '.join(map(str, corpus))}")
    started = time.perf_counter()
    found = tune(docs, cfg, grid, jobs, progress)
    tuning = {
        "objective": "validation document micro-F1",
        "method": "coordinate search",
        "grid": grid,
        "best": {k: getattr(found.best, k) for k in grid},
        "best_score": found.best_score,
        "trials": found.trials,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return train(
        corpus,
        models_dir,
        name=name,
        config=found.best,
        jobs=jobs,
        strict=strict,
        progress=progress,
        extra_metadata={"tuning": tuning},
        gate_corpus=gate_corpus,
        gate_margin=gate_margin,
    )
