"""Every call bench makes into tagger's library (classifier, training, api), in one module.

The scripts reach the library only through the names here, so a change of its API is met
by re-pointing this file. Only the modules a fresh process needs to load a model are
imported at the top (bench.perf_predict measures that process's memory after its imports);
the rest load inside the functions that use them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from classifier.artifact import FILES
from classifier.registry import load_model
from classifier.tokenizer import SEGMENTERS, normalize, tokenize, warm_up  # noqa: F401

# SEGMENTERS, normalize, tokenize and warm_up are the scripts' names for the library's own
# (perf_seg times tokenize and normalize themselves, so they are not wrapped).


def cli_command() -> list[str]:
    """The ``tagger`` command of this checkout (cwd first on sys.path, unlike the script)."""
    # The venv's `tagger` script imports whichever checkout the editable install points at,
    # so a benchmark run from another worktree would serve that checkout's code.
    return [sys.executable, "-m", "training.cli"]


def versions() -> dict[str, str]:
    """tagger's version and those of Python and the libraries it runs on."""
    from training.train import library_versions

    return library_versions()


def config(sets: Sequence[str] = (), **base: Any) -> Any:
    """The default TrainingConfig with ``base`` and then ``--set KEY=VALUE`` items applied."""
    from classifier.config import TrainingConfig, parse_overrides

    return TrainingConfig().replace(**(base | parse_overrides(sets)))


def documents(folder: Path) -> Iterator[Any]:
    """The documents of a corpus folder (``.text``, ``.tags``), in sorted file order."""
    from classifier.corpus import read_corpus

    return read_corpus([folder])


# --- models -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Version:
    """A loaded model version: the classifier object, its reference and its folder."""

    model: Any  # classifier.model.TopicClassifier
    ref: str
    folder: Path
    loaded: Any = field(repr=False)  # what the library's loader returned


def load(models_dir: Path, ref: str) -> Version:
    """Resolve, verify and load a model version (NAME or NAME@VERSION)."""
    loaded = load_model(models_dir, ref)
    return Version(loaded.model, loaded.ref, loaded.folder, loaded)


def model_mb(folder: Path) -> float:
    """Size of a version's model files in MB."""
    return sum((folder / name).stat().st_size for name in FILES) / 1e6


def resolve(models_dir: Path, ref: str) -> Path:
    """The folder of a model version."""
    from classifier.registry import resolve as resolve_ref

    return resolve_ref(models_dir, ref)


def save_copy(models_dir: Path, ref: str) -> str:
    """Save the model of ``ref`` again under a new version id; return the new reference."""
    import gc
    import secrets

    from classifier.registry import new_version, save_model

    loaded = load_model(models_dir, ref)
    keep = {k: v for k, v in loaded.metadata.items() if k not in ("name", "version", "saved_ns")}
    name = loaded.metadata["name"]
    folder = save_model(models_dir, name, loaded.model, keep, new_version(secrets.token_hex(32)))
    del loaded
    gc.collect()
    return f"{name}@{folder.name}"


def train(
    folders: Sequence[Path],
    models_dir: Path,
    name: str,
    cfg: Any = None,
    jobs: int = 1,
    tune: bool = False,
) -> Any:
    """Train (with ``tune``: search hyperparameters first) and save a new version.

    Returns the library's result: ``.folder`` and ``.metadata``.
    """
    from training.train import train as train_model
    from training.train import tune_and_train

    fit_model = tune_and_train if tune else train_model
    return fit_model(list(folders), models_dir, name=name, config=cfg, jobs=jobs)


def evaluate(version: Version, folder: Path, jobs: int = 1) -> dict[str, Any]:
    """Paragraph and document scores of a corpus folder under the model's own decision rule."""
    from training.evaluate import evaluate as evaluate_model

    return evaluate_model(version.loaded, [folder], jobs=jobs)


# --- prepared corpora (fitting without saving) --------------------------------------------
def preparation(cfg: Any) -> tuple[Any, ...]:
    """The settings a corpus is prepared with: configs that agree share a prepared corpus."""
    from classifier.tune import preparation as settings

    return settings(cfg)


def prepare(folder: Path, cfg: Any, jobs: int) -> Any:
    """A corpus folder split into paragraphs and tokenized (``.texts``) as training does."""
    from classifier.dataset import prepare_corpus

    return prepare_corpus(documents(folder), cfg.resolved().text, jobs)


