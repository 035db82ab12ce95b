"""Load a model for serving: verified, warmed up, and proven to predict; give back the memory
of the one it replaces."""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from functools import cache

from api.settings import Settings
from classifier.artifact import LoadedModel
from classifier.errors import IncompatibleModelError
from classifier.registry import load_model
from classifier.tokenizer import warm_up


def load_verified(settings: Settings, ref: str) -> LoadedModel:
    """Load a model version (checksum and format checked) and prove it predicts.

    The smoke prediction also warms the segmenter and lazy caches before any request.
    """
    loaded = load_model(settings.models_dir, ref)
    warm_up(loaded.model.segmenter)
    smoke = loaded.predict(["联合国 教育 health report 预热"])
    scores = [t.score for t in smoke[0].tags]
    if not scores or not all(0.0 <= s <= 1.0 for s in scores):
        raise IncompatibleModelError(f"{loaded.ref}: smoke prediction gave no valid tag scores")
    return loaded


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``; None where the C library has none (macOS, musl, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_freed_memory() -> None:
    """Return the memory freed by a replaced model to the operating system.

    glibc keeps freed memory in its heaps for reuse; a reload's allocations (made in another
    thread) then land elsewhere, and a worker's RSS rose by a step at most reloads (in
    process, 10 reloads of the tiku model: 176 -> 209 MB; with this after each: 188 MB).
    Called when a replaced model is freed.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
