"""The promotion gate: a new version is served only if, on one evaluation set, it is not worse
than the served version by more than a margin on document micro- and macro-F1.

Both versions are scored on the same documents in the same run, each with its own text
settings and decision rule, and both scores go into the registry's promotion record
(``classifier.registry.record_decision``) with the decision and why. The evaluation set is a
corpus given for it (``--gate-corpus``), or else the new version's held-out validation
documents (their ids are in its metadata; their text is read again from its training corpus).

With ``refit_on_all`` (the default) the final weights of both versions were fitted on their
validation documents too: they were held out only from calibration and threshold tuning, so
the scores on them flatter both models (and a document that is new in the candidate's corpus
flatters the candidate alone). A gate corpus that neither version trained on, or
``--set refit_on_all=false``, gives an unflattered comparison; the record says which it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifier import registry
from classifier.artifact import LoadedModel
from classifier.corpus import Document, ReadReport, read_corpus
from classifier.dataset import PreparedCorpus, prepare_corpus
from classifier.errors import ClassifierError

# How much worse (in F1, 0-1) than the served version a new one may be and still be served:
# one point, about the spread of document micro-F1 between two seeds on the test corpora.
DEFAULT_MARGIN = 0.01
METRICS = ("micro", "macro")


@dataclass(frozen=True)
class GateDecision:
    """What the gate decided on one version, why, and the scores it compared."""

    version: str
    promoted: bool
    by: str  # first | gate
    reason: str
    scores: dict[str, Any] | None = None

    def line(self) -> str:
        verdict = "promoted: now served" if self.promoted else "kept as a candidate"
        return f"{verdict} ({self.reason})"


def evaluation_set(
    candidate: LoadedModel, gate_corpus: Sequence[str | Path] | None
) -> tuple[list[Document], dict[str, Any]]:
    """The documents both versions are scored on, and a description of them."""
    if gate_corpus:
        report = ReadReport()
        docs = list(read_corpus(gate_corpus, report=report))
        paths = [Path(p).name for p in gate_corpus]
        return docs, {"source": "gate corpus", "paths": paths, "sha256": report.sha256}
    training = candidate.metadata.get("training", {})
    ids = set(training.get("validation_ids") or [])
    paths = candidate.metadata.get("corpus", {}).get("paths") or []
    docs = [d for d in read_corpus(paths) if d.id in ids] if ids else []
    refit = bool(candidate.metadata.get("config", {}).get("refit_on_all", True))
    return docs, {
        "source": f"validation documents of {candidate.ref}",
        "seen_in_training": refit,
    }


def document_f1(
    loaded: LoadedModel, docs: Sequence[Document], prepared: dict[Any, PreparedCorpus]
) -> dict[str, float]:
    """Document micro- and macro-F1 of a version on ``docs`` under its own decision rule
    (``prepared`` keeps the documents prepared once per text setting)."""
    from training.evaluate import evaluate_prepared

    text = loaded.model.config.text
    if text not in prepared:
        prepared[text] = prepare_corpus(docs, text)
    result = evaluate_prepared(loaded.model, prepared[text])["document"]
    return {m: float(result[m]["f1"]) for m in METRICS}


def compare(
    candidate: dict[str, float], served: dict[str, float], margin: float
) -> tuple[bool, str]:
    """Whether the candidate passes, and why (in one line)."""
    worse = [
        f"document {m}-F1 {candidate[m]:.4f} is below the served {served[m]:.4f} "
        f"by more than the margin {margin:g}"
        for m in METRICS
        if candidate[m] < served[m] - margin - 1e-12
    ]
    if worse:
        return False, "; ".join(worse)
    scores = ", ".join(f"{m}-F1 {candidate[m]:.4f} vs {served[m]:.4f}" for m in METRICS)
    return True, f"not worse than the served version by more than {margin:g} ({scores})"


def gate(
    models_dir: Path,
    candidate: LoadedModel,
    *,
    gate_corpus: Sequence[str | Path] | None = None,
    margin: float = DEFAULT_MARGIN,
) -> GateDecision:
    """Decide whether ``candidate`` (a saved version) is served, and record the decision.

    The first version of a name is promoted without a gate. Otherwise both versions are
    scored on the same documents; the candidate is promoted if neither document micro- nor
    macro-F1 is below the served version's by more than ``margin``. The decision is taken
    under the name's promotion lock and written atomically: a run that fails or is killed
    before it leaves what is served as it was.
    """
    if not 0 <= margin <= 1:
        raise ValueError(f"the gate margin must be in [0, 1], not {margin}")
    name, version = candidate.metadata["name"], candidate.metadata["version"]
    with registry.promotion_lock(models_dir, name) as parent:
        served = registry.read_promotion(parent).get("served")
        if served is None or served == version:
            reason = "the first version of this name: promoted without a gate"
            registry.record_decision(parent, version, promoted=True, by="first", reason=reason)
            return GateDecision(version, True, "first", reason)
        decision = _judge(models_dir, candidate, f"{name}@{served}", gate_corpus, margin)
        registry.record_decision(
            parent,
            version,
            promoted=decision.promoted,
            by="gate",
            reason=decision.reason,
            gate=decision.scores,
        )
        return decision


def _judge(
    models_dir: Path,
    candidate: LoadedModel,
    served_ref: str,
    gate_corpus: Sequence[str | Path] | None,
    margin: float,
) -> GateDecision:
    version = candidate.metadata["version"]
    docs, described = evaluation_set(candidate, gate_corpus)
    scores: dict[str, Any] = {"against": served_ref, "margin": margin, "eval_set": described}
    scores["eval_set"]["documents"] = len(docs)
    if not docs:
        why = "no evaluation documents (no validation split recorded): give --gate-corpus"
        return GateDecision(version, False, "gate", why, scores)
    try:
        served = registry.load_model(models_dir, served_ref)
    except ClassifierError as exc:
        return GateDecision(version, False, "gate", f"the served {served_ref}: {exc}", scores)
    prepared: dict[Any, PreparedCorpus] = {}
    scores["candidate"] = document_f1(candidate, docs, prepared)
    scores["served"] = document_f1(served, docs, prepared)
    promoted, reason = compare(scores["candidate"], scores["served"], margin)
    return GateDecision(version, promoted, "gate", reason, scores)