def fit(data: Any, cfg: Any, jobs: int) -> tuple[Any, Any]:
    """Fit a classifier on a prepared corpus exactly as ``tagger train`` does; no saving."""
    from classifier.fit import fit_classifier

    return fit_classifier(data, cfg.resolved(), jobs)


def score_prepared_corpus(model: Any, data: Any) -> dict[str, Any]:
    """Paragraph and document metrics of a prepared corpus under the model's decision rule."""
    from training.evaluate import evaluate_prepared

    return evaluate_prepared(model, data)


def featurizer(cfg: Any, texts: list[str]) -> Callable[[list[str]], Any]:
    """The model's feature extraction for ``cfg``, fitted on prepared ``texts``."""
    from classifier.features import fit_features

    return fit_features(texts, cfg)[0].transform


# --- the steps of one prediction (bench.perf_predict times them one by one) -----------------
def prepared(model: Any, texts: Sequence[str]) -> list[str]:
    """Each text tokenized as one paragraph (the segmentation step)."""
    from classifier.text import prepare_paragraph

    settings = model.config.text
    return [prepare_paragraph(t, settings) for t in texts]


def features(model: Any, prepared_texts: Sequence[str]) -> Any:
    """TF-IDF rows of prepared texts."""
    return model.scorer.transform(prepared_texts)


def calibrate(model: Any, decision: Any) -> Any:
    """Scores in [0, 1] of linear decision values."""
    return model.scorer.calibration.apply(decision)


def weights(model: Any) -> Any:
    """The stacked weights: ``.coef`` (features × labels) and ``.intercept``."""
    return model.scorer.weights


def first_level(model: Any, prepared_texts: Sequence[str]) -> Any:
    """Raw first-level values of prepared texts (what the second level reads)."""
    return model.scorer.decisions(prepared_texts)


def second_level(model: Any, prepared_texts: Sequence[str], decisions: Any) -> Any:
    """Document scores of one-paragraph texts from their first-level values (the stacked
    model's second level; the paragraph scores calibrated when it has none)."""
    import numpy as np

    if model.stacker is None:
        return calibrate(model, decisions)
    n = len(prepared_texts)
    return model.stacked_scores(prepared_texts, np.arange(n), n, decisions)


def array_bytes(folder: Path) -> dict[str, int]:
    """Bytes each array takes in a version's ``arrays.npz`` (compressed), by name."""
    import zipfile

    from classifier.artifact import ARRAYS_FILE

    with zipfile.ZipFile(folder / ARRAYS_FILE) as z:
        return {i.filename.removesuffix(".npy"): i.compress_size for i in z.infolist()}


# --- a Dask cluster (bench.scale) ---------------------------------------------------------
def fitted_features(cfg: Any, texts: list[str]) -> Any:
    """The TF-IDF matrix of ``texts`` (features fitted on them), as training makes it."""
    from classifier.features import fit_features

    return fit_features(texts, cfg)[1]


def labels_of(tags: Sequence[Sequence[str]], labels: Sequence[str]) -> Any:
    """The label indicator matrix (paragraphs × labels)."""
    from classifier.labels import label_matrix

    return label_matrix(tags, list(labels))


def fit_labels(x: Any, y: Any, cfg: Any, client: Any = None, jobs: int = 1) -> Any:
    """``fit_one_vs_rest`` in threads, or on ``client``'s workers."""
    from classifier.cluster import DaskLabels
    from classifier.linear import fit_one_vs_rest

    backend = DaskLabels(client) if client is not None else None
    return fit_one_vs_rest(x, y, cfg, jobs, backend=backend)


def connect(address: str) -> Any:
    """A context manager: a client of ``address`` or of a new ``local:N`` cluster."""
    from classifier.cluster import connect as cluster_connect

    return cluster_connect(address)


def cluster_usage(client: Any) -> dict[str, Any]:
    """Peak RSS and CPU seconds of the client and each worker."""
    from classifier.cluster import usage

    return usage(client)


def predict_folder(
    sources: Sequence[str], out: Path, models_dir: Path, ref: str, cluster: str | None
) -> Any:
    """``tagger predict SOURCES --out OUT [--cluster ADDRESS]``."""
    from training.batch import Options, predict_to_folder

    return predict_to_folder(list(sources), out, models_dir, ref, Options(), cluster=cluster)
