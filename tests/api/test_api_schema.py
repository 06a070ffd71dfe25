"""Generated requests against the OpenAPI document: no server errors, answers match the schema.

Every operation under ``/v1`` and ``/healthz`` gets Hypothesis-generated paths, queries and
bodies from the app's own OpenAPI document; each answer must not be a 5xx and must match the
documented status codes, content types and body schemas (errors included).
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import ADMIN, SERVICE, SUPPORT, Api

CHECKS = (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
)


def _check(operation: Any) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        # Auth is tested on its own; here every request carries the token its route needs.
        bearer = (
            SERVICE if case.method == "POST" else ADMIN if "access-log" in case.path else SUPPORT
        )
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {bearer}"}
        case.validate_response(case.call(), checks=CHECKS)

    run()


def test_when_requests_are_generated_from_the_schema_then_answers_conform(api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    results: list[Any] = list(schema.include(path_regex="^/(v1/|healthz)").get_all_operations())
    operations = [result.ok() for result in results]
    assert len(operations) >= 8  # ingest, trace, summary, job, timeline, csv, access log, health
    for operation in operations:
        _check(operation)
