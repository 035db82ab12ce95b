"""Progress reporting without a user interface: the library calls a hook, adapters draw it."""

from __future__ import annotations

from collections.abc import Callable

# Called with a description and a total (None: unknown); returns an "advance by n" function.
ProgressHook = Callable[[str, float | None], Callable[[float], None]]


def no_progress(description: str, total: float | None = None) -> Callable[[float], None]:
    """The hook that reports nothing."""
    return lambda n: None
