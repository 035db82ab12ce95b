"""The registry of binary linear learners, one module of this package each.

A learner module registers a factory under a name with ``@register``; every module in this
package is imported when the registry is first read, so adding a learner is adding a file,
and its name becomes an allowed value of ``TrainingConfig.learner`` at once. A factory
returns an unfitted scikit-learn binary classifier with ``coef_`` and ``intercept_`` after
``fit``; scikit-learn is imported inside the factories, so reading the registry is cheap.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from classifier.config import TrainingConfig

# (config, number of training rows) -> an unfitted binary classifier
Factory = Callable[["TrainingConfig", int], Any]


@dataclass(frozen=True)
class Learner:
    """A named way of fitting one label's linear model."""

    name: str
    summary: str
    make: Factory


_REGISTRY: dict[str, Learner] = {}


def register(name: str, summary: str) -> Callable[[Factory], Factory]:
    """Register ``factory`` as the learner ``name`` (a decorator)."""

    def add(factory: Factory) -> Factory:
        if name in _REGISTRY:
            raise ValueError(f"learner {name!r} is registered twice")
        _REGISTRY[name] = Learner(name, summary, factory)
        return factory

    return add


@cache
def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def names() -> tuple[str, ...]:
    """Every registered learner's name, sorted."""
    _discover()
    return tuple(sorted(_REGISTRY))


def get(name: str) -> Learner:
    _discover()
    return _REGISTRY[name]
