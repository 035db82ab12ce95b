"""bench.ablation's holdout: train/ split by document into two disjoint parts that cover it,
paragraphs following their document, the same split on every run."""

from __future__ import annotations

from bench.ablation import held_out
from classifier.dataset import PreparedCorpus


def corpus(n: int) -> PreparedCorpus:
    data = PreparedCorpus([f"doc{i}" for i in range(n)], [(f"T{i % 3}",) for i in range(n)])
    for i in range(n):
        for p in range(1 + i % 2):  # one or two paragraphs a document
            data.texts.append(f"text {i} {p}")
            data.par_doc.append(i)
            data.par_len.append(10)
    return data


def test_holdout_splits_documents_with_their_paragraphs() -> None:
    data = corpus(400)
    rest, held = held_out(data, 0.2)
    assert set(rest.doc_ids).isdisjoint(held.doc_ids)
    assert sorted(rest.doc_ids + held.doc_ids) == sorted(data.doc_ids)
    assert 40 <= held.n_documents <= 120  # about a fifth
    for part in (rest, held):
        for text, d in zip(part.texts, part.par_doc, strict=True):
            assert text.split()[1] == part.doc_ids[d].removeprefix("doc")
    assert held_out(data, 0.2)[1].doc_ids == held.doc_ids
