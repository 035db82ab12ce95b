"""The work of loading a model and predicting with it, for instruction counts under valgrind.

    valgrind --tool=callgrind python -m bench.predict_instructions CHECKOUT MODELS REPS \\
        [--data ../shared/data] [--only single|batch]

Loads model ``tiku`` from MODELS with the code of CHECKOUT (this one, or an older commit
checked out elsewhere: its loader may be ``classifier.persistence``), warms it on 50 texts,
then REPS times predicts the first 1,000 tiku/test documents in one batch and the first 200
one at a time. Run it with REPS = 0 and 2: the difference of the two counts is the cost of
the predictions, the first count that of loading. Instruction counts do not depend on what
else the machine runs, which wall-clock times on a shared machine do.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkout", type=Path)
    parser.add_argument("models", type=Path)
    parser.add_argument("reps", type=int)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--only", choices=("single", "batch"), help="one kind of prediction")
    args = parser.parse_args()
    sys.path.insert(0, str(args.checkout.resolve()))  # that checkout's library, not this one's
    try:
        from classifier.registry import load_model
    except ImportError:  # before the redesign
        from classifier.persistence import load_model  # type: ignore[no-redef]
    model = load_model(args.models, "tiku").model
    files = sorted((args.data / "tiku" / "test").glob("*.txt"))[:1000]
    texts = [f.read_text(encoding="utf-8").split("\n", 2)[2] for f in files]
    model.predict(texts[:50])
    for _ in range(args.reps):
        if args.only is None:
            model.predict(texts)
        elif args.only == "batch":
            model.predict(texts[:200])
        if args.only != "batch":
            for text in texts[:200]:
                model.predict([text])


if __name__ == "__main__":
    main()
