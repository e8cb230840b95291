"""The supervisor desk's decisions: each one a use case in one transaction (run_idempotent),
with a required reason and an audit entry.

Each reads what it changes as a plain row under its row lock (app.ledger.services.lock_unit, then
check_version, so two supervisors deciding the same unit cannot both win) and writes only through
the writers: app.ledger.writer.move_unit for a unit's move, app.inspection.writer for a re-grade,
app.refunds (use cases over app.refunds.writer) for refunds, app.disposition for a disposition.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.ledger.queries import ensure_unit_visible
from app.catalog.models import Product
from app.catalog.services import location_of_type
from app.disposition.domain import DISPOSITION_LOCATION_TYPE, DISPOSITION_STATE, STATE_DISPOSITION
from app.disposition.services import DispositionConfirmed, confirm_disposition
from app.errors import AlreadyDisposed, DomainError, NotPermitted, ValidationFailed
from app.exceptions.services import require_reason
from app.inspection.models import Inspection
from app.inspection.grading import component_items
from app.inspection.queries import checklist_for, kit_components
from app.inspection.services import clean_grade, kept_answers
from app.inspection.writer import record_inspection
from app.ledger.domain import STATE_LABELS
from app.ledger.idempotency import Result, check_key, run_idempotent
from app.ledger.models import ReturnUnit
from app.ledger.services import check_version, lock_unit
from app.ledger.writer import move_unit
from app.refunds.services import RefundPolicy, RefundStatus, approve_refund, reject_refund
from app.rows import allocate_ids, expire, write
from app.words import N_

# Where a supervisor may send a unit (a state), with the audit action and the button's words; the
# disposition recorded and the location's type are the disposition rules' (app.disposition.domain).
TARGETS: dict[str, tuple[str, str]] = {
    "available": ("unit.released", N_("Release to stock")),
    "refurbish": ("unit.routed", N_("Route to refurbish")),
    "vendor_return": ("unit.routed", N_("Return to vendor")),
    "liquidation": ("unit.routed", N_("Route to liquidation")),
    "disposed": ("unit.routed", N_("Dispose")),
    "quarantine": ("unit.held", N_("Hold in quarantine")),
}


MAX_BULK = 500


@dataclass(frozen=True)
class UnitDecided(Result):
    """A supervisor's move of a unit: where it went (its state, the location's code), its version after."""

    unit_id: int
    lpn: str
    state: str
    version: int
    location: str


@dataclass(frozen=True)
class UnitRegraded(Result):
    """regrade_unit's answer: the new inspection, the grade and packaging it set, the unit's version after."""

    unit_id: int
    inspection_id: int
    grade: str
    packaging: str
    version: int


def target_label(state: str) -> str:
    """The button words of a decision that moves a unit to `state`."""
    return TARGETS[state][1] if state in TARGETS else STATE_LABELS.get(state, state)


def _can_move(actor: Actor) -> None:
    if not (actor.can("release_quarantine") and actor.can("override_disposition")):
        raise NotPermitted(N_("Only a supervisor may release or re-route units."))


def _move_unit(session: Session, actor: Actor, unit_id: int, to_state: str, reason: str,
               expected_version: int | None, idempotency_key: str, bulk: str | None) -> UnitDecided:
    """The governed move itself, inside the caller's transaction: the unit's row lock, the checks,
    then the move's rows (move_unit, the disposition set in the same UPDATE) in one write."""
    unit = lock_unit(session, unit_id)
    ensure_unit_visible(session, actor, unit)
    check_version(session, unit, expected_version)
    if unit.state == "received":
        raise ValidationFailed(N_("Unit %(lpn)s has not been disposed yet: confirm or override its disposition instead."),
                               lpn=unit.lpn)
    action, _label = TARGETS[to_state]
    disposition = STATE_DISPOSITION[to_state]
    loc_type = DISPOSITION_LOCATION_TYPE[disposition]
    location = location_of_type(session, unit.warehouse_id, loc_type)
    details: dict[str, Any] = {"decision": to_state, "location": location.code}
    if bulk:
        details["bulk"] = bulk
    write(session, move_unit(actor, unit, to_state, reason=reason, to_location_id=location.id,
                             to_location_warehouse_id=location.warehouse_id, action=action, details=details,
                             values={"disposition": disposition}, idempotency_key=idempotency_key))
    expire(session, (ReturnUnit, unit.id))
    return UnitDecided(unit.id, unit.lpn, to_state, unit.version + 1, location.code)


