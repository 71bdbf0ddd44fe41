"""Property-based API fuzzing from our own OpenAPI document (schemathesis + hypothesis).

Whatever input arrives, the service answers with a documented status and body, never a
500, and its errors are the problem+json the document declares.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.app.conftest import Cast

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.mark.long
def test_no_500_and_responses_match_the_schema(app: FastAPI, cast: Cast) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = cast.headers(cast.admin)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # every operation of our document loads
        operations.append(result.ok())
    assert len(operations) > 30

    for operation in operations:

        @settings(
            max_examples=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case[schemathesis.APIOperation[Any, Any, Any, Any]]) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        check()
