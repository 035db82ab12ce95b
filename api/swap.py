"""Swapping the model a worker serves, in two phases: ``prepare`` loads and verifies a
version and keeps it aside, ``commit`` serves it, ``abort`` drops it. Under ``tagger serve``
the supervisor runs the phases over every worker (``classifier.workers``); in a process of
its own (tests, ``uvicorn`` directly) ``reload_here`` runs both at once."""

from __future__ import annotations

import threading
import weakref
from typing import Any

from api import metrics
from api.loading import load_verified, release_freed_memory
from api.settings import Settings
from classifier.artifact import LoadedModel


class Swapper:
    """The model of one application (``state.model``), swapped as a whole reference: a
    request reads it once and finishes on the model it started with."""

    def __init__(self, state: Any, settings: Settings) -> None:
        self.state, self.settings = state, settings
        self._pending: LoadedModel | None = None
        self._lock = threading.Lock()

    @property
    def serving(self) -> str:
        model: LoadedModel = self.state.model
        return model.ref

    def prepare(self, ref: str) -> None:
        """Load and verify ``ref`` (checksums, metadata, a smoke prediction); keep it aside."""
        loaded = load_verified(self.settings, ref)
        with self._lock:
            self._pending = loaded

    def commit(self) -> str:
        """Serve the version prepared; return the one it replaces."""
        with self._lock:
            loaded, self._pending = self._pending, None
            if loaded is None:
                raise RuntimeError("nothing prepared to swap in")
            previous: LoadedModel = self.state.model
            self.state.model = loaded  # one reference assignment: atomic for readers
        ref = previous.ref
        metrics.serving(loaded.ref, ref)
        # once the last request still running on the old model is done with it
        weakref.finalize(previous, release_freed_memory)
        return ref

    def abort(self) -> None:
        with self._lock:
            dropped, self._pending = self._pending, None
        if dropped is not None:
            weakref.finalize(dropped, release_freed_memory)
