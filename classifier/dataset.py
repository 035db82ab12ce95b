"""A corpus made ready for fitting and evaluation: documents' tags and prepared paragraphs."""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Iterable, Iterator, MutableSequence, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from classifier.corpus import Document
from classifier.progress import ProgressHook, no_progress
from classifier.text import TextSettings, prepare_texts

# characters of text per unit of work when preparing in parallel (about 0.1 s of segmenting)
BATCH_CHARS = 1_000_000
# prepared texts handed on at a time when a corpus is featurised in chunks
CHUNK_ROWS = 8192


class Spool:
    """Prepared paragraphs written to a file as they are made, read back in chunks: a corpus
    featurised chunk by chunk without its texts in memory. One JSON list of texts a line,
    one line a batch of documents; the file is the caller's (a temporary folder's)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.n_chunks = 0
        path.write_bytes(b"")

    def write(self, texts: list[str]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(texts, ensure_ascii=False) + "\n")
        self.n_chunks += 1

    def chunks(self) -> Iterator[list[str]]:
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                texts: list[str] = json.loads(line)
                yield texts


@dataclass
class PreparedCorpus:
    """Documents reduced to what fitting needs: ids, tags and tokenized paragraphs.

    ``texts[i]`` is paragraph i's tokens joined by spaces, ``par_doc[i]`` the index of its
    document (paragraphs come in document order) and ``par_len[i]`` its number of visible
    characters. With a ``spool``, the texts are in its file, not in ``texts``: read them
    with ``paragraph_chunks`` and ``document_chunks``.
    """

    doc_ids: list[str] = field(default_factory=list)
    doc_tags: list[tuple[str, ...]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    par_doc: MutableSequence[int] = field(default_factory=list)
    par_len: MutableSequence[int] = field(default_factory=list)
    spool: Spool | None = None

    @property
    def n_documents(self) -> int:
        return len(self.doc_ids)

    @property
    def n_paragraphs(self) -> int:
        return len(self.par_doc)

    def paragraph_chunks(self, rows: int = CHUNK_ROWS) -> Iterator[list[str]]:
        """The prepared paragraphs in order, a chunk at a time."""
        if self.spool is not None:
            yield from self.spool.chunks()
            return
        for i in range(0, len(self.texts), rows):
            yield self.texts[i : i + rows]

    def document_chunks(self, docs: Sequence[int], rows: int = CHUNK_ROWS) -> Iterator[list[str]]:
        """The documents at ``docs`` (ascending), each its paragraphs joined into one prepared
        text (as ``joined``), a chunk of at most ``rows`` at a time."""
        wanted = np.zeros(self.n_documents, dtype=bool)
        wanted[np.asarray(docs, dtype=np.intp)] = True
        par_doc = np.asarray(self.par_doc, dtype=np.intp)
        out: list[str] = []
        parts: list[str] = []
        current, i = -1, 0
        for chunk in self.paragraph_chunks():
            for text in chunk:
                d = int(par_doc[i])
                i += 1
                if not wanted[d]:
                    continue
                if d != current and parts:
                    out.append(" ".join(parts))
                    parts = []
                    if len(out) >= rows:
                        yield out
                        out = []
                current = d
                parts.append(text)
        if parts:
            out.append(" ".join(parts))
        if out:
            yield out

    def _held(self) -> None:
        if self.spool is not None:
            raise ValueError("a spooled corpus's texts are read with paragraph_chunks")

    def subset(self, docs: Sequence[int]) -> PreparedCorpus:
        """The documents at ``docs`` (and their paragraphs), renumbered from zero."""
        self._held()
        new_id = {d: i for i, d in enumerate(docs)}
        out = PreparedCorpus([self.doc_ids[d] for d in docs], [self.doc_tags[d] for d in docs])
        for text, d, n in zip(self.texts, self.par_doc, self.par_len, strict=True):
            if d in new_id:
                out.texts.append(text)
                out.par_doc.append(new_id[d])
                out.par_len.append(n)
        return out

    def paragraph_tags(self) -> list[tuple[str, ...]]:
        return [self.doc_tags[d] for d in self.par_doc]

    def joined(self) -> list[str]:
        """Each document's prepared paragraphs joined into one prepared text."""
        self._held()
        return join_by_document(self.texts, np.asarray(self.par_doc), self.n_documents)

    def whole_documents(self) -> tuple[list[str], list[tuple[str, ...]]]:
        """Each document of several paragraphs as one text (its paragraphs joined), with tags."""
        counts = np.bincount(self.par_doc, minlength=self.n_documents)
        joined = self.joined()
        multi = np.flatnonzero(counts > 1)
        return [joined[d] for d in multi], [self.doc_tags[d] for d in multi]


