"""tagger's library: read corpora, prepare text, train and apply a multi-label topic tagger.

Heavy modules (scikit-learn, the segmenters) load on first use, so importing the package,
its errors or its corpus reader stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "ClassifierError": "classifier.errors",
    "Document": "classifier.corpus",
    "read_corpus": "classifier.corpus",
    "TrainingConfig": "classifier.config",
    "load_config": "classifier.config",
    "TopicClassifier": "classifier.model",
    "Prediction": "classifier.model",
    "TagScore": "classifier.model",
    "load_model": "classifier.registry",
    "prepare_text": "classifier.text",
    "split_paragraphs": "classifier.paragraphs",
    "tokenize": "classifier.tokenizer",
    "warm_up": "classifier.tokenizer",
}

__all__ = [
    "ClassifierError",
    "Document",
    "Prediction",
    "TagScore",
    "TopicClassifier",
    "TrainingConfig",
    "__version__",
    "load_config",
    "load_model",
    "prepare_text",
    "read_corpus",
    "split_paragraphs",
    "tokenize",
    "warm_up",
]

if TYPE_CHECKING:
    from classifier.config import TrainingConfig, load_config
    from classifier.corpus import Document, read_corpus
    from classifier.errors import ClassifierError
    from classifier.model import Prediction, TagScore, TopicClassifier
    from classifier.paragraphs import split_paragraphs
    from classifier.registry import load_model
    from classifier.text import prepare_text
    from classifier.tokenizer import tokenize, warm_up


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'classifier' has no attribute {name!r}")
