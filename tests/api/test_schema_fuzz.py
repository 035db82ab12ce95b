"""Schemathesis over the app's own OpenAPI schema: no 5xx and no off-schema response.

Every operation gets up to ``EXAMPLES`` schema-valid and as many schema-invalid generated
cases (bodies, headers, ...): valid ones must be answered 2xx (or a documented 4xx such as
401), invalid ones with a 4xx, and every response must match the schema. They are
sent to the app in process with its lifespan run, so the model is loaded as in production.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from api.main import create_app
from api.settings import Settings

EXAMPLES = 600


@pytest.mark.slow
def test_no_server_error_and_responses_match_the_schema(trained_models_dir: Path) -> None:
    app = create_app(
        Settings(
            models_dir=trained_models_dir,
            model="default",
            admin_token="fuzz-token",
            max_text_chars=5000,
            max_batch=16,
        )
    )
    with TestClient(app):
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 5
        calls: dict[str, int] = {}
        for operation, mode in itertools.product(operations, list(schemathesis.GenerationMode)):

            @given(case=operation.as_strategy(mode))
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate()
                key = f"{case.operation.label} {mode.value}"  # noqa: B023 (called at once)
                calls[key] = calls.get(key, 0) + 1

            try:
                check()
            except Unsatisfiable:  # no invalid input exists (GET without parameters)
                assert mode is schemathesis.GenerationMode.NEGATIVE
    assert calls.get("POST /v1/predict positive", 0) >= EXAMPLES // 2, calls
    assert calls.get("POST /v1/predict negative", 0) >= EXAMPLES // 2, calls
    assert sum(calls.values()) >= 2 * EXAMPLES, calls