def join_by_document(
    prepared: Sequence[str], par_doc: NDArray[np.integer], n_docs: int
) -> list[str]:
    """Each document's prepared paragraphs joined into one prepared text."""
    parts: list[list[str]] = [[] for _ in range(n_docs)]
    for text, d in zip(prepared, par_doc, strict=True):
        parts[int(d)].append(text)
    return [" ".join(p) for p in parts]


def prepare_corpus(
    documents: Iterable[Document],
    settings: TextSettings,
    jobs: int = 1,
    progress: ProgressHook = no_progress,
    spool: Path | None = None,
) -> PreparedCorpus:
    """Prepare every document's text (``text.prepare_text``), in parallel batches, streaming.

    With ``spool`` (a file path) the prepared paragraphs are written there batch by batch
    instead of being kept: what is held is each document's id and tags and two integers a
    paragraph (``par_doc``, ``par_len``).
    """
    out = PreparedCorpus(par_doc=array("q"), par_len=array("q"))
    if spool is not None:
        out.spool = Spool(spool)
    advance = progress("segmenting", None)

    def batches() -> Iterator[list[str]]:
        batch: list[str] = []
        size = 0
        for doc in documents:
            out.doc_ids.append(doc.id)
            out.doc_tags.append(doc.tags)
            batch.append(doc.text)
            size += len(doc.text)
            if size >= BATCH_CHARS:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch

    if jobs == 1:
        results: Iterable[list] = (prepare_texts(b, settings) for b in batches())
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=jobs, return_as="generator")(
            delayed(prepare_texts)(b, settings) for b in batches()
        )
    doc_index = 0
    for prepared in results:
        if out.spool is not None:
            out.spool.write([t for text in prepared for t in text.tokens])
        for text in prepared:
            if out.spool is None:
                out.texts.extend(text.tokens)
            out.par_doc.extend([doc_index] * len(text.tokens))
            out.par_len.extend(text.lengths)
            doc_index += 1
        advance(sum(len(t.tokens) for t in prepared))
    return out


def id_hashes(doc_ids: Sequence[str], salt: str) -> NDArray[np.int64]:
    """A number below 2**32 for each document id, from a hash of ``salt:id``: splits made
    with it are stable as the corpus grows, and splits of different salts are independent
    (corpora are often split into train/test by an unsalted hash of the same names)."""
    return np.array(
        [int(hashlib.sha1(f"{salt}:{d}".encode()).hexdigest()[:8], 16) for d in doc_ids],
        dtype=np.int64,
    )


def validation_docs(doc_ids: Sequence[str], fraction: float) -> NDArray[np.bool_]:
    """Pick validation documents by a hash of their id: stable as the corpus grows."""
    if fraction <= 0 or len(doc_ids) < 2:
        return np.zeros(len(doc_ids), dtype=bool)
    h = id_hashes(doc_ids, "tagger-validation")
    val = h / 2**32 < fraction
    if not val.any():
        val[int(np.argmin(h))] = True
    if val.all():
        val[int(np.argmax(h))] = False
    return val


def document_folds(doc_ids: Sequence[str], k: int) -> NDArray[np.intp]:
    """Each document's fold, 0 to ``k - 1``, by a salted hash of its id: stable as the corpus
    grows, and independent of the validation split's hash."""
    h = id_hashes(doc_ids, "tagger-fold")
    return (h % k).astype(np.intp)
