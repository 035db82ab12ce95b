"""Why a tag: the terms of a text that raised the tag's linear score most, and where they are.

A term's contribution to a label is its TF-IDF value times the label's level-1 weight
(``LinearWeights.coef``); only the features and those weights are read, whatever decides
the tags from the scores afterwards. Features that read the same (the word ``报告`` and the
character n-grams ``报告``, `` 报告``, ``报告 ``) are one term: their contributions add up
and their occurrences are its spans. A span is ``[start, end)`` in the text as sent, found
through the text path's offsets (``prepare_text(..., offsets=True)``), so ``text[start:end]``
is the term as written there: traditional characters, full-width letters, a
pre-segmented word with its spaces.

A paragraph's evidence is its own row's; a document's follows the model's aggregation in the
linear terms: the mean (or length-weighted mean) of its paragraphs' contributions, for
``max`` those of the paragraph with the highest decision value for the label, for ``whole``
those of the whole text as one row (``mean+whole``: half of each).

A model that reads the labels' names (``classifier.names``) moves a document's score for a
tag whose name shares terms with the text; that rise is explained too, by the shared terms:
a term's part is its mean TF-IDF value over the paragraphs times the name's value for it
times the label's name weight, so the parts add up to the logit shift the name gave. A
shift under ``MIN_NAME_SHIFT`` is not listed: it moved the score by a point at most.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from classifier.features import _SPACE_IN_CJK, Features
from classifier.linear import LinearWeights
from classifier.names import LabelNames
from classifier.offsets import Spans
from classifier.text import PreparedText, TextSettings, prepare_text

if TYPE_CHECKING:
    from classifier.model import Prediction, TopicClassifier

DEFAULT_TERMS = 5
MAX_TERMS = 20
MAX_SPANS = 16  # occurrences listed per term (the first ones in the text)
# the smallest logit shift by a tag's name that is explained (x 0.25 at most in probability)
MIN_NAME_SHIFT = 0.05


@dataclass(frozen=True)
class Evidence:
    """A term, its contribution to a label's decision value, and where it is written."""

    term: str
    contribution: float
    spans: list[tuple[int, int]]


