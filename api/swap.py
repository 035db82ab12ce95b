"""Swapping a model a worker serves, in two phases: ``prepare`` loads and verifies a
version and keeps it aside, ``commit`` serves it, ``abort`` drops it. Under ``tagger serve``
the supervisor runs the phases over every worker (``classifier.workers``); in a process of
its own (tests, ``uvicorn`` directly) ``reload_here`` runs both at once.

With several models served, a version replaces the model of its name only
(``classifier.workers.target``); the others serve on untouched.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from api import metrics
from api.dependencies import served_models
from api.loading import load_verified, release_freed_memory
from api.settings import Settings
from classifier.artifact import LoadedModel
from classifier.errors import ModelNotFoundError
from classifier.workers import model_name, not_served, target


class Swapper:
    """The models of one application (``state.model``, the default, and ``state.others``),
    each swapped as a whole reference: a request reads it once and finishes on the model it
    started with."""

    def __init__(self, state: Any, settings: Settings) -> None:
        self.state, self.settings = state, settings
        self._pending: tuple[int, LoadedModel] | None = None
        self._lock = threading.Lock()

    @property
    def serving(self) -> str:
        """The default model's version."""
        model: LoadedModel = self.state.model
        return model.ref

    def serving_as(self, ref: str) -> str:
        """The version that a reload to ``ref`` would replace; ModelNotFoundError if none."""
        served = [m.ref for m in served_models(self.state).values()]
        which = target(served, ref)
        if which is None:
            raise ModelNotFoundError(not_served(served, model_name(ref)))
        return served[which]

    def prepare(self, ref: str) -> None:
        """Load and verify ``ref`` (checksums, metadata, a smoke prediction); keep it aside."""
        self.serving_as(ref)  # refuse a name not served before loading anything
        loaded = load_verified(self.settings, ref)
        with self._lock:
            which = target([m.ref for m in served_models(self.state).values()], ref)
            assert which is not None
            self._pending = (which, loaded)

    def commit(self) -> str:
        """Serve the version prepared; return the one it replaces."""
        with self._lock:
            pending, self._pending = self._pending, None
            if pending is None:
                raise RuntimeError("nothing prepared to swap in")
            which, loaded = pending
            if which == 0:
                previous: LoadedModel = self.state.model
                self.state.model = loaded  # one reference assignment: atomic for readers
            else:
                others: dict[str, LoadedModel] = dict(self.state.others)
                name = model_name(loaded.ref)
                previous = others[name]
                others[name] = loaded
                self.state.others = others  # a new dict, one reference assignment
        ref = previous.ref
        metrics.serving(loaded.ref, ref)
        # once the last request still running on the old model is done with it
        weakref.finalize(previous, release_freed_memory)
        return ref

    def abort(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            weakref.finalize(pending[1], release_freed_memory)
