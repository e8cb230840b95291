"""Receiving under concurrency and from the wrong hands (PostgreSQL row locks, partial unique indexes)."""
from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from app.errors import DomainError, ValidationFailed
from app.ledger.models import ReturnUnit
from app.receiving.models import Parcel
from app.receiving.services import ItemReceived, open_parcel, scan_item

_keys = itertools.count(1)


def key() -> str:
    return f"race-key-{next(_keys):06d}"


def _race(session_factory, n, fn):
    barrier = threading.Barrier(n)

    def run(i):
        s = session_factory()
        try:
            barrier.wait(timeout=30)
            return fn(s, i)
        except DomainError as exc:
            return exc
        finally:
            s.close()

    with ThreadPoolExecutor(n) as pool:
        return [f.result(timeout=60) for f in [pool.submit(run, i) for i in range(n)]]


@pytest.mark.pg_only
def test_parallel_scans_fill_a_line_once(session, session_factory, world):
    w = world.actor("worker")
    r = open_parcel(session, w, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=key())
    shirt = world.products["shirt"].id  # the RMA expects 2 shirts; the order bought 2
    results = _race(session_factory, 6, lambda s, i: scan_item(s, w, parcel_id=r.parcel_id, product_id=shirt,
                                                               idempotency_key=f"par-scan-{i:04d}"))
    session.rollback()
    matched = session.scalar(select(func.count()).select_from(ReturnUnit).where(ReturnUnit.rma_line_id.is_not(None)))
    assert matched == 2
    assert sorted(len(x.exceptions) for x in results) == [0, 0, 1, 1, 1, 1]


@pytest.mark.pg_only
def test_a_serial_is_received_once_and_a_return_has_one_open_parcel(session, session_factory, world):
    w = world.actor("worker")
    opened = _race(session_factory, 5, lambda s, i: open_parcel(s, w, code="RMA-5001", warehouse_id=world.wh.id,
                                                                idempotency_key=f"par-open-{i:04d}"))
    assert len({r.parcel_id for r in opened}) == 1
    rid = opened[0].parcel_id
    phone = world.products["phone"].id
    results = _race(session_factory, 6, lambda s, i: scan_item(s, w, parcel_id=rid, product_id=phone, serial="SN-PHONE-0001",
                                                               idempotency_key=f"par-serial-{i:04d}"))
    session.rollback()
    assert sum(isinstance(x, ItemReceived) for x in results) == 1
    assert all("already in the building" in x.message or "same moment" in x.message for x in results if isinstance(x, DomainError))
    assert session.scalar(select(func.count()).select_from(ReturnUnit).where(ReturnUnit.serial == "SN-PHONE-0001")) == 1
    assert session.scalar(select(func.count()).select_from(Parcel)) == 1


@pytest.mark.pg_only
def test_scans_into_two_open_parcels_of_one_return_fill_a_line_once(session, session_factory, world, monkeypatch):
    """A return open in two parcels (its box, and a blind parcel linked to it): scans into each
    queue on the return's row. Each scan waits up to a second after its read for the other to
    read too; with a lock per parcel both read 1 of 2 and both fill the line."""
    import app.receiving.services as receiving
    from app.exceptions.models import ReturnException
    from app.orders.models import RmaLine
    from app.receiving.linking import link_parcel_to_rma

    w, sup = world.actor("worker"), world.actor("super")
    box = open_parcel(session, w, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=key()).parcel_id
    blind = open_parcel(session, w, code="NOLABEL-1", warehouse_id=world.wh.id, idempotency_key=key(), blind=True)
    exc_id = session.scalar(select(ReturnException.id).where(ReturnException.parcel_id == blind.parcel_id))
    link_parcel_to_rma(session, sup, exception_id=exc_id, rma_code="RMA-5001", reason="packing slip",
                       idempotency_key=key())
    shirt = world.products["shirt"].id  # the return expects 2
    scan_item(session, w, parcel_id=box, product_id=shirt, idempotency_key=key())
    session.commit()

    write, together = receiving.write, threading.Barrier(2)

    def after_the_read(s, rows):  # type: ignore[no-untyped-def]
        try:
            together.wait(timeout=1)
        except threading.BrokenBarrierError:
            pass  # the other scan is queued behind this one's lock: go on
        return write(s, rows)

    monkeypatch.setattr(receiving, "write", after_the_read)
    results = _race(session_factory, 2, lambda s, i: scan_item(s, w, parcel_id=(box, blind.parcel_id)[i],
                                                               product_id=shirt, idempotency_key=key()))
    session.rollback()
    line = session.scalars(select(RmaLine).where(RmaLine.rma_id == world.rma.id, RmaLine.product_id == shirt)).one()
    assert session.scalar(select(func.count()).select_from(ReturnUnit).where(ReturnUnit.rma_line_id == line.id)) == 2
    assert sorted(len(r.exceptions) for r in results) == [0, 1]


def test_partner_cannot_receive_goods_of_a_merchant_it_does_not_serve(session, world):
    from decimal import Decimal

    from app.catalog.models import Product

    p = Product(sku="GLX-1", name="Globex gizmo", category="electronics", unit_value=Decimal("10.00"),
                merchant_id=world.other_merchant.id)
    session.add(p)
    session.commit()
    partner = world.actor("partner")
    r = open_parcel(session, partner, code="BLIND-1", warehouse_id=world.wh3pl.id, idempotency_key=key(), blind=True)
    with pytest.raises(ValidationFailed):
        scan_item(session, partner, parcel_id=r.parcel_id, product_id=p.id, idempotency_key=key())
    ok = scan_item(session, partner, parcel_id=r.parcel_id, product_id=world.products["shirt"].id, idempotency_key=key())
    assert ok.lpn.startswith("LP")