@dataclass(frozen=True)
class Explanation:
    """The evidence of a text's tags, and of each paragraph's tags when asked for."""

    tags: dict[str, list[Evidence]]
    paragraphs: list[dict[str, list[Evidence]]] | None = None
    # document tags whose name the text shares terms with: those terms, each with its part
    # of the logit shift the name gave the score (see the module's docstring)
    names: dict[str, list[Evidence]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Row:
    """A prepared text (tokens apart by spaces) with its characters' spans."""

    prepared: str
    spans: Spans

    @cached_property
    def _tokens(self) -> tuple[list[str], list[int], dict[str, list[int]]]:
        """The tokens, where each starts, and where each token is (its numbers)."""
        tokens = self.prepared.split(" ")
        starts, pos = [], 0
        at: dict[str, list[int]] = {}
        for i, t in enumerate(tokens):
            starts.append(pos)
            pos += len(t) + 1
            at.setdefault(t, []).append(i)
        return tokens, starts, at

    @cached_property
    def _joined(self) -> tuple[str, list[int]]:
        """``features.join_cjk`` of the row, and where each of its characters is in the row."""
        removed = {m.start() for m in _SPACE_IN_CJK.finditer(self.prepared)}
        kept = [i for i in range(len(self.prepared)) if i not in removed]
        return "".join(self.prepared[i] for i in kept), kept

    def word_spans(self, term: str) -> list[tuple[int, int]]:
        """Where the word n-gram ``term`` (tokens apart by spaces) occurs."""
        want = term.split(" ")
        tokens, starts, at = self._tokens
        found = []
        for i in at.get(want[0], []):
            if tokens[i : i + len(want)] == want:
                last = i + len(want) - 1
                found.append(self.spans.span(starts[i], starts[last] + len(tokens[last])))
        return found

    def char_spans(self, term: str) -> list[tuple[int, int]]:
        """Where the ``char_wb`` n-gram ``term`` occurs: in the text with the segmentation of
        CJK runs undone (``features.join_cjk``), each word padded by a space each side."""
        core = term.strip(" ")
        if not core:
            return []
        left, right = term.startswith(" "), term.endswith(" ")
        joined, kept = self._joined
        found = []
        start = 0
        for word in joined.split(" "):
            k = word.find(core)
            while k >= 0:
                if (not left or k == 0) and (not right or k + len(core) == len(word)):
                    a, b = kept[start + k], kept[start + k + len(core) - 1]
                    found.append(self.spans.span(a, b + 1))
                k = word.find(core, k + 1)
            start += len(word) + 1
        return found


def explain_predictions(
    model: TopicClassifier,
    texts: Sequence[str],
    predictions: Sequence[Prediction],
    n_terms: int = DEFAULT_TERMS,
    checkpoint: Callable[[], None] | None = None,
) -> list[Explanation]:
    """The evidence of the tags ``model.predict(texts, ...)`` gave (``predictions``), and
    of each paragraph's when they were asked for."""
    tags = [[t.tag for t in p.tags] for p in predictions]
    per_paragraph = None
    if predictions and all(p.paragraphs is not None for p in predictions):
        per_paragraph = [[[t.tag for t in q.tags] for q in p.paragraphs or []] for p in predictions]
    scorer = model.scorer
    return explain_texts(
        scorer.features,
        scorer.weights,
        model.labels,
        model.config.text,
        texts,
        tags,
        per_paragraph,
        scorer.aggregation,
        n_terms,
        checkpoint,
        model.names,
    )


def explain_texts(
    features: Features,
    weights: LinearWeights,
    labels: Sequence[str],
    settings: TextSettings,
    texts: Sequence[str],
    tags: Sequence[Sequence[str]],
    paragraph_tags: Sequence[Sequence[Sequence[str]]] | None = None,
    aggregation: str = "mean",
    n_terms: int = DEFAULT_TERMS,
    checkpoint: Callable[[], None] | None = None,
    names: LabelNames | None = None,
) -> list[Explanation]:
    """The evidence of each text's ``tags`` (and of each paragraph's ``paragraph_tags``);
    with the model's ``names``, also of what the tags' names added to the documents' scores."""
    if not 1 <= n_terms <= MAX_TERMS:
        raise ValueError(f"n_terms must be 1 to {MAX_TERMS}")
    column = {label: j for j, label in enumerate(labels)}
    out = []
    for i, text in enumerate(texts):
        if checkpoint is not None:
            checkpoint()
        prepared = prepare_text(text, settings, checkpoint, offsets=True)
        per_paragraph = None if paragraph_tags is None else paragraph_tags[i]
        out.append(
            _explain(
                features,
                weights,
                column,
                prepared,
                tags[i],
                per_paragraph,
                aggregation,
                n_terms,
                names,
                checkpoint or _no_checkpoint,
            )
        )
    return out


def _no_checkpoint() -> None:
    pass


def _explain(
    features: Features,
    weights: LinearWeights,
    column: dict[str, int],
    prepared: PreparedText,
    tags: Sequence[str],
    paragraph_tags: Sequence[Sequence[str]] | None,
    aggregation: str,
    n_terms: int,
    names: LabelNames | None = None,
    checkpoint: Callable[[], None] = _no_checkpoint,
) -> Explanation:
    """One text's explanation; ``checkpoint`` is called before each tag's evidence is looked
    for (a text of many paragraphs and tags is explained within the request's budget)."""
    assert prepared.spans is not None
    rows = [_Row(p, s) for p, s in zip(prepared.tokens, prepared.spans, strict=True)]
    n_par = len(rows)
    whole = aggregation in ("whole", "mean+whole")
    if whole:
        rows.append(_whole(rows))
    wanted = sorted(
        {column[t] for t in tags} | {column[t] for ts in paragraph_tags or [] for t in ts}
    )
    x = features.transform([r.prepared for r in rows])
    used, compact = np.unique(x.indices, return_inverse=True)
    xc = sp.csr_matrix(
        (x.data, compact.astype(np.int32).ravel(), x.indptr), shape=(x.shape[0], len(used))
    )
    w = np.asarray(weights.coef[used][:, wanted].toarray(), dtype=np.float64)
    weighted = (w != 0).any(axis=1)
    name_w = None
    if names is not None:  # each used feature's value in the names (sparse: names are short)
        name_w = sp.csc_matrix(names.vectors[used][:, wanted], dtype=np.float64)
        weighted |= np.asarray(name_w.getnnz(axis=1) > 0).ravel()
    terms = _Terms(features, used, weighted)
    by_column = xc.tocsc()
    at = {j: k for k, j in enumerate(wanted)}

    # the document: row coefficients per label (the aggregation, in linear terms)
    alpha = np.zeros((len(rows), len(wanted)))
    if aggregation == "max":
        decision = np.asarray(xc[:n_par] @ w)
        alpha[np.argmax(decision, axis=0), np.arange(len(wanted))] = 1.0
    elif aggregation == "weighted" and sum(prepared.lengths) > 0:
        alpha[:n_par] = (np.asarray(prepared.lengths, dtype=float) / sum(prepared.lengths))[:, None]
    elif aggregation != "whole":
        alpha[:n_par] = 1.0 / n_par
    if aggregation == "whole":
        alpha[n_par] = 1.0
    elif aggregation == "mean+whole":
        alpha *= 0.5
        alpha[n_par] = 0.5
    doc = np.asarray(xc.T @ alpha) * w  # used features × wanted labels
    doc_tags = {}
    for t in tags:
        checkpoint()
        k = at[column[t]]
        doc_tags[t] = terms.top(doc[:, k], rows, np.flatnonzero(alpha[:, k]), by_column, n_terms)
    name_tags = {}
    if name_w is not None:
        # the names read the mean of the paragraphs' rows, whatever the aggregation
        mean = np.asarray(xc[:n_par].sum(axis=0), dtype=np.float64).ravel() / n_par
        for t in tags:
            checkpoint()
            k = at[column[t]]
            share = mean * name_w[:, k].toarray().ravel() * float(names.weight[wanted[k]])
            if share.sum() < MIN_NAME_SHIFT:
                continue
            found = terms.top(share, rows, np.arange(n_par), by_column, n_terms)
            if found:
                name_tags[t] = found
    if paragraph_tags is None:
        return Explanation(doc_tags, names=name_tags)
    paragraphs = []
    for r, ts in enumerate(paragraph_tags):
        row = xc[r]
        evidence = {}
        for t in ts:
            checkpoint()
            contribution = np.zeros(len(used))
            contribution[row.indices] = row.data * w[row.indices, at[column[t]]]
            evidence[t] = terms.top(contribution, rows, np.array([r]), by_column, n_terms)
        paragraphs.append(evidence)
    return Explanation(doc_tags, paragraphs, name_tags)


def _whole(rows: list[_Row]) -> _Row:
    """The paragraphs' rows joined as ``dataset.join_by_document`` joins them (a space
    between, standing where the character before it does)."""
    parts, starts, ends = [], [], []
    for row in rows:
        if parts:
            parts.append(" ")
            starts.append(starts[-1] if starts else 0)
            ends.append(ends[-1] if ends else 0)
        parts.append(row.prepared)
        starts.extend(row.spans.starts)
        ends.extend(row.spans.ends)
    return _Row("".join(parts), Spans(starts, ends))


class _Terms:
    """The used feature columns of a text grouped by how they read (word or n-gram)."""

    def __init__(
        self, features: Features, used: NDArray[np.intp], weighted: NDArray[np.bool_]
    ) -> None:
        """``used``: the text's feature columns; only the ``weighted`` ones (a weight for one
        of the labels explained) can contribute, so only they are named and grouped."""
        bounds = np.cumsum([0] + [b.n_features for b in features.blocks])
        block_of = np.searchsorted(bounds, used, side="right") - 1
        self.names: dict[int, str] = {}
        self.kinds: dict[int, str] = {}
        members, shown = [], []
        for b, block in enumerate(features.blocks):
            where = np.flatnonzero((block_of == b) & weighted)
            names = [block.terms[c] for c in (used[where] - bounds[b]).tolist()]
            self.names.update(zip(where.tolist(), names, strict=True))
            self.kinds.update(dict.fromkeys(where.tolist(), block.analyzer))
            members.append(where)
            shown.extend(names if block.analyzer == "words" else [n.strip(" ") for n in names])
        self.where = np.concatenate(members) if members else np.zeros(0, dtype=np.intp)
        unique, group = np.unique(np.array(shown, dtype=str), return_inverse=True)
        self.shown: list[str] = unique.tolist()
        self.group = group.ravel()
        self.group_of = np.full(len(used), -1, dtype=np.intp)
        self.group_of[self.where] = self.group
        if self.shown and self.shown[0] == "":  # padding only (char_wb's " "): not text
            self.group_of[self.group_of == 0] = -1

    def members(self, g: int) -> list[int]:
        """The used columns that read as term ``g``."""
        return self.where[self.group == g].tolist()  # type: ignore[no-any-return]

    def top(
        self,
        contribution: NDArray[np.float64],
        rows: list[_Row],
        contributing_rows: NDArray[np.intp],
        by_column: sp.csc_matrix,
        n_terms: int,
    ) -> list[Evidence]:
        """The ``n_terms`` terms of highest positive summed contribution, with their spans
        in the rows that contributed (``by_column``: the rows' features, by column)."""
        keep = self.group_of >= 0
        sums = np.bincount(
            self.group_of[keep], weights=contribution[keep], minlength=len(self.shown)
        )
        order = np.argsort(-sums, kind="stable")[:n_terms]
        evidence = []
        for g in order.tolist():
            if sums[g] <= 0:
                break
            term = self.shown[g]
            members = self.members(g)
            spans: set[tuple[int, int]] = set()
            contributing = set(contributing_rows.tolist())
            for k in members:
                holding = by_column.indices[by_column.indptr[k] : by_column.indptr[k + 1]]
                for r in sorted(contributing.intersection(holding.tolist())):
                    if self.kinds[k] == "words":
                        spans.update(rows[r].word_spans(self.names[k]))
                    else:
                        spans.update(rows[r].char_spans(self.names[k]))
            evidence.append(Evidence(term, round(float(sums[g]), 6), sorted(spans)[:MAX_SPANS]))
        return evidence
