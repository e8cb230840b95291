"""The API's HTTP plumbing, used by app/api/views.py only: the OpenAPI document (spectree, from
the pydantic models that also validate each request and response), authentication by API key
and scope, JSON-only bodies of bounded size, and invalid input as problem+json field by field."""
from __future__ import annotations

import copy
import re
from http import HTTPStatus
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any, TypeVar

from flask import g, request
from pydantic import BaseModel, ValidationError
from spectree import SecurityScheme, SpecTree
from spectree.models import SecuritySchemeData, SecureType

from app.auth.roles import Actor
from app.db import db
from app.errors import DomainError, InvalidItems, NotPermitted, ValidationFailed
from app.api.services import actor_for_token

F = TypeVar("F", bound=Callable[..., Any])
MAX_BODY = 1024 * 1024  # a bulk call of 500 products is about 150 KB


class Unauthenticated(DomainError):
    status_code = 401
    code = "unauthenticated"


class RequestInvalid(InvalidItems):
    """The body, query or headers do not match the operation's schema: `errors` names each field."""


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [{"field": ".".join(str(p) for p in e["loc"]) or "(body)", "message": e["msg"]} for e in exc.errors()]


def _before(req: Any, resp: Any, req_validation_error: Any, instance: Any, model_adapter: Any = None) -> None:
    """spectree's hook after validating a request: an invalid one becomes a problem+json 422."""
    if req_validation_error is not None:
        where = "query" if req.method in ("GET", "DELETE") else "body"
        raise RequestInvalid(f"The request's {where} is not valid: see errors.", _field_errors(req_validation_error))


spec = SpecTree(
    "flask", title="Dockhand API", version="v1", mode="strict", annotations=True, path="api/v1/openapi",
    page_templates={}, before=_before, naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda _parent, child: child,
    description="Returns, orders and catalog in; units, refunds and an ordered event feed out. "
                "Authenticate with `Authorization: Bearer <API key>`. Every write takes an "
                "`Idempotency-Key` header: the same key and body answer the first answer again; the "
                "same key with another body is refused (422). Errors are application/problem+json "
                "(RFC 9457). Times are UTC ISO 8601; money is a decimal string with a currency.",
    security_schemes=[SecurityScheme(name="apiKey", data=SecuritySchemeData(type=SecureType.HTTP, scheme="bearer"))],
    security={"apiKey": []},
)


def api_actor() -> Actor:
    """The key the current API request authenticated with, as an Actor."""
    return g.api_actor  # type: ignore[no-any-return]


def authenticated(scope: str) -> Callable[[F], F]:
    """Guard an operation: a live API key (401 otherwise) holding `scope` (403 otherwise)."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            found = actor_for_token(db.session, token.strip()) if scheme.lower() == "bearer" else None
            if found is None:
                raise Unauthenticated("Send a live API key: 'Authorization: Bearer <key>'. An admin creates keys in the "
                                      "console (Admin, API keys) or with 'flask api-key create'.")
            actor, g.api_key_id = found
            if scope not in actor.scopes:
                raise NotPermitted(f"This API key does not hold the scope {scope}.")
            g.api_actor = actor
            return view(*args, **kwargs)

        wrapped.scope = scope  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


def check_body() -> None:
    """Before every API request: a body is JSON (415 otherwise), at most MAX_BODY (413), and parses."""
    request.max_content_length = MAX_BODY
    has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")
    if request.method in ("POST", "PUT", "PATCH") and has_body:
        if not request.is_json:
            raise UnsupportedBody("Send the body as JSON with 'Content-Type: application/json'.")
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise BodyTooLarge(f"The body is larger than {MAX_BODY // 1024} KB: split it into several calls.")
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # nested deeper than the parser goes
            body = None
        if body is None:
            raise ValidationFailed("The body is not valid JSON (an object, or a list for a bulk call).")
        bad = _bad_text(body)
        if bad:  # PostgreSQL cannot store either; SQLite would store a NUL silently: refused on both
            raise ValidationFailed(f"A text in the body {bad}, which is not accepted.")


def _bad_text(body: Any, max_depth: int = 32) -> str | None:
    """What is wrong with the body's texts (keys and values), walked without recursion: a NUL
    character, a lone surrogate (not UTF-8), or nesting deeper than any operation takes."""
    stack = [(body, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            return f"is nested more than {max_depth} deep"
        if isinstance(value, str):
            if "\x00" in value:
                return "holds a NUL character (\\u0000)"
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "holds a lone surrogate (\\ud800-\\udfff), not a character"
        elif isinstance(value, dict):
            stack.extend((k, depth + 1) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return None


class UnsupportedBody(DomainError):
    status_code = 415
    code = "unsupported_media_type"


class BodyTooLarge(DomainError):
    status_code = 413
    code = "too_large"



_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:\-]{8,80}$")


def idempotency_key() -> str:
    """The request's Idempotency-Key header (8-80 letters, digits, '.', '_', ':', '-'), kept apart
    per API key: two connectors that pick the same key do not meet."""
    header = request.headers.get("Idempotency-Key", "").strip()
    if not _IDEMPOTENCY_KEY.match(header):
        raise RequestInvalid("Send an Idempotency-Key header: 8-80 letters, digits, '.', '_', ':' or '-', new for "
                             "each new request and the same when you send a request again.",
                             [{"field": "Idempotency-Key", "message": "missing or malformed"}])
    return f"api:{g.api_key_id}:{header}"


# Every operation may answer these, whatever it declares: the API's doors (app/web error handlers).
COMMON_REFUSALS = {str(code): HTTPStatus(code).phrase for code in (400, 401, 404, 405, 413, 415, 422, 500, 503)}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """spectree's document, with every refusal as it is sent: application/problem+json, and the
    refusals any operation can meet listed on each (spectree writes application/json only)."""
    doc = copy.deepcopy(spec.spec)
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for item in doc["paths"].values():
        for op in item.values():
            responses = op.setdefault("responses", {})
            for code, answer in responses.items():
                if answer.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "").endswith("/Problem"):
                    answer["content"] = problem
            for code, title in COMMON_REFUSALS.items():
                responses.setdefault(code, {"description": title, "content": problem})
    _add_event_catalogue(doc)
    return doc


def _add_event_catalogue(doc: dict[str, Any]) -> None:
    """Each event type as an OpenAPI 3.1 webhook: the body a subscribed endpoint receives (the
    same `data` the feed's events carry), its payload schema among the components."""
    from app.api.events import EVENT_TYPES

    schemas = doc["components"]["schemas"]
    doc["webhooks"] = {}
    for event_type, model in EVENT_TYPES.items():
        name = model.__name__
        if name not in schemas:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[name] = schema
        doc["webhooks"][event_type] = {"post": {
            "summary": event_type, "description": (model.__doc__ or "").strip(),
            "parameters": [{"name": h, "in": "header", "required": True, "schema": {"type": "string"}}
                           for h in ("webhook-id", "webhook-timestamp", "webhook-signature")],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["type", "timestamp", "data"],
                "properties": {"type": {"const": event_type}, "timestamp": {"type": "string", "format": "date-time"},
                               "data": {"$ref": f"#/components/schemas/{name}"}}}}}},
            "responses": {"2XX": {"description": "Received: not sent again"},
                          "410": {"description": "Gone: the endpoint is switched off"}}}}
