"""The time a request may hold a worker (``TAGGER_REQUEST_BUDGET_S``), and stopping its
tagging when that is spent or when its client has gone.

Tagging runs in a thread, and a thread cannot be interrupted; so the library calls a
checkpoint between slices of the work (each text, each paragraph, every 64 paragraphs
scored: ``TopicClassifier.predict(checkpoint=...)``) and ``Job.check`` raises there.
"""

from __future__ import annotations

import time

from starlette.requests import Request


class OverBudget(Exception):
    """A request was stopped at its time budget; answered 503."""

    def __init__(self, budget_s: float) -> None:
        super().__init__(
            f"the request was stopped after its time budget of {budget_s:g} s "
            "(TAGGER_REQUEST_BUDGET_S), waiting for its turn included: send fewer or shorter "
            "texts, or retry when the service is less busy"
        )


class ClientGone(Exception):
    """The client of a request disconnected: its tagging stops, nothing is answered."""


class Job:
    """One request's deadline and whether its client is still there."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.deadline = time.monotonic() + budget_s
        self.gone = False

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def check(self) -> None:
        """The checkpoint: raise if the client has gone or the budget is spent."""
        if self.gone:
            raise ClientGone
        if time.monotonic() > self.deadline:
            raise OverBudget(self.budget_s)


async def disconnected(request: Request) -> None:
    """Return when the client of ``request`` (whose body has been read) disconnects."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
