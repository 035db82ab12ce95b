"""Metrics on a hand-computed example: micro/macro P/R/F1, P@k, nDCG@5, unknown labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from classifier.evaluate import evaluate_scores, hits_matrix

LABELS = ["A", "B", "C", "D"]
SCORES = np.array(
    [
        [0.9, 0.6, 0.2, 0.1],  # predicted {A, B}; ranking A B C D
        [0.3, 0.8, 0.7, 0.1],  # predicted {B, C}; ranking B C A D
        [0.2, 0.1, 0.3, 0.6],  # predicted {D};    ranking D C A B
    ]
)
GOLD = [["A", "C"], ["C"], ["B", "X"]]  # X is unknown to the model


@pytest.fixture(scope="module")
def result() -> dict:
    return evaluate_scores(SCORES, GOLD, LABELS, threshold=0.5, min_labels=1, max_labels=10)


def test_micro(result) -> None:
    # tp = 2 (A in row 0, C in row 1); fp = 3 (B, B, D); fn = 3 (C in row 0, B and X in row 2)
    assert result["micro"]["precision"] == pytest.approx(2 / 5)
    assert result["micro"]["recall"] == pytest.approx(2 / 5)
    assert result["micro"]["f1"] == pytest.approx(2 / 5)
    assert result["n"] == 3
    assert result["labels_per_item"] == pytest.approx(5 / 3)


def test_macro_over_gold_labels(result) -> None:
    # A: P1 R1 F1; B: 0 0 0; C: P1 R.5 F2/3; X: 0 0 0; D (not in gold) is left out
    assert result["macro"]["precision"] == pytest.approx((1 + 0 + 1 + 0) / 4)
    assert result["macro"]["recall"] == pytest.approx((1 + 0 + 0.5 + 0) / 4)
    assert result["macro"]["f1"] == pytest.approx((1 + 0 + 2 / 3 + 0) / 4)


def test_per_label(result) -> None:
    per = result["per_label"]
    assert set(per) == {"A", "B", "C", "D", "X"}
    assert per["A"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert per["B"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert per["C"]["recall"] == pytest.approx(0.5) and per["C"]["support"] == 2
    assert per["D"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert per["X"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_precision_at_k_divides_by_k(result) -> None:
    # hits in rank order: row 0 [1,0,1,0], row 1 [0,1,0,0], row 2 [0,0,0,0] (B ranked 4th: hit)
    assert result["p@1"] == pytest.approx(1 / 3)
    assert result["p@3"] == pytest.approx((2 + 1 + 0) / (3 * 3))
    assert result["p@5"] == pytest.approx((2 + 1 + 1) / (5 * 3))


def test_ndcg_at_5(result) -> None:
    d = [1 / math.log2(r + 2) for r in range(4)]
    row0 = (d[0] + d[2]) / (d[0] + d[1])
    row1 = d[1] / d[0]
    row2 = d[3] / (d[0] + d[1])  # two gold labels (one unknown) in the ideal ranking
    assert result["ndcg@5"] == pytest.approx((row0 + row1 + row2) / 3)


def test_unknown_gold_label_counts_as_a_miss() -> None:
    known_only = evaluate_scores(SCORES, [["A", "C"], ["C"], ["B"]], LABELS, 0.5)
    with_unknown = evaluate_scores(SCORES, GOLD, LABELS, 0.5)
    assert known_only["micro"]["recall"] == pytest.approx(2 / 4)
    assert with_unknown["micro"]["recall"] == pytest.approx(2 / 5)
    assert with_unknown["micro"]["precision"] == known_only["micro"]["precision"]
    assert with_unknown["ndcg@5"] < known_only["ndcg@5"]


def test_perfect_prediction() -> None:
    scores = np.array([[0.9, 0.1, 0.1, 0.1], [0.1, 0.8, 0.7, 0.1]])
    out = evaluate_scores(scores, [["A"], ["B", "C"]], LABELS, 0.5)
    assert out["micro"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert out["ndcg@5"] == pytest.approx(1.0)
    assert out["p@1"] == pytest.approx(1.0)
    assert out["p@3"] == pytest.approx(3 / 6)


def test_min_and_max_labels_apply() -> None:
    out = evaluate_scores(SCORES, GOLD, LABELS, threshold=0.95, min_labels=0)
    assert out["labels_per_item"] == 0.0
    assert out["micro"]["precision"] == 0.0 and out["micro"]["recall"] == 0.0
    out = evaluate_scores(SCORES, GOLD, LABELS, threshold=0.0, min_labels=0, max_labels=1)
    assert out["labels_per_item"] == 1.0
    assert out["micro"]["precision"] == pytest.approx(1 / 3)


def test_hits_matrix() -> None:
    idx = np.array([[0, 1, 2], [2, 3, 0]])
    hits = hits_matrix(idx, [["B", "Z"], ["A"]], LABELS)
    assert hits.tolist() == [[False, True, False], [False, False, True]]


def test_empty_gold() -> None:
    out = evaluate_scores(np.zeros((0, 4)), [], LABELS, 0.5)
    assert out["n"] == 0 and out["p@1"] == 0.0 and out["ndcg@5"] == 0.0
