"""tagger's benchmarks; run each from the repository root as ``python -m bench.NAME``.

Figures and the commands that made them are in BENCHMARKS.md.
"""
