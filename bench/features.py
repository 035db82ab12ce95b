"""Feature extraction speed: word TF-IDF against words + character n-grams, same run.

    python -m bench.features [--corpus tiku] [--texts 1000] [--repeats 5]
                             [--set KEY=VALUE ...]   (the character configuration)

Fits both vectorizers on the corpus's train/ split (prepared by tagger's own tokenizer),
then times the model's feature extraction on the first test/ paragraphs: one text per
call, and all of them in one batch. Medians of the repeats; the ratio is against the word
vectorizer measured in the same run. This is the cost that keeps character n-grams out of
the defaults.
"""

from __future__ import annotations

import time
from typing import Any

from sklearn import config_context

from bench import library
from bench.harness import arguments, markdown_table, med


def main() -> None:
    parser = arguments("features", __doc__, out=False, sets="the character configuration")
    parser.add_argument("--corpus", default="tiku")
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    chars = library.config(args.sets, char_ngram_max=2)
    words = chars.replace(char_ngram_max=0)
    cfg = library.config()
    train = library.prepare(args.data / args.corpus / "train", cfg.replace(segmenter="rjieba"), 2)
    test = library.prepare(args.data / args.corpus / "test", cfg.replace(segmenter="rjieba"), 2)
    texts = test.texts[: args.texts]
    rows = []
    for name, c in (("words (default)", words), (f"words + characters {c_range(chars)}", chars)):
        transform = library.featurizer(c, train.texts)
        single, batch = [], []
        with config_context(assume_finite=True, skip_parameter_validation=True):
            for _ in range(args.repeats):
                started = time.perf_counter()
                for t in texts:
                    transform([t])
                single.append((time.perf_counter() - started) / len(texts) * 1000)
                started = time.perf_counter()
                x = transform(texts)
                batch.append(len(texts) / (time.perf_counter() - started))
        rows.append((name, med(single), med(batch), x.nnz / len(texts)))
    ref_single, ref_batch = rows[0][1], rows[0][2]
    print(f"{args.corpus}/test, first {len(texts)} paragraphs, median of {args.repeats}\n")
    headers = ["features", "features per text", "one text ms", "× words", "batch texts/s"]
    headers.append("× words")
    print(
        markdown_table(
            headers,
            [
                [
                    name,
                    f"{per_text:.0f}",
                    f"{s:.3f}",
                    f"{s / ref_single:.2f}",
                    f"{b:,.0f}",
                    f"{b / ref_batch:.2f}",
                ]
                for name, s, b, per_text in rows
            ],
        )
    )


def c_range(cfg: Any) -> str:
    return f"{cfg.char_ngram_min}-{cfg.char_ngram_max}"


if __name__ == "__main__":
    main()
