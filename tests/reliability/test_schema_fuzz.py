"""Schemathesis over every operation the app documents, not only /v1 (tests/api covers /v1
with response conformance): support pages, metrics, health, with valid, missing and invalid
tokens. The one check: no answer is a server error."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.api.conftest import ADMIN, SERVICE, SUPPORT, Api

TOKENS = [SERVICE, SUPPORT, ADMIN, None, "not-a-token"]
EXAMPLES = 10


def _run(operation: Any, tried: list[int]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        token = TOKENS[len(tried) % len(TOKENS)]
        headers = dict(case.headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        case.headers = headers
        tried.append(1)
        case.validate_response(case.call(), checks=(not_a_server_error,))

    run()


def test_when_every_documented_operation_is_fuzzed_then_no_server_error(api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    tried: list[int] = []
    for operation in operations:
        _run(operation, tried)
    assert len(tried) >= len(operations)  # every operation got requests
