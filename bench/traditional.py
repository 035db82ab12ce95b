"""Traditional characters give the same tags: a corpus's test split as it is and converted.

    python -m bench.traditional [--corpus tiku] [--models-dir DIR --model NAME[@VERSION]]
                                [--jobs 2] [--data ../shared/data] [--out bench/out]

Trains the defaults on CORPUS/train (or takes the given model), converts every CORPUS/test
document to traditional characters with zhconv (a converter of its own tables, not the
OpenCC that tagger normalises with, so the test is not a round trip of one table), and
scores both copies with the same model under its own decision rule. Prints document and
paragraph micro-F1, macro-F1 and P@1 of each copy and the differences; issue 11 asks for
the traditional copy to be within 0.5 point of the original.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench import library
from bench.harness import Report, arguments, logger, markdown_table

log = logger("traditional")


def convert_folder(source: Path, target: Path) -> int:
    """Write each seed-format file of ``source`` to ``target`` with its text (not its tags)
    in traditional characters; the number of characters that changed."""
    import zhconv

    target.mkdir(parents=True, exist_ok=True)
    changed = 0
    for path in sorted(source.glob("*.txt")):
        header, _, text = path.read_text(encoding="utf-8").partition("\n")
        converted = zhconv.convert(text, "zh-hant")
        changed += sum(a != b for a, b in zip(text, converted, strict=False))
        (target / path.name).write_text(f"{header}\n{converted}", encoding="utf-8")
    return changed


LEVELS = ("document", "paragraph")
HEADERS = ["test copy", "doc µF1", "doc macro-F1", "doc P@1", "par µF1", "par macro-F1", "par P@1"]


def scores(result: dict[str, Any], level: str) -> dict[str, float]:
    r = result[level]
    return {"micro_f1": r["micro"]["f1"], "macro_f1": r["macro"]["f1"], "p_at_1": r["p@1"]}


def cells(copy: dict[str, Any], base: dict[str, Any] | None = None) -> list[str]:
    """A copy's figures, or with ``base`` their difference from it in points."""
    out = []
    for level in LEVELS:
        for key, value in copy[level].items():
            out.append(
                f"{value:.4f}" if base is None else f"{100 * (value - base[level][key]):+.2f}"
            )
    return out


def main() -> None:
    parser = arguments("traditional", __doc__)
    parser.add_argument("--corpus", default="tiku")
    parser.add_argument("--models-dir", type=Path, help="a models folder holding --model")
    parser.add_argument("--model", default=None, help="NAME[@VERSION] (default: train one)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    report = Report("traditional", args.out, corpus=args.corpus)
    with tempfile.TemporaryDirectory(prefix="tagger-traditional-") as tmp:
        models = args.models_dir or Path(tmp) / "models"
        ref = args.model
        if ref is None:
            log(f"training the defaults on {args.corpus}/train")
            trained = library.train([args.data / args.corpus / "train"], models, args.corpus,
                                    jobs=args.jobs)  # fmt: skip
            ref = f"{args.corpus}@{trained.folder.name}"
        version = library.load(models, ref)
        original = args.data / args.corpus / "test"
        converted = Path(tmp) / "test-traditional"
        n = convert_folder(original, converted)
        log(f"{n:,} characters changed by the conversion")
        data: dict[str, Any] = {"model": ref, "characters_changed": n}
        copies = {"simplified (as given)": original, "traditional (zhconv)": converted}
        for name, folder in copies.items():
            result = library.evaluate(version, folder, jobs=args.jobs)
            data[name] = {level: scores(result, level) for level in LEVELS}
        report.data.update(data)
        rows = [[name, *cells(data[name])] for name in copies]
        before, after = (data[name] for name in copies)
        rows.append(["difference (points)", *cells(after, before)])
        title = f"{args.corpus}/test, model {ref}"
        report.show(f"### {title}\n\n" + markdown_table(HEADERS, rows))
    report.end()
    report.write()


if __name__ == "__main__":
    main()
