"""Feature extraction speed: word TF-IDF against words + character n-grams, same run.

    .venv/bin/python bench/features.py [--corpus tiku] [--texts 1000] [--repeats 5]
                                       [--set KEY=VALUE ...]   (the character configuration)

Fits both vectorizers on the corpus's train/ split (prepared by tagger's own tokenizer),
then times ``classifier.features.transform`` (what the model calls) on the first test/
paragraphs: one text per call, and all of them in one batch. Medians of the repeats; the
ratio is against the word vectorizer measured in the same run. This is the cost that keeps
character n-grams out of the defaults.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sklearn import config_context  # noqa: E402

from classifier.config import TrainingConfig  # noqa: E402
from classifier.corpus import read_corpus  # noqa: E402
from classifier.features import build_vectorizer, transform  # noqa: E402
from classifier.learn import prepare_corpus  # noqa: E402
from training.cli import _parse_set  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--corpus", default="tiku")
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    chars = TrainingConfig().replace(**({"char_ngram_max": 2} | _parse_set(args.overrides)))
    words = chars.replace(char_ngram_max=0)
    cfg = TrainingConfig()
    train = prepare_corpus(read_corpus([args.data / args.corpus / "train"]), cfg, "rjieba", 2)
    test = prepare_corpus(read_corpus([args.data / args.corpus / "test"]), cfg, "rjieba", 2)
    texts = test.texts[: args.texts]
    rows = []
    for name, c in (("words (default)", words), (f"words + characters {c_range(chars)}", chars)):
        vectorizer = build_vectorizer(c).fit(train.texts)
        single, batch = [], []
        with config_context(assume_finite=True, skip_parameter_validation=True):
            for _ in range(args.repeats):
                started = time.perf_counter()
                for t in texts:
                    transform(vectorizer, [t])
                single.append((time.perf_counter() - started) / len(texts) * 1000)
                started = time.perf_counter()
                x = transform(vectorizer, texts)
                batch.append(len(texts) / (time.perf_counter() - started))
        rows.append((name, statistics.median(single), statistics.median(batch), x.nnz / len(texts)))
    ref_single, ref_batch = rows[0][1], rows[0][2]
    print(f"{args.corpus}/test, first {len(texts)} paragraphs, median of {args.repeats}\n")
    print("| features | features per text | one text ms | × words | batch texts/s | × words |")
    print("|---|---|---|---|---|---|")
    for name, s, b, per_text in rows:
        print(
            f"| {name} | {per_text:.0f} | {s:.3f} | {s / ref_single:.2f} | {b:,.0f} | "
            f"{b / ref_batch:.2f} |"
        )


def c_range(cfg: TrainingConfig) -> str:
    return f"{cfg.char_ngram_min}-{cfg.char_ngram_max}"


if __name__ == "__main__":
    main()
