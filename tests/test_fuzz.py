"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis), bounded.

Every generated request, valid or not, must get an answer that is not a server error and that
matches the documented schema and status codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi

from serving.app import create_app
from switchboard.settings import Settings


@pytest.fixture(scope="module")
def fuzz_app(bundle_path: Path) -> Iterator[Any]:
    app = create_app(Settings(bundle_path=bundle_path, max_batch_items=8))
    with asgi.get_client(app) as client:  # runs the lifespan once: the model stays loaded for every case
        app.state.fuzz_client = client
        yield app


def test_api_answers_every_generated_request_without_a_server_error(fuzz_app: Any) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    client = fuzz_app.state.fuzz_client
    statuses: dict[str, set[int]] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/classify", "/healthz", "/readyz", "/v1/admin/reload"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=50, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
        )
        def fuzz(case: Any) -> None:
            response = case.call(session=client)
            case.validate_response(response, checks=[not_a_server_error])
            statuses.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)

        fuzz()
    # the fuzzer reached both the happy path and the validation errors of the main endpoint
    assert {200, 422} <= statuses["POST /v1/classify"]
