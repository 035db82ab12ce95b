"""Check that raw and pre-segmented text give the same tokens and the same tags.

    .venv/bin/python bench/invariance.py [--corpus ../shared/data/tiku/test] [--limit 2000]

Each raw document is segmented with jieba (space-separated words, as in the seed file) and
both forms go through tagger's tokenizer, for each segmenter; the script prints how many
documents give identical token lists, and the token agreement of rjieba with jieba.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jieba  # noqa: E402

from classifier.corpus import read_corpus  # noqa: E402
from classifier.tokenizer import SEGMENTERS, tokenize  # noqa: E402


def token_agreement(a: list[str], b: list[str]) -> tuple[int, int]:
    """Tokens of ``a`` whose (start, end) span also occurs in ``b``; and len(a)."""

    def spans(tokens: list[str]) -> set[tuple[int, int]]:
        out, pos = set(), 0
        for t in tokens:
            out.add((pos, pos + len(t)))
            pos += len(t)
        return out

    return len(spans(a) & spans(b)), len(a)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--corpus", type=Path, default=ROOT.parent / "shared" / "data" / "fudan" / "test"
    )
    parser.add_argument("--limit", type=int, default=0, help="0: all documents")
    args = parser.parse_args()
    docs = list(read_corpus([args.corpus]))
    if args.limit:
        docs = docs[: args.limit]
    jieba.setLogLevel(60)
    segmented = [" ".join(jieba.cut(d.text)) for d in docs]
    mb = sum(len(d.text.encode()) for d in docs) / 1e6
    print(f"{len(docs)} documents, {mb:.1f} MB from {args.corpus}")
    tokens = {}
    for seg in SEGMENTERS:
        started = time.perf_counter()
        raw_tokens = [tokenize(d.text, seg) for d in docs]
        elapsed = time.perf_counter() - started
        same = sum(tokenize(s, seg) == r for s, r in zip(segmented, raw_tokens, strict=True))
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
