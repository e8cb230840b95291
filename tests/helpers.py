"""Shared helpers for the ledger / refund / scoping integration tests."""
from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from decimal import Decimal

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.auth.scoping import ensure_unit_visible
from app.db import unit_of_work, utcnow
from app.catalog.models import Product, ProductBarcode
from app.labels.models import Printer
from app.ledger.models import AuditEntry, Balance, IdempotencyRecord, LedgerEntry, OutboxEvent, ReturnUnit
from app.ledger.services import apply_transition, format_lpn, lock_unit, next_number
from app.refunds.domain import hold_reasons
from app.refunds.models import RefundEvent, RefundTrigger
from app.refunds.services import RefundPolicy, open_refund, refund_for_unit, settle_after_inspection

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


def receive_unit(session: Session, world, product_key: str, actor: Actor, *, warehouse=None,  # type: ignore[no-untyped-def]
                 merchant=..., paid_price: Decimal | str | None = None, with_refund: bool = True) -> ReturnUnit:
    """A new unit taken None -> received at the dock, with its refund trigger (one transaction)."""
    wh = warehouse if warehouse is not None else world.wh
    merchant_id = world.merchant.id if merchant is ... else (merchant.id if merchant is not None else None)
    product = world.products[product_key]
    with unit_of_work(session):
        unit = ReturnUnit(lpn=new_lpn(session), product_id=product.id, warehouse_id=wh.id, merchant_id=merchant_id,
                          paid_price=Decimal(str(paid_price)) if paid_price is not None else product.unit_value)
        apply_transition(session, actor, unit, "received", reason="received at dock", to_location=world.loc(wh, "dock"))
        if with_refund:
            open_refund(session, actor, unit)
    return unit


def inspect_and_dispose(session: Session, inspector: Actor, unit_id: int, to_state: str, *, amount: Decimal | str,
                        refund_action: str = "full", override_by: Actor | None = None, fraud_flag: bool = False,
                        policy: RefundPolicy = RefundPolicy()) -> RefundTrigger:
    """What the inspection step does: record the inspection, move the unit, settle its refund, in one transaction."""
    amount = Decimal(str(amount))
    with unit_of_work(session):
        unit = lock_unit(session, unit_id)
        ensure_unit_visible(session, inspector, unit)
        unit.inspected_at = utcnow()
        unit.inspected_by_id = inspector.id
        mover = override_by or inspector
        apply_transition(session, mover, unit, to_state, reason=f"disposition {to_state}", action="unit.dispositioned")
        refund = refund_for_unit(session, unit.id, lock=True)
        assert refund is not None
        hold = hold_reasons(amount=amount, threshold=policy.approval_threshold, refund_action=refund_action,
                            serial_mismatch=False, fraud_flag=fraud_flag, overridden=override_by is not None)
        settle_after_inspection(session, mover, refund, amount=amount, refund_action=refund_action, hold=hold,
                                inspected_by_id=inspector.id,
                                override_by_id=override_by.id if override_by is not None else None,
                                reason=f"disposition {to_state}")
    return refund


def move_direct(session: Session, actor: Actor, unit_id: int, to_state: str, reason: str = "test move") -> None:
    """Move a unit with apply_transition in its own transaction (setting up states in tests)."""
    with unit_of_work(session):
        unit = lock_unit(session, unit_id)
        apply_transition(session, actor, unit, to_state, reason=reason)


def last_ledger_states(session: Session) -> dict[int, str]:
    """unit id -> to_state of its newest ledger row."""
    newest = select(LedgerEntry.unit_id, func.max(LedgerEntry.id).label("mid")).group_by(LedgerEntry.unit_id).subquery()
    rows = session.execute(select(LedgerEntry.unit_id, LedgerEntry.to_state).join(newest, LedgerEntry.id == newest.c.mid)).all()
    return {u: s for u, s in rows}


# --- labels: a unit at the dock and a printer for it ------------------------------------


def receive(session: Session, world, product_key: str = "shirt", *, warehouse=None, lpn: str | None = None,  # type: ignore[no-untyped-def]
            grade: str | None = None, packaging: str | None = None, product: Product | None = None) -> ReturnUnit:
    """A unit received at the dock (the ledger's own path), optionally already graded."""
    wh = warehouse if warehouse is not None else world.wh
    with unit_of_work(session):
        unit = ReturnUnit(lpn=lpn or new_lpn(session), product_id=(product or world.products[product_key]).id,
                          warehouse_id=wh.id, merchant_id=world.merchant.id, grade=grade, packaging=packaging)
        apply_transition(session, world.actor("worker"), unit, "received", reason="received",
                         to_location=world.loc(wh, "dock"))
    return unit


def add_printer(session: Session, world, port: int, *, warehouse=None, stock: str = "4x6",  # type: ignore[no-untyped-def]
                name: str = "Dock Zebra") -> Printer:
    """A printer row, as an admin would have set it up."""
    wh = warehouse if warehouse is not None else world.wh
    with unit_of_work(session):
        printer = Printer(name=name, warehouse_id=wh.id, host="127.0.0.1", port=port, stock=stock, active=True)
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
