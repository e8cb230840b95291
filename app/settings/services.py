"""The console's settings use cases: save the settings, set or remove a refund threshold. Each in
one transaction (run_idempotent), audited with before and after."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.catalog.models import Merchant, SalesChannel
from app.errors import NotFound, NotPermitted, ValidationFailed
from app.ledger.idempotency import Result, run_idempotent
from app.ledger.writer import audit_row
from app.rows import write
from app.settings.domain import SETTINGS, parse_threshold, scope_key
from app.settings.models import RefundThreshold, Setting
from app.settings.queries import ceiling_of


@dataclass(frozen=True)
class SettingsSaved(Result):
    """Which settings a save changed (none: the values were already so)."""

    changed: tuple[str, ...]


def _allowed(actor: Actor) -> None:
    if not actor.can("admin"):
        raise NotPermitted("Only an admin can change settings.")


def save_settings(session: Session, actor: Actor, *, values: Mapping[str, str], config: Mapping[str, Any],
                  idempotency_key: str | None) -> SettingsSaved:
    """Store the settings given (a blank value goes back to the environment's default). Every value
    is checked before anything is written."""
    _allowed(actor)
    clean: dict[str, str | None] = {}
    for name, raw in values.items():
        spec = SETTINGS.get(name)
        if spec is None:
            raise ValidationFailed(f"There is no setting called {name[:48]}.")
        clean[name] = None if not (raw or "").strip() else spec.parse(raw, ceiling=ceiling_of(spec, config))

    def work() -> SettingsSaved:
        rows = {s.name: s for s in session.scalars(select(Setting).where(Setting.name.in_(clean))
                                                   .with_for_update())}
        before, after = {}, {}
        for name, value in clean.items():
            row = rows.get(name)
            old = row.value if row is not None else None
            if old == value:
                continue
            before[name], after[name] = old, value
            if value is None:
                session.delete(row)
            elif row is None:
                session.add(Setting(name=name, value=value))
            else:
                row.value = value
        if after:
            session.flush()
            write(session, [audit_row(actor, "settings.saved", "setting", 0, details={"before": before, "after": after})])
        return SettingsSaved(tuple(after))

    return run_idempotent(session, actor, idempotency_key, "save_settings", dict(clean), work,
                          result_type=SettingsSaved)


@dataclass(frozen=True)
class ThresholdSaved(Result):
    """A refund threshold as it is now (`amount` None: removed)."""

    scope: str
    target: str
    amount: str | None


def _target(session: Session, scope: str, target_id: int | None) -> str:
    if scope == "all":
        return "every return"
    model = Merchant if scope == "merchant" else SalesChannel
    name = session.scalar(select(model.name).where(model.id == target_id))
    if name is None:
        raise ValidationFailed(f"No such {'merchant' if scope == 'merchant' else 'sales channel'}.")
    return name


def set_threshold(session: Session, actor: Actor, *, scope: str, target_id: int | None, amount: str | None,
                  idempotency_key: str | None) -> ThresholdSaved:
    """Refunds above `amount` wait for a supervisor: for every return, or one merchant's or channel's."""
    _allowed(actor)
    key, value = scope_key(scope, target_id), parse_threshold(amount)

    def work() -> ThresholdSaved:
        target = _target(session, scope, target_id)
        row = session.scalars(select(RefundThreshold).where(RefundThreshold.scope == key).with_for_update()).first()
        before = str(row.amount) if row is not None else None
        if row is None:
            row = RefundThreshold(scope=key, amount=value, merchant_id=target_id if scope == "merchant" else None,
                                  channel_id=target_id if scope == "channel" else None)
            session.add(row)
        else:
            row.amount = value
        session.flush()
        write(session, [audit_row(actor, "refund_threshold.set", "setting", row.id,
                                  details={"before": {"applies_to": target, "above": before} if before else None,
                                           "after": {"applies_to": target, "above": str(value)}})])
        return ThresholdSaved(key, target, str(value))

    return run_idempotent(session, actor, idempotency_key, "set_refund_threshold",
                          {"scope": key, "amount": str(value)}, work, result_type=ThresholdSaved)


def remove_threshold(session: Session, actor: Actor, *, threshold_id: int, idempotency_key: str | None) -> ThresholdSaved:
    """Drop a stored threshold: the next broader one (or the environment's) applies again."""
    _allowed(actor)

    def work() -> ThresholdSaved:
        row = session.scalars(select(RefundThreshold).where(RefundThreshold.id == threshold_id).with_for_update()).first()
        if row is None:
            raise NotFound("No such refund threshold.")
        scope = row.scope.split(":")[0]
        target = _target(session, scope, row.merchant_id or row.channel_id)
        write(session, [audit_row(actor, "refund_threshold.removed", "setting", row.id,
                                  details={"before": {"applies_to": target, "above": str(row.amount)}, "after": None})])
        session.delete(row)
        session.flush()
        return ThresholdSaved(row.scope, target, None)

    return run_idempotent(session, actor, idempotency_key, "remove_refund_threshold", {"id": threshold_id}, work,
                          result_type=ThresholdSaved)
