"""bench.scale's corpus of a thesaurus-sized tag set: every label is a label of the corpus, the
same seed gives the same corpus, and its JSONL is what the corpus reader takes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bench.scale import synthetic_documents, write_jsonl
from classifier.corpus import read_corpus


def test_every_label_is_on_min_docs_documents() -> None:
    docs = synthetic_documents(300, 500, seed=3, min_docs=2)
    counts = Counter(t for d in docs for t in d["tags"])
    assert set(counts) == {f"L{j}" for j in range(500)}
    assert min(counts.values()) >= 2
    assert all(1 <= len(d["text"].split("\n")) <= 4 for d in docs)
    assert all(len(set(d["tags"])) == len(d["tags"]) for d in docs)


def test_same_seed_same_corpus() -> None:
    assert synthetic_documents(50, 80, seed=1) == synthetic_documents(50, 80, seed=1)
    assert synthetic_documents(50, 80, seed=1) != synthetic_documents(50, 80, seed=2)


def test_jsonl_reads_back(tmp_path: Path) -> None:
    docs = synthetic_documents(40, 60, seed=0)
    path = tmp_path / "corpus.jsonl"
    write_jsonl(path, docs)
    assert not list(tmp_path.glob("*.part"))
    read = list(read_corpus([path]))
    assert [d.text for d in read] == [d["text"] for d in docs]
    assert [sorted(d.tags) for d in read] == [sorted(d["tags"]) for d in docs]
