"""Shared helpers for the ledger / refund / scoping integration tests.

Units, refund triggers and inspections are made here only through the one writer of each
(app.ledger.writer.move_unit, app.refunds.writer, app.inspection.writer), their rows sent with
app.rows.write in one transaction, as the use cases do."""
from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.ledger.queries import ensure_unit_visible
from app.catalog.models import Product, ProductBarcode
from app.db import unit_of_work, utcnow
from app.exceptions.models import ReturnException
from app.exceptions.writer import open_exception
from app.inspection.models import Inspection
from app.inspection.writer import record_inspection
from app.labels.models import Printer
from app.ledger.models import AuditEntry, Balance, IdempotencyRecord, LedgerEntry, OutboxEvent, ReturnUnit
from app.ledger.services import lock_unit, next_number
from app.ledger.writer import format_lpn, move_unit
from app.refunds.domain import hold_reasons
from app.refunds.models import RefundEvent, RefundTrigger
from app.refunds.services import RefundPolicy
from app.refunds.writer import open_trigger, settle_refund
from app.rows import allocate_ids, expire, write
from tests.fakes import PRINTER_HOST


def new_lpn(session: Session) -> str:
    """A fresh LPN from the ledger's counter, for units the tests make without a scan."""
    return format_lpn(next_number(session, "lpn"))


INTEGRATION = Actor(id=None, role="integration", name="Finance ERP")

# What a refused action must not touch.
COUNTED = {
    "ledger": LedgerEntry,
    "audit": AuditEntry,
    "outbox": OutboxEvent,
    "refund_events": RefundEvent,
    "refunds": RefundTrigger,
    "idempotency": IdempotencyRecord,
    "units": ReturnUnit,
}

_seq = itertools.count(1)


def new_key(prefix: str = "k") -> str:
    """A fresh, valid idempotency key."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}-{next(_seq)}"


def counts(session: Session) -> dict[str, int]:
    """Row counts of every table a governed action writes, plus the balances (rolled back after reading)."""
    out = {name: session.scalar(select(func.count()).select_from(model)) or 0 for name, model in COUNTED.items()}
    out["balances"] = tuple(sorted((b.product_id, b.warehouse_id, b.state, b.quantity)
                                   for b in session.scalars(select(Balance))))  # type: ignore[assignment]
    session.rollback()
    return out


def arriving_unit(session: Session, product_id: int, warehouse_id: int, lpn: str | None = None) -> SimpleNamespace:
    """A unit not yet in the building, as move_unit takes it (state None): its id allocated, its
    LPN from the ledger's counter unless given. Inside the caller's transaction."""
    (unit_id,) = allocate_ids(session, ReturnUnit, 1)
    return SimpleNamespace(id=unit_id, lpn=lpn or new_lpn(session), product_id=product_id, warehouse_id=warehouse_id,
                           state=None, location_id=None)


def receive_unit(session: Session, world, product_key: str, actor: Actor, *, warehouse=None,  # type: ignore[no-untyped-def]
                 merchant=..., paid_price: Decimal | str | None = None, with_refund: bool = True) -> ReturnUnit:
    """A new unit taken None -> received at the dock, with its refund trigger for the price paid
    (the product's value unless given), in one transaction. The actor's role is checked (move_unit)."""
    wh = warehouse if warehouse is not None else world.wh
    merchant_id = world.merchant.id if merchant is ... else (merchant.id if merchant is not None else None)
    product = world.products[product_key]
    paid = Decimal(str(paid_price)) if paid_price is not None else product.unit_value
    dock = world.loc(wh, "dock")
    with unit_of_work(session):
        unit = arriving_unit(session, product.id, wh.id)
        rows = move_unit(actor, unit, "received", reason="received at dock", to_location_id=dock.id,
                         to_location_warehouse_id=dock.warehouse_id, action="unit.received",
                         values={"merchant_id": merchant_id, "paid_price": paid})
        if with_refund:
            (refund_id,) = allocate_ids(session, RefundTrigger, 1)
            rows += open_trigger(actor, refund_id, unit_id=unit.id, rma_id=None, warehouse_id=wh.id, paid_amount=paid,
                                 currency="USD")
        write(session, rows)
        return session.get(ReturnUnit, unit.id)


def refund_of(session: Session, unit_id: int) -> RefundTrigger | None:
    """A unit's refund trigger as it is in the database now (the session's copy refreshed); None when it has none."""
    return session.scalars(select(RefundTrigger).where(RefundTrigger.unit_id == unit_id)
                           .execution_options(populate_existing=True)).first()


def lock_refund(session: Session, unit_id: int) -> Any:
    """A unit's refund trigger as a plain row, locked (FOR UPDATE); None when it has none."""
    triggers = RefundTrigger.__table__
    return session.execute(select(triggers).where(triggers.c.unit_id == unit_id).with_for_update()).first()


