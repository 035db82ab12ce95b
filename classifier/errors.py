"""The library's exception hierarchy; adapters map it to exit codes and HTTP statuses."""

from __future__ import annotations


class ClassifierError(Exception):
    """Base class of every error the library raises on purpose."""


class CorpusFormatError(ClassifierError):
    """A corpus file or record does not follow its format."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class ModelNotFoundError(ClassifierError):
    """No model version matches the requested reference."""


class InvalidModelRefError(ClassifierError):
    """A model name or version is not a safe identifier."""


class IncompatibleModelError(ClassifierError):
    """A model exists but cannot be loaded safely (format, checksum, versions)."""


class NotTrainedError(ClassifierError):
    """A corpus left nothing to learn from."""


class FeedbackError(ClassifierError):
    """A feedback record is refused: ``field`` names the part at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class FeedbackStoreError(ClassifierError):
    """The feedback store cannot be opened, migrated, read or written."""
