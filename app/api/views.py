"""/api/v1: thin views over the use cases and queries, described by the OpenAPI document."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template
from spectree import Response as Responses

from app.api.http import authenticated, check_body, spec
from app.api.schemas import Event, EventPage, FeedQuery, Problem
from app.db import as_utc, db
from app.errors import ValidationFailed
from app.extensions import csrf
from app.ledger.domain import FeedCursor
from app.ledger.queries import feed_page

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # a key in the Authorization header, not a browser's cookie: no cross-site forgery
bp.before_request(check_body)

REFUSALS = {"HTTP_401": Problem, "HTTP_403": Problem, "HTTP_422": Problem}


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 document of /api/v1."""
    return jsonify(spec.spec)


@bp.get("/docs")
def docs() -> str:
    """The API's reference, readable in a browser, from the same document."""
    scopes = {}
    for rule in current_app.url_map.iter_rules():
        scope = getattr(current_app.view_functions[rule.endpoint], "scope", None)
        if scope and rule.endpoint.startswith("api."):
            path = str(rule).replace("<int:", "{").replace("<", "{").replace(">", "}")
            for method in rule.methods or ():
                scopes[(path, method.lower())] = scope
    return render_template("api/docs.html", spec=spec.spec, scopes=scopes)


@bp.get("/events")
@authenticated("events:read")
@spec.validate(query=FeedQuery, resp=Responses(HTTP_200=EventPage, **REFUSALS), tags=["events"])
def events(query: FeedQuery) -> Any:
    """The event feed: every event, in order, at least once.

    Read with the `next` of each page as `after`. An event that commits late is never skipped: the
    feed waits for writes still in progress instead. An event can come twice (at least once): its
    `id` tells."""
    try:
        after = FeedCursor.parse(query.after)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc
    page = feed_page(db.session, after, query.limit)
    return EventPage(
        events=[Event(id=f"evt_{e.id}", cursor=str(cursor), type=e.type, at=as_utc(e.at), aggregate_type=e.aggregate_type,
                      aggregate_id=e.aggregate_id, data=e.payload) for cursor, e in page],
        next=str(page[-1][0]) if page else str(after), has_more=len(page) == query.limit)
