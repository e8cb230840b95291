"""Reading webhooks: the endpoints with what they are owed, and an endpoint's delivery log."""
from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select, true
from sqlalchemy.orm import Session

from app.ledger.models import OutboxEvent
from app.webhooks.models import WebhookDelivery, WebhookEndpoint


def endpoints(session: Session, endpoint_id: int | None = None) -> list[Any]:
    """Every endpoint (or the one with this id), newest first, with its deliveries pending,
    delivered and given up."""
    d = WebhookDelivery.__table__
    counts = (select(d.c.endpoint_id,
                     func.sum(case((d.c.status == "pending", 1), else_=0)).label("pending"),
                     func.sum(case((d.c.status == "delivered", 1), else_=0)).label("delivered"),
                     func.sum(case((d.c.status == "dead", 1), else_=0)).label("dead"))
              .group_by(d.c.endpoint_id).subquery())
    return list(session.execute(
        select(WebhookEndpoint, func.coalesce(counts.c.pending, 0).label("pending"),
               func.coalesce(counts.c.delivered, 0).label("delivered"), func.coalesce(counts.c.dead, 0).label("dead"))
        .outerjoin(counts, counts.c.endpoint_id == WebhookEndpoint.id)
        .where(WebhookEndpoint.id == endpoint_id if endpoint_id is not None else true())
        .order_by(WebhookEndpoint.id.desc())))


def deliveries(session: Session, endpoint_id: int, *, status: str | None = None, limit: int = 100) -> list[Any]:
    """An endpoint's newest deliveries with their event and last answer."""
    stmt = (select(WebhookDelivery.id, WebhookDelivery.status, WebhookDelivery.attempts, WebhookDelivery.last_status_code,
                   WebhookDelivery.last_error, WebhookDelivery.last_attempt_at, WebhookDelivery.next_attempt_at,
                   WebhookDelivery.delivered_at, OutboxEvent.id.label("event_id"), OutboxEvent.type, OutboxEvent.at)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.endpoint_id == endpoint_id).order_by(WebhookDelivery.id.desc()).limit(limit))
    if status:
        stmt = stmt.where(WebhookDelivery.status == status)
    return list(session.execute(stmt))


def backlog(session: Session) -> tuple[int, float]:
    """Deliveries owed to switched-on endpoints, and how long the oldest has waited (seconds)."""
    from app.db import as_utc, utcnow

    count, oldest = session.execute(
        select(func.count(), func.min(WebhookDelivery.created_at))
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.status == "pending", WebhookEndpoint.disabled_at.is_(None))).one()
    return int(count), (utcnow() - as_utc(oldest)).total_seconds() if oldest is not None else 0.0