def decide_unit(session: Session, actor: Actor, *, unit_id: int, to_state: str, reason: str | None,
                idempotency_key: str | None, expected_version: int | None = None) -> UnitDecided:
    """Use case: release a unit to stock, or route it (refurbish, vendor return, liquidation, disposal,
    quarantine hold) to its warehouse's location of that type. One ledger row, one audit entry.

    Pass the version the supervisor saw: if somebody decided first, StaleVersion says who.
    """
    _can_move(actor)
    reason = require_reason(reason)
    if to_state not in TARGETS:
        raise ValidationFailed(N_("Pick where the unit goes."))
    key = check_key(idempotency_key)
    params = {"unit_id": unit_id, "to_state": to_state, "reason": reason, "v": expected_version}
    return run_idempotent(session, actor, key, "desk.decide_unit", params,
                          lambda: _move_unit(session, actor, unit_id, to_state, reason, expected_version, key, None),
                          result_type=UnitDecided)


@dataclass
class BulkResult:
    """What a bulk decision did, item by item."""

    done: list[Result] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (id, message)

    @property
    def summary(self) -> str:
        """One line for the supervisor."""
        text = f"{len(self.done)} done"
        if self.refused:
            text += f", {len(self.refused)} refused: " + "; ".join(msg for _, msg in self.refused[:5])
            if len(self.refused) > 5:
                text += f"; and {len(self.refused) - 5} more"
        return text


def _item_key(batch_key: str, kind: str, item_id: int) -> str:
    """A per-item idempotency key derived from the batch key: a retried batch replays each item."""
    digest = hashlib.sha256(batch_key.encode()).hexdigest()[:32]
    return f"bulk-{kind}-{digest}-{item_id}"


def _ids(ids: Iterable[int]) -> list[int]:
    unique = sorted({int(i) for i in ids})
    if not unique:
        raise ValidationFailed(N_("Tick at least one item first."))
    if len(unique) > MAX_BULK:
        raise ValidationFailed(N_("Decide at most %(max_bulk)s items at once."), max_bulk=MAX_BULK)
    return unique


def bulk_decide_units(session: Session, actor: Actor, *, unit_ids: Iterable[int], to_state: str, reason: str | None,
                      idempotency_key: str | None, versions: Mapping[int, int] | None = None) -> BulkResult:
    """Use case: the same decision for a selection of units.

    One transaction per unit (each its own ledger row and audit entry, tagged with the batch):
    a unit somebody else decided meanwhile is refused on its own and does not undo the rest.
    Per-unit idempotency keys are derived from the batch key, so a retried batch moves nothing twice.
    """
    _can_move(actor)
    reason = require_reason(reason)
    if to_state not in TARGETS:
        raise ValidationFailed(N_("Pick where the units go."))
    batch = check_key(idempotency_key)
    result = BulkResult()
    for unit_id in _ids(unit_ids):
        key = _item_key(batch, "unit", unit_id)
        v = (versions or {}).get(unit_id)
        try:
            done = run_idempotent(session, actor, key, "desk.decide_unit",
                                  {"unit_id": unit_id, "to_state": to_state, "reason": reason, "v": v},
                                  lambda uid=unit_id, k=key, ver=v: _move_unit(session, actor, uid, to_state, reason, ver, k, batch),
                                  result_type=UnitDecided)
            result.done.append(done)
        except DomainError as exc:
            result.refused.append((unit_id, exc.message))
    return result


# --------------------------------------------------------------------------- re-grade and disposition


def regrade_unit(session: Session, actor: Actor, *, unit_id: int, grade: str, packaging: str,
                 answers: Mapping[str, Any] | None, reason: str | None, idempotency_key: str | None,
                 expected_version: int | None = None, unanswered_is_no: bool = False) -> UnitRegraded:
    """Use case: a supervisor re-grades (re-inspects) a unit, saying why.

    Same effect as app.inspection.services.record_inspection (a new Inspection row; the unit's
    grade, packaging and inspector), plus the version check and a reasoned `unit.regraded` audit
    entry. The unit does not move: its next decision is a separate one. `unanswered_is_no`: the
    answers come from the desk's form (form_answers), where an item left unanswered is a no.
    """
    if not actor.can("override_disposition"):
        raise NotPermitted(N_("Only a supervisor may re-grade a unit."))
    reason = require_reason(reason)
    grade, packaging = clean_grade(grade, packaging)

    def work() -> UnitRegraded:
        unit = lock_unit(session, unit_id)
        ensure_unit_visible(session, actor, unit)
        check_version(session, unit, expected_version)
        if unit.state in ("vendor_return", "liquidation", "disposed"):
            raise ValidationFailed(N_("Unit %(lpn)s is %(state)s: that is final, nothing to re-grade."),
                                   lpn=unit.lpn, state=STATE_LABELS[unit.state])
        category = session.scalar(select(Product.category).where(Product.id == unit.product_id))
        checklist = checklist_for(session, category)
        components = component_items(kit_components(session, unit.product_id))  # a kit's checks too
        clean = kept_answers([*checklist.items, *components], answers, unanswered_is_no=unanswered_is_no)
        (inspection_id,) = allocate_ids(session, Inspection, 1)
        write(session, record_inspection(actor, unit, inspection_id, grade=grade, packaging=packaging, answers=clean,
                                         notes=reason, checklist_version=checklist.version, action="unit.regraded", reason=reason,
                                         details={"from_grade": unit.grade, "to_grade": grade,
                                                  "from_packaging": unit.packaging, "to_packaging": packaging}))
        expire(session, (ReturnUnit, unit.id))
        return UnitRegraded(unit.id, inspection_id, grade, packaging, unit.version + 1)

    params = {"unit_id": unit_id, "grade": grade, "packaging": packaging, "answers": dict(answers or {}),
              "reason": reason, "v": expected_version}
    return run_idempotent(session, actor, idempotency_key, "desk.regrade_unit", params, work, result_type=UnitRegraded)


