"""Feature extraction speed: word TF-IDF against words + character n-grams, same run.

    python -m bench.features [--corpus tiku] [--texts 1000] [--repeats 5]
                             [--set KEY=VALUE ...]   (the character configuration)

Fits both configurations on the corpus's train/ split (prepared by tagger's own tokenizer),
each twice: with tagger's feature blocks (what a model runs, compiled) and with
scikit-learn's ``TfidfVectorizer`` (words as tokens; ``char_wb`` for the characters, side by
side with the words), the reference every ratio is against. Then times each on the first test/
paragraphs: one text per call, and all of them in one batch. Medians of the repeats, all
rows measured in the same run, interleaved repeat by repeat.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import scipy.sparse as sp
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
    scope = " of CJK words" if chars.char_scope == "cjk" else ""
    with_chars = f"words + characters {c_range(chars)}{scope}"
    if chars == cfg:
        with_chars += " (default)"
    transforms = {
        "scikit-learn, words": scikit_learn(words, train.texts),
        f"scikit-learn, {with_chars}": scikit_learn(chars, train.texts),
        "tagger, words": library.featurizer(words, train.texts),
        f"tagger, {with_chars}": library.featurizer(chars, train.texts),
    }
    single: dict[str, list[float]] = {name: [] for name in transforms}
    batch: dict[str, list[float]] = {name: [] for name in transforms}
    nnz = {}
    with config_context(assume_finite=True, skip_parameter_validation=True):
        for _ in range(args.repeats):
            for name, transform in transforms.items():
                started = time.perf_counter()
                for t in texts:
                    transform([t])
                single[name].append((time.perf_counter() - started) / len(texts) * 1000)
                started = time.perf_counter()
                nnz[name] = transform(texts).nnz
                batch[name].append(len(texts) / (time.perf_counter() - started))
    ref = "scikit-learn, words"
    print(f"{args.corpus}/test, first {len(texts)} paragraphs, median of {args.repeats}\n")
    headers = ["features", "features per text", "one text ms", "× scikit-learn words"]
    headers += ["batch texts/s", "× scikit-learn words"]
    print(
        markdown_table(
            headers,
            [
                [
                    name,
                    f"{nnz[name] / len(texts):.0f}",
                    f"{med(single[name]):.3f}",
                    f"{med(single[name]) / med(single[ref]):.2f}",
                    f"{med(batch[name]):,.0f}",
                    f"{med(batch[name]) / med(batch[ref]):.2f}",
                ]
                for name in transforms
            ],
        )
    )


def scikit_learn(cfg: Any, texts: list[str]) -> Callable[[list[str]], Any]:
    """scikit-learn's vectorizers for ``cfg``'s blocks fitted on prepared ``texts``: words
    (the prepared tokens), and with character n-grams ``char_wb`` over the segmentation
    undone, the two side by side."""
    from classifier.features import _vectorizer, block_specs

    vectorizers = []
    for analyzer, ngram_range in block_specs(cfg):
        v = _vectorizer(analyzer, ngram_range, cfg.sublinear_tf, min_df=cfg.min_df)
        vectorizers.append(v.fit(texts))
    if len(vectorizers) == 1:
        return vectorizers[0].transform
    return lambda batch: sp.hstack([v.transform(batch) for v in vectorizers], format="csr")


def c_range(cfg: Any) -> str:
    return f"{cfg.char_ngram_min}-{cfg.char_ngram_max}"


if __name__ == "__main__":
    main()
