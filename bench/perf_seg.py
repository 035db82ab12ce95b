"""The seg section of bench.perf: segmentation throughput of tagger's tokenizer and of the
plain segmenters on raw fudan/test text, beside plain ``jieba.lcut`` in the same run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import library
from bench.harness import Table, first_megabytes, fmt, logger, med, rotated, timed, token_agreement

log = logger("perf")
REFERENCE = "jieba.lcut(text)"


def run(data: Path, mb: float, repeats: int) -> tuple[dict[str, Any], list[Table]]:
    """MB/s per wall and per CPU second of each segmenter; rjieba's agreement with jieba."""
    import jieba
    import rjieba

    texts = first_megabytes(data / "fudan" / "test", mb)
    size_mb = sum(len(t.encode()) for t in texts) / 1e6
    for seg in library.SEGMENTERS:
        library.warm_up(seg)  # loads both dictionaries (jieba's with tagger's cache folder)
    tokenize = library.tokenize
    candidates: dict[str, Callable[[str], Any]] = {
        REFERENCE: jieba.lcut,
        "rjieba.cut(text)": rjieba.cut,
        'tokenize(text, "jieba")': lambda t: tokenize(t, "jieba"),
        'tokenize(text, "rjieba")': lambda t: tokenize(t, "rjieba"),
        "normalize(text) (part of tokenize)": library.normalize,
    }
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in candidates}
    outputs: dict[str, list[Any]] = {}
    for r in range(repeats):
        for name in rotated(list(candidates), r):
            fn = candidates[name]
            wall, cpu, out = timed(lambda fn=fn: [fn(t) for t in texts])
            runs[name].append((size_mb / wall, size_mb / cpu if cpu > 0 else float("nan")))
            outputs.setdefault(name, out)
        log(f"seg repeat {r + 1}/{repeats} done")
    hit = total = same = 0
    for a, b in zip(
        outputs['tokenize(text, "rjieba")'], outputs['tokenize(text, "jieba")'], strict=True
    ):
        h, n = token_agreement(a, b)
        hit, total, same = hit + h, total + n, same + (a == b)
    ref_wall = med([w for w, _ in runs[REFERENCE]])
    ref_cpu = med([c for _, c in runs[REFERENCE]])
    table = Table(
        f"seg: segmentation throughput, {len(texts)} fudan/test documents, {size_mb:.2f} MB "
        f"(median of {repeats})",
        ["function", "MB/s wall", "MB/CPU-s", "× ref (CPU)", "MB/CPU-s min–max"],
    )
    result: dict[str, Any] = {
        "documents": len(texts),
        "mb": size_mb,
        "reference": REFERENCE,
        "rows": {},
    }
    for name, values in runs.items():
        wall, cpu = med([w for w, _ in values]), med([c for _, c in values])
        lo, hi = min(c for _, c in values), max(c for _, c in values)
        label = f"{name} (reference)" if name == REFERENCE else name
        table.rows.append([label, fmt(wall), fmt(cpu), fmt(cpu / ref_cpu), f"{fmt(lo)}–{fmt(hi)}"])
        result["rows"][name] = {
            "mb_per_s_wall": wall,
            "mb_per_cpu_s": cpu,
            "ratio_cpu": cpu / ref_cpu,
            "ratio_wall": wall / ref_wall,
            "runs": values,
        }
    result["agreement"] = {"tokens_hit": hit, "tokens": total, "identical_documents": same}
    table.notes += [
        "one thread: MB/CPU-s is the per-core rate; MB/s wall also counts time other jobs took "
        "the core. × ref = MB/CPU-s ÷ that of plain jieba.lcut on the same text.",
        "plain segmenters cut the raw text; tokenize() also normalizes (NFKC, case-fold, "
        "spaces next to CJK) and splits pieces by script.",
        f"token agreement: {hit}/{total} = {hit / max(total, 1):.4%} of tagger's rjieba tokens "
        f"have the same (start, end) span among tagger's jieba tokens; identical token lists "
        f"for {same}/{len(texts)} documents.",
    ]
    return result, [table]
