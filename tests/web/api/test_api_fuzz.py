"""schemathesis fuzzes every operation of the OpenAPI document against the app, on SQLite and
PostgreSQL, with a key holding every scope: no answer is a server error, and every answer
conforms to the document (status code documented, content type, body schema)."""
from __future__ import annotations

import uuid

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

from app.api.domain import SCOPES
from app.api.services import create_api_key
from app.auth.roles import SYSTEM
from app.disposition.models import ReasonCode


def test_every_operation_answers_as_documented_and_never_a_500(app, session, world):  # type: ignore[no-untyped-def]
    session.add(ReasonCode(code="defective", label="Defective"))
    session.commit()
    token = create_api_key(session, SYSTEM, name="Fuzzer", scopes=list(SCOPES), idempotency_key=uuid.uuid4().hex).token
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 17  # every operation of views.py (openapi.json and docs are not in the document)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def fuzz(case):  # type: ignore[no-untyped-def]
            case.call_and_validate(headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
                                   checks=checks)

        fuzz()