def dispose_unit(session: Session, actor: Actor, *, unit_id: int, disposition: str | None, reason: str | None,
                 idempotency_key: str | None, policy: RefundPolicy,
                 expected_version: int | None = None) -> DispositionConfirmed:
    """Use case: a received, inspected unit gets the rules' disposition or a supervisor's override.

    Delegates to app.disposition.services.confirm_disposition (which settles the refund and records
    the override for the four-eyes rule). An override needs a reason; applying the rules records
    the rule's own explanation as the reason (that service has no field for another one).
    """
    if not actor.can("override_disposition"):
        raise NotPermitted(N_("Only a supervisor may override the disposition."))
    disposition = (disposition or "").strip() or None
    reason = require_reason(reason) if disposition is not None else (reason or "").strip() or None
    if disposition is not None and disposition not in DISPOSITION_STATE:
        raise ValidationFailed(N_("Unknown disposition."))
    try:
        return confirm_disposition(session, actor, unit_id=unit_id, idempotency_key=idempotency_key, policy=policy,
                                   override=disposition, override_reason=reason, expected_version=expected_version)
    except AlreadyDisposed as exc:  # at the desk, a disposed unit is released or routed instead
        raise ValidationFailed(N_("Unit %(lpn)s was already disposed (%(state)s): release or route it instead."),
                               lpn=exc.lpn, state=STATE_LABELS[exc.state]) from exc


def decide_refund(session: Session, actor: Actor, *, refund_id: int, decision: str, reason: str | None,
                  idempotency_key: str | None, amount: Decimal | str | None = None,
                  expected_version: int | None = None) -> RefundStatus:
    """Use case: approve (optionally adjusting the amount) or reject a held refund.

    Through app.refunds.services, which enforces four-eyes in the decision's transaction (an
    inspection by the supervisor ever, a desk re-grade included, or their override).
    """
    if not actor.can("approve_refunds"):
        raise NotPermitted(N_("Only a supervisor may approve or reject refunds."))
    if decision not in ("approve", "reject"):
        raise ValidationFailed(N_("Approve or reject?"))
    reason = require_reason(reason)
    if decision == "approve":
        return approve_refund(session, actor, refund_id=refund_id, reason=reason, idempotency_key=idempotency_key,
                              amount=amount, expected_version=expected_version)
    if amount not in (None, "") and str(amount).strip():
        raise ValidationFailed(N_("A rejected refund pays nothing: leave the amount empty."))
    return reject_refund(session, actor, refund_id=refund_id, reason=reason, idempotency_key=idempotency_key,
                         expected_version=expected_version)


def bulk_decide_refunds(session: Session, actor: Actor, *, refund_ids: Iterable[int], decision: str, reason: str | None,
                        idempotency_key: str | None, versions: Mapping[int, int] | None = None) -> BulkResult:
    """Use case: approve or reject a selection of held refunds, one transaction each (see bulk_decide_units)."""
    if not actor.can("approve_refunds"):
        raise NotPermitted(N_("Only a supervisor may approve or reject refunds."))
    reason = require_reason(reason)
    if decision not in ("approve", "reject"):
        raise ValidationFailed(N_("Approve or reject?"))
    batch = check_key(idempotency_key)
    result = BulkResult()
    for refund_id in _ids(refund_ids):
        try:
            done = decide_refund(session, actor, refund_id=refund_id, decision=decision, reason=reason,
                                 idempotency_key=_item_key(batch, "refund", refund_id),
                                 expected_version=(versions or {}).get(refund_id))
            result.done.append(done)
        except DomainError as exc:
            result.refused.append((refund_id, exc.message))
    return result
