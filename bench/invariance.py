"""Check that raw and pre-segmented text give the same tokens and the same tags.

    python -m bench.invariance [--corpus ../shared/data/fudan/test] [--limit 2000]

Each raw document is segmented with jieba (space-separated words, as in the seed file) and
both forms go through tagger's tokenizer, for each segmenter; the script prints how many
documents give identical token lists, and the token agreement of rjieba with jieba.
"""

from __future__ import annotations

import time
from pathlib import Path

import jieba

from bench import library
from bench.harness import DATA, arguments, token_agreement


def main() -> None:
    parser = arguments("invariance", __doc__, data=False, out=False)
    parser.add_argument("--corpus", type=Path, default=DATA / "fudan" / "test")
    parser.add_argument("--limit", type=int, default=0, help="0: all documents")
    args = parser.parse_args()
    docs = list(library.documents(args.corpus))
    if args.limit:
        docs = docs[: args.limit]
    jieba.setLogLevel(60)
    segmented = [" ".join(jieba.cut(d.text)) for d in docs]
    mb = sum(len(d.text.encode()) for d in docs) / 1e6
    print(f"{len(docs)} documents, {mb:.1f} MB from {args.corpus}")
    tokens = {}
    for seg in library.SEGMENTERS:
        started = time.perf_counter()
        raw_tokens = [library.tokenize(d.text, seg) for d in docs]
        elapsed = time.perf_counter() - started
        same = sum(
            library.tokenize(s, seg) == r for s, r in zip(segmented, raw_tokens, strict=True)
        )
        tokens[seg] = raw_tokens
        print(
            f"{seg:7s} raw == pre-segmented for {same}/{len(docs)} documents; "
            f"{mb / elapsed:.2f} MB/s (tokenize, one core)"
        )
    hit = total = 0
    for a, b in zip(tokens["rjieba"], tokens["jieba"], strict=True):
        h, n = token_agreement(a, b)
        hit, total = hit + h, total + n
    print(f"rjieba tokens also produced by jieba: {hit}/{total} = {hit / total:.4%}")


if __name__ == "__main__":
    main()
