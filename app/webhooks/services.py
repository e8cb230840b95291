"""Webhooks' use cases. An admin (or a key with webhooks:manage) registers an endpoint, rotates
its secret, switches it off and on, and resends deliveries. The worker (app/webhooks/worker.py)
fans each event of the feed out to the endpoints that want it (`fan_out`), claims what is due
(`claim_due`, FOR UPDATE SKIP LOCKED on PostgreSQL: several workers never take one delivery
twice), sends it outside any transaction, and records the answers (`record_attempts`): delivered,
tried again later with backoff, or given up after about three days; an endpoint that answers 410
or fails for three days is switched off, with an audit entry and an event saying so."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.auth.roles import SYSTEM, Actor
from app.db import as_utc, unit_of_work, utcnow
from app.errors import NotFound, NotPermitted, ValidationFailed
from app.ledger.domain import FeedCursor
from app.ledger.idempotency import Result, run_idempotent
from app.ledger.models import OutboxEvent
from app.ledger.queries import feed_page
from app.ledger.writer import audit_row, event_row
from app.rows import insert_row, write
from app.webhooks import domain
from app.webhooks.models import FeedPosition, WebhookDelivery, WebhookEndpoint

FAN_OUT = "webhooks"


@dataclass(frozen=True)
class EndpointChanged(Result):
    """What an endpoint use case did. `secret` only on the answer that made it (never kept on a record)."""

    id: int
    url: str
    action: str
    secret: str | None = None


def _allowed(actor: Actor) -> None:
    if not (actor.can("admin") or "webhooks:manage" in actor.scopes or actor.role == "system"):
        raise NotPermitted("Managing webhooks needs an admin or the webhooks:manage scope.")


def _event_types(types: list[str]) -> list[str]:
    clean = sorted({t.strip() for t in types if t.strip()})
    for t in clean:
        if len(t) > 64 or not all(c.isalnum() or c in "._*" for c in t):
            raise ValidationFailed(f"{t!r} is not an event type (such as unit.state_changed or refund.*).")
    return clean


def register_endpoint(session: Session, actor: Actor, *, url: str, event_types: list[str], description: str = "",
                      idempotency_key: str | None) -> EndpointChanged:
    """A new endpoint for the events of these types (none: every type), from the next event on.
    Its signing secret is on this answer only: copy it into the receiver."""
    _allowed(actor)
    try:
        url = domain.check_url(url)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc
    types = _event_types(event_types)
    description = " ".join((description or "").split())[:200]
    secret = domain.new_secret()

    def work() -> EndpointChanged:
        # Taken with the fan-out's lock, so that no fan-out is half-way through events of this
        # moment: every event from `created_at` on is owed to the endpoint, none before.
        session.scalars(select(FeedPosition).where(FeedPosition.name == FAN_OUT).with_for_update()).first()
        row = WebhookEndpoint(url=url, event_types=types, description=description, secret=secret, created_by=actor.name,
                              created_at=utcnow())
        session.add(row)
        session.flush()
        write(session, [audit_row(actor, "webhook.registered", "webhook_endpoint", row.id,
                                  details={"before": None, "after": row.describe()})])
        return EndpointChanged(row.id, url, "registered")

    done = run_idempotent(session, actor, idempotency_key, "register_endpoint",
                          {"url": url, "types": types, "description": description}, work, result_type=EndpointChanged)
    return done if done.replayed else replace(done, secret=secret)


def _endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    row = session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"No webhook endpoint {endpoint_id}.")
    return row


def rotate_secret(session: Session, actor: Actor, *, endpoint_id: int, idempotency_key: str | None) -> EndpointChanged:
    """A new signing secret; the old one signs too for a day (both signatures on each delivery),
    so the receiver can switch over without refusing anything."""
    _allowed(actor)
    secret = domain.new_secret()

    def work() -> EndpointChanged:
        row = _endpoint(session, endpoint_id)
        row.previous_secret, row.previous_secret_until = row.secret, utcnow() + domain.SECRET_OVERLAP
        row.secret = secret
        session.flush()
        write(session, [audit_row(actor, "webhook.secret_rotated", "webhook_endpoint", row.id, details={"url": row.url})])
        return EndpointChanged(row.id, row.url, "secret_rotated")

    done = run_idempotent(session, actor, idempotency_key, "rotate_secret", {"endpoint_id": endpoint_id}, work,
                          result_type=EndpointChanged)
    return done if done.replayed else replace(done, secret=secret)


def set_endpoint_enabled(session: Session, actor: Actor, *, endpoint_id: int, enabled: bool,
                         idempotency_key: str | None) -> EndpointChanged:
    """Switch an endpoint off (nothing more is sent to it) or on again (what is owed is sent)."""
    _allowed(actor)

    def work() -> EndpointChanged:
        row = _endpoint(session, endpoint_id)
        before = row.describe()
        if enabled and row.disabled_at is not None:
            row.disabled_at, row.disabled_reason, row.failing_since = None, None, None
        elif not enabled and row.disabled_at is None:
            row.disabled_at, row.disabled_reason = utcnow(), f"switched off by {actor.name}"
        session.flush()
        write(session, [audit_row(actor, "webhook.enabled" if enabled else "webhook.disabled", "webhook_endpoint", row.id,
                                  details={"before": before, "after": row.describe()})])
        return EndpointChanged(row.id, row.url, "enabled" if enabled else "disabled")

    return run_idempotent(session, actor, idempotency_key, "set_endpoint_enabled",
                          {"endpoint_id": endpoint_id, "enabled": enabled}, work, result_type=EndpointChanged)


@dataclass(frozen=True)
class Resent(Result):
    endpoint_id: int
    deliveries: int


def resend(session: Session, actor: Actor, *, endpoint_id: int, delivery_ids: list[int] | None = None,
           idempotency_key: str | None) -> Resent:
    """Send again what was given up (or these deliveries, whatever their status), from now, with
    a fresh three days of tries; switches the endpoint on again if it was off."""
    _allowed(actor)

    def work() -> Resent:
        row = _endpoint(session, endpoint_id)
        where = [WebhookDelivery.endpoint_id == row.id]
        where.append(WebhookDelivery.id.in_(delivery_ids) if delivery_ids else WebhookDelivery.status == "dead")
        n = session.execute(update(WebhookDelivery).where(*where).values(
            status="pending", next_attempt_at=utcnow(), first_attempt_at=None, last_error=None)).rowcount
        if row.disabled_at is not None:
            row.disabled_at, row.disabled_reason, row.failing_since = None, None, None
        session.flush()
        write(session, [audit_row(actor, "webhook.resent", "webhook_endpoint", row.id, details={"deliveries": n})])
        return Resent(row.id, n)

    return run_idempotent(session, actor, idempotency_key, "resend_deliveries",
                          {"endpoint_id": endpoint_id, "ids": sorted(delivery_ids or [])}, work, result_type=Resent)


# ------------------------------------------------------------------------------ the worker's steps

def fan_out(session: Session, *, limit: int = 1000) -> int:
    """Owe the next events of the feed to each endpoint that wants their type; the feed's position
    is kept in the same transaction (one fan-out at a time: its row is locked).
    Returns how many events it read (0: the feed has nothing new)."""
    with unit_of_work(session):
        pos = session.scalars(select(FeedPosition).where(FeedPosition.name == FAN_OUT).with_for_update()).first()
        if pos is None:  # migration 0012 writes it; a database emptied since starts from the feed's beginning
            # An upsert that adds 0: a second worker doing the same at once finds the row and changes nothing.
            write(session, [insert_row(FeedPosition, {"name": FAN_OUT, "tx": 0, "event_id": 0}, conflict=("name",), add="event_id")])
            pos = session.scalars(select(FeedPosition).where(FeedPosition.name == FAN_OUT).with_for_update()).one()
        page = feed_page(session, FeedCursor(pos.tx, pos.event_id), limit)
        if not page:
            return 0
        # Switched-off endpoints are owed their events too: claim_due skips them until they are
        # switched on again (or resent), and then they get everything since they went off.
        endpoints = session.scalars(select(WebhookEndpoint)).all()
        now = utcnow()
        rows = [{"endpoint_id": ep.id, "event_id": e.id, "status": "pending", "attempts": 0, "next_attempt_at": now,
                 "created_at": now}
                for _, e in page for ep in endpoints
                if as_utc(ep.created_at) <= as_utc(e.at) and _wants(ep.event_types, e.type)]
        if rows:
            session.execute(WebhookDelivery.__table__.insert(), rows)
        last = page[-1][0]
        pos.tx, pos.event_id = last.tx, last.id
        return len(page)


def _wants(types: list[str], event_type: str) -> bool:
    return not types or any(t == event_type or (t.endswith(".*") and event_type.startswith(t[:-1])) for t in types)


@dataclass(frozen=True)
class Due:
    """A claimed delivery, with what sending it needs."""

    id: int
    url: str
    secrets: list[str]
    webhook_id: str
    payload: str


def claim_due(session: Session, *, limit: int = 100) -> list[Due]:
    """Take up to `limit` due deliveries for this worker: each is leased (due again only after
    domain.LEASE, if this worker dies), so no other worker takes it meanwhile."""
    now = utcnow()
    with unit_of_work(session):
        stmt = (select(WebhookDelivery.id).join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now,
                       WebhookEndpoint.disabled_at.is_(None))
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit))
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(of=WebhookDelivery, skip_locked=True)
        ids = list(session.scalars(stmt))
        if not ids:
            return []
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(ids)).values(next_attempt_at=now + domain.LEASE))
        rows = session.execute(select(WebhookDelivery.id, WebhookEndpoint.url, WebhookEndpoint.secret, WebhookEndpoint.previous_secret,
                                      WebhookEndpoint.previous_secret_until, OutboxEvent.id.label("event_id"), OutboxEvent.type,
                                      OutboxEvent.at, OutboxEvent.aggregate_type, OutboxEvent.aggregate_id, OutboxEvent.payload)
                               .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                               .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
                               .where(WebhookDelivery.id.in_(ids)).order_by(WebhookDelivery.id)).all()
    out = []
    for r in rows:
        secrets_ = [r.secret] + ([r.previous_secret] if r.previous_secret and as_utc(r.previous_secret_until) > now else [])
        out.append(Due(r.id, r.url, secrets_, f"evt_{r.event_id}",
                       domain.body(r.type, as_utc(r.at), r.event_id, r.aggregate_type, r.aggregate_id, r.payload)))
    return out


def record_attempts(session: Session, answers: list[tuple[int, int | None, str | None]], *,
                    now: datetime | None = None) -> None:
    """The answers to one round's tries, (delivery id, HTTP status or None, error), in one
    transaction: the 2xx ones delivered together in one statement; each other one due again after
    a backoff, or dead after three days. 410 Gone, or an endpoint failing for three days, switches
    the endpoint off."""
    now = now or utcnow()
    ok: dict[int, list[int]] = {}  # HTTP status -> deliveries so answered
    for d, status, _ in answers:
        if status is not None and 200 <= status < 300:
            ok.setdefault(status, []).append(d)
    failed = sorted((d, status, error) for d, status, error in answers if status is None or not 200 <= status < 300)
    with unit_of_work(session):
        # Endpoints first, in id order, then deliveries: two workers recording at once queue, never deadlock.
        involved = select(WebhookDelivery.endpoint_id).where(WebhookDelivery.id.in_([d for d, _, _ in answers]))
        session.scalars(select(WebhookEndpoint.id).where(WebhookEndpoint.id.in_(involved)).order_by(WebhookEndpoint.id)
                        .with_for_update()).all()
        endpoint_ids: set[int] = set()
        for status, ids in sorted(ok.items()):
            endpoint_ids.update(session.scalars(
                update(WebhookDelivery).where(WebhookDelivery.id.in_(sorted(ids)), WebhookDelivery.status == "pending")
                .values(status="delivered", delivered_at=now, attempts=WebhookDelivery.attempts + 1, last_attempt_at=now,
                        last_status_code=status, last_error=None,
                        first_attempt_at=func.coalesce(WebhookDelivery.first_attempt_at, now))
                .returning(WebhookDelivery.endpoint_id)).all())
        if endpoint_ids:
            session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id.in_(sorted(endpoint_ids)),
                                                          WebhookEndpoint.failing_since.is_not(None)).values(failing_since=None))
        for delivery_id, status_code, error in failed:
            _record_failure(session, delivery_id, status_code, error, now)


def _record_failure(session: Session, delivery_id: int, status_code: int | None, error: str | None, now: datetime) -> None:
    d = session.scalars(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()).first()
    if d is None or d.status != "pending":
        return
    ep = session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.id == d.endpoint_id).with_for_update()).one()
    d.attempts += 1
    d.first_attempt_at = d.first_attempt_at or now
    d.last_attempt_at, d.last_status_code, d.last_error = now, status_code, (error or "")[:500] or None
    ep.failing_since = ep.failing_since or now
    if domain.gives_up(as_utc(d.first_attempt_at), now):
        d.status = "dead"
    else:
        d.next_attempt_at = now + domain.next_wait(d.attempts)
    reason = None
    if status_code == 410:
        reason = "the endpoint answered 410 Gone"
    elif ep.disabled_at is None and domain.gives_up(as_utc(ep.failing_since), now):
        reason = f"every delivery failed for {domain.GIVE_UP_AFTER.days} days"
    if reason and ep.disabled_at is None:
        ep.disabled_at, ep.disabled_reason = now, reason
        session.flush()
        write(session, [audit_row(SYSTEM, "webhook.disabled", "webhook_endpoint", ep.id, reason=reason,
                                  details={"url": ep.url}),
                        # The URL stays out: the event reaches every other endpoint, and URLs carry tokens.
                        event_row("webhook_endpoint.disabled", "webhook_endpoint", ep.id,
                                  {"endpoint_id": ep.id, "reason": reason})])
