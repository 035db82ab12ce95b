"""The cost of explanations: milliseconds per paragraph with and without ``explain``.

Trains two models on the demo corpus (``data/sample``) into a temporary folder: the default
configuration (word unigrams) and the one with character n-grams beside word bigrams
(``ngram_max=2, char_ngram_max=2``). Each of the corpus's paragraphs (as the model splits
them) is tagged alone, interleaved: ``predict`` alone, ``predict`` then
``explain_predictions`` (five terms a tag), and the two text paths (``prepare_text`` without
and with offsets). Medians and 90th percentiles in ms per paragraph; then whole documents
with ``paragraphs=True`` (document and paragraph evidence), per paragraph.

    .venv/bin/python -m bench.explain [--paragraphs 400] [--corpus PATH]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from classifier.config import TrainingConfig
from classifier.corpus import read_corpus
from classifier.explain import explain_predictions
from classifier.registry import load_model
from classifier.text import prepare_text
from training.train import train

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
CONFIGS = {
    "words (default)": TrainingConfig(),
    "words 1-2 + chars 1-2": TrainingConfig(ngram_max=2, char_ngram_max=2),
}


def _ms(step: Callable[[], object]) -> float:
    started = time.perf_counter()
    step()
    return 1000 * (time.perf_counter() - started)


def _p90(values: list[float]) -> float:
    return sorted(values)[int(0.9 * (len(values) - 1))]


def _measure(model, docs: list[str], n_paragraphs: int) -> tuple[object, ...]:
    """One table row: paragraphs alone (interleaved), then whole documents."""
    paragraphs = [p for d in docs for p in model.split(d)][:n_paragraphs]
    settings = model.config.text

    def explained(texts: list[str], per_paragraph: bool = False) -> object:
        return explain_predictions(model, texts, model.predict(texts, paragraphs=per_paragraph))

    for p in paragraphs[:20]:  # warm up
        explained([p])
    times: dict[str, list[float]] = {k: [] for k in ("plain", "explain", "prep", "off")}
    for p in paragraphs:
        times["plain"].append(_ms(lambda p=p: model.predict([p])))
        times["explain"].append(_ms(lambda p=p: explained([p])))
        times["prep"].append(_ms(lambda p=p: prepare_text(p, settings)))
        times["off"].append(_ms(lambda p=p: prepare_text(p, settings, offsets=True)))
    doc_plain, doc_explain, n_par = 0.0, 0.0, 0
    for d in docs[:100]:
        n_par += len(model.split(d))
        doc_plain += _ms(lambda d=d: model.predict([d], paragraphs=True))
        doc_explain += _ms(lambda d=d: explained([d], per_paragraph=True))
    return (
        len(paragraphs),
        statistics.median(len(p) for p in paragraphs),
        statistics.median(times["plain"]),
        statistics.median(times["explain"]),
        _p90(times["plain"]),
        _p90(times["explain"]),
        statistics.median(times["prep"]),
        statistics.median(times["off"]),
        doc_plain / n_par,
        doc_explain / n_par,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=int, default=400, help="paragraphs timed")
    parser.add_argument("--corpus", type=Path, default=SAMPLE, help="trained on and timed")
    args = parser.parse_args()
    docs = [d.text for d in read_corpus([args.corpus])]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg in CONFIGS.items():
            train([str(args.corpus)], Path(tmp), name="bench", config=cfg, jobs=1)
            rows.append(
                (name, *_measure(load_model(Path(tmp), "bench").model, docs, args.paragraphs))
            )
    print(
        "| model | paragraphs | median chars | predict ms | predict+explain ms | p90 predict"
        " | p90 +explain | prepare ms | prepare+offsets ms | documents: ms/paragraph"
        " | +explain |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.0f} | " + " | ".join(f"{v:.2f}" for v in r[3:]) + " |")


if __name__ == "__main__":
    main()