def inspect_and_dispose(session: Session, inspector: Actor, unit_id: int, to_state: str, *, amount: Decimal | str,
                        refund_action: str = "full", override_by: Actor | None = None, fraud_flag: bool = False,
                        policy: RefundPolicy = RefundPolicy(), grade: str = "A", packaging: str = "sealed") -> RefundTrigger:
    """What the inspection step does, in one transaction: the inspector's inspection (record_inspection),
    the unit moved to `to_state` by the inspector or `override_by` (move_unit), its refund settled
    for `amount` (settle_refund). Every check runs before anything is written: a unit outside the
    inspector's scope (NotFound), a move the state machine or the mover's role refuses, a refund
    no longer awaiting inspection (Conflict)."""
    amount = Decimal(str(amount))
    mover = override_by or inspector
    with unit_of_work(session):
        unit = lock_unit(session, unit_id)
        ensure_unit_visible(session, inspector, unit)
        (inspection_id,) = allocate_ids(session, Inspection, 1)
        inspected = record_inspection(inspector, unit, inspection_id, grade=grade, packaging=packaging, answers={},
                                      notes=None)
        moved = move_unit(mover, unit, to_state, reason=f"disposition {to_state}", action="unit.dispositioned")
        refund = lock_refund(session, unit.id)
        assert refund is not None
        hold = hold_reasons(amount=amount, threshold=policy.approval_threshold, refund_action=refund_action,
                            serial_mismatch=False, fraud_flag=fraud_flag, overridden=override_by is not None)
        _after, settled = settle_refund(mover, refund, amount=amount, refund_action=refund_action, hold=hold,
                                        unit_inspected_at=utcnow(), inspected_by_id=inspector.id,
                                        override_by_id=override_by.id if override_by is not None else None,
                                        reason=f"disposition {to_state}")
        # Two writes: one write must not update the unit's row twice (see app.rows.write).
        write(session, inspected)
        write(session, [*moved, *settled])
        expire(session, (ReturnUnit, unit.id))
        return session.get(RefundTrigger, refund.id, populate_existing=True)


def move_direct(session: Session, actor: Actor, unit_id: int, to_state: str, reason: str = "test move") -> None:
    """Move a unit with move_unit in its own transaction, without an idempotency key (setting up states in tests)."""
    with unit_of_work(session):
        unit = lock_unit(session, unit_id)
        write(session, move_unit(actor, unit, to_state, reason=reason))
        expire(session, (ReturnUnit, unit.id))


def last_ledger_states(session: Session) -> dict[int, str]:
    """unit id -> to_state of its newest ledger row."""
    newest = select(LedgerEntry.unit_id, func.max(LedgerEntry.id).label("mid")).group_by(LedgerEntry.unit_id).subquery()
    rows = session.execute(select(LedgerEntry.unit_id, LedgerEntry.to_state).join(newest, LedgerEntry.id == newest.c.mid)).all()
    return {u: s for u, s in rows}


# --- labels: a unit at the dock and a printer for it ------------------------------------


def receive(session: Session, world, product_key: str = "shirt", *, warehouse=None, lpn: str | None = None,  # type: ignore[no-untyped-def]
            grade: str | None = None, packaging: str | None = None, product: Product | None = None) -> ReturnUnit:
    """A unit received at the dock by a worker (move_unit), without a refund trigger, optionally already graded."""
    wh = warehouse if warehouse is not None else world.wh
    dock = world.loc(wh, "dock")
    with unit_of_work(session):
        unit = arriving_unit(session, (product or world.products[product_key]).id, wh.id, lpn)
        write(session, move_unit(world.actor("worker"), unit, "received", reason="received", to_location_id=dock.id,
                                 to_location_warehouse_id=dock.warehouse_id, action="unit.received",
                                 values={"merchant_id": world.merchant.id, "grade": grade, "packaging": packaging}))
        return session.get(ReturnUnit, unit.id)


def add_printer(session: Session, world, port: int, *, warehouse=None, stock: str = "4x6",  # type: ignore[no-untyped-def]
                name: str = "Dock Zebra", host: str = PRINTER_HOST) -> Printer:
    """A printer row, as an admin would have set it up."""
    wh = warehouse if warehouse is not None else world.wh
    with unit_of_work(session):
        printer = Printer(name=name, warehouse_id=wh.id, host=host, port=port, stock=stock, active=True)
        session.add(printer)
    return printer


def add_open_box_variant(session: Session, world) -> Product:  # type: ignore[no-untyped-def]
    """An open-box variant (with its own UPC) of the shirt, which a unit graded not-new sells as."""
    with unit_of_work(session):
        variant = Product(sku="TEE-BLU-M-OB", name="Tee blue M open box", category="apparel",
                          unit_value=Decimal("18.00"), merchant_id=world.merchant.id)
        session.add(variant)
        session.flush()
        session.add(ProductBarcode(code="00012345678905", kind="upc", product_id=variant.id))
        session.get(Product, world.products["shirt"].id).open_box_product_id = variant.id
    return variant


def statements_sent(session: Session, call: Callable[[], object]) -> list[str]:
    """The SQL statements the session's engine sends while `call` runs, in order."""
    seen: list[str] = []
    engine = session.get_bind()

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return seen


def open_exception_now(session: Session, actor: Actor, type_: str, **fields: Any) -> ReturnException:
    """A typed exception opened through its writer (app.exceptions.writer.open_exception, same
    fields), in the session's transaction, returned as an entity: a test's setup."""
    [exception_id] = allocate_ids(session, ReturnException, 1)
    write(session, open_exception(actor, exception_id, type_, **fields))
    exc = session.get(ReturnException, exception_id)
    assert exc is not None
    return exc


def closed_events(session, parcel_id: int, rma_id: int) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """parcel.closed audit entries of the parcel and rma.closed outbox events of its return."""
    session.rollback()
    audits = session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "parcel.closed", AuditEntry.entity_id == parcel_id))
    outbox = session.scalar(select(func.count()).select_from(OutboxEvent).where(
        OutboxEvent.type == "rma.closed", OutboxEvent.aggregate_id == rma_id))
    return audits, outbox


def opened_events(session, rma_id: int) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """Parcels of the return, parcel.opened audit entries and rma.receiving outbox events."""
    from app.receiving.models import Parcel

    session.rollback()
    parcels = session.scalar(select(func.count()).select_from(Parcel).where(Parcel.rma_id == rma_id))
    audits = session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "parcel.opened"))
    outbox = session.scalar(select(func.count()).select_from(OutboxEvent).where(
        OutboxEvent.type == "rma.receiving", OutboxEvent.aggregate_id == rma_id))
    return parcels, audits, outbox
