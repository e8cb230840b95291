"""The API's request and response bodies (pydantic): they validate each call and are the OpenAPI
document's schemas. Fields are only ever added, never changed or removed, within /api/v1."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Problem(BaseModel):
    """An error (RFC 9457, application/problem+json)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class FieldError(BaseModel):
    field: str = Field(description="Where in the body or query, dotted: lines.0.quantity")
    message: str


class FeedQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after: str | None = Field(None, max_length=40, description="The `next` of the previous page; none to start at the beginning.")
    limit: int = Field(100, ge=1, le=500)


class Event(BaseModel):
    id: str = Field(description="Stable for the event: the webhook-id of its deliveries too.")
    cursor: str = Field(description="Pass as `after` to read on from this event.")
    type: str = Field(description="unit.state_changed, refund.released, rma.receiving, rma.closed, exception.opened, ...")
    at: datetime
    aggregate_type: str
    aggregate_id: int
    data: dict[str, Any]


class EventPage(BaseModel):
    events: list[Event]
    next: str = Field(description="Where to read on from: the last event's cursor, or `after` again when there was none.")
    has_more: bool = Field(description="True when the page is full: read on at once; otherwise poll again later.")


Problem.model_rebuild()
