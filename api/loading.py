"""Load a model for serving: verified, warmed up, and proven to predict."""

from __future__ import annotations

from api.settings import Settings
from classifier.errors import IncompatibleModelError
from classifier.persistence import LoadedModel, load_model
from classifier.tokenizer import warm_up


def load_verified(settings: Settings, ref: str) -> LoadedModel:
    """Load a model version (checksum and format checked) and prove it predicts.

    The smoke prediction also warms the segmenter and lazy caches before any request.
    """
    loaded = load_model(settings.models_dir, ref)
    warm_up(loaded.model.segmenter)
    smoke = loaded.model.predict(["联合国 教育 health report 预热"])
    scores = [t.score for t in smoke[0].tags]
    if not scores or not all(0.0 <= s <= 1.0 for s in scores):
        raise IncompatibleModelError(f"{loaded.ref}: smoke prediction gave no valid tag scores")
    return loaded
