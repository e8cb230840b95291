"""A return open in two parcels (its box, and a blind parcel a supervisor linked to it): locks in one
order, closes that leave the other parcel's items alone, one way of counting a line."""
from __future__ import annotations

import itertools
import threading
import time
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from app.catalog.models import Product
from app.exceptions import services as es
from app.exceptions.models import ReturnException
from app.ledger.idempotency import Result
from app.orders.models import Rma, RmaLine
from app.receiving import linking
from app.receiving.queries import card_lines
from app.receiving.services import ItemReceived, ParcelProgress, close_parcel, open_parcel, scan_item

_keys = itertools.count(1)


def key() -> str:
    return f"two-parcels-{next(_keys):06d}"


def _link(session, world, blind_parcel_id: int) -> None:  # type: ignore[no-untyped-def]
    exc_id = session.scalar(select(ReturnException.id).where(ReturnException.parcel_id == blind_parcel_id,
                                                             ReturnException.type == "unidentified_parcel"))
    linking.link_parcel_to_rma(session, world.actor("super"), exception_id=exc_id, rma_code="RMA-5001",
                               reason="packing slip found", idempotency_key=key())


def _lock_waiters(session_factory, n: int, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    """Wait until n sessions wait on a lock (pg_stat_activity)."""
    s = session_factory()
    try:
        end = time.time() + timeout
        while time.time() < end:
            waiting = s.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")).scalar()
            s.rollback()
            if waiting >= n:
                return True
            time.sleep(0.05)
        return False
    finally:
        s.close()


def _in_thread(session_factory, fn, out: dict, name: str) -> threading.Thread:  # type: ignore[no-untyped-def]
    def run() -> None:
        s = session_factory()
        try:
            out[name] = fn(s)
        except Exception as exc:  # noqa: BLE001 - the test looks at what came back
            out[name] = exc
        finally:
            s.close()

    t = threading.Thread(target=run)
    t.start()
    return t


@pytest.mark.pg_only
@pytest.mark.parametrize("other", ["open_the_box", "close_the_parcel"])
def test_a_blind_parcel_linked_while_a_scan_waits_for_it_does_not_deadlock(session, session_factory, world, other):
    """The link holds the blind parcel and the return. A scan into the parcel queues behind it (it
    could not tell the parcel had a return), and so does a worker opening the return's box, or
    closing the parcel. With the parcel held while waiting for the return, two of them deadlock."""
    w = world.actor("worker")
    blind = open_parcel(session, w, code="NOLABEL-9", warehouse_id=world.wh.id, idempotency_key=key(), blind=True)
    parcel, rma_id = blind.parcel_id, world.rma.id
    session.commit()
    link = session_factory()  # the link, half-way: parcel locked, then the return, rma_id set
    link.execute(text("SELECT id FROM receipts WHERE id = :p FOR UPDATE"), {"p": parcel})
    link.execute(text("SELECT id FROM rmas WHERE id = :r FOR UPDATE"), {"r": rma_id})
    link.execute(text("UPDATE receipts SET rma_id = :r WHERE id = :p"), {"r": rma_id, "p": parcel})
    out: dict = {}
    shirt = world.products["shirt"].id
    scan = _in_thread(session_factory, lambda s: scan_item(s, w, parcel_id=parcel, product_id=shirt,
                                                          idempotency_key=key()), out, "scan")
    assert _lock_waiters(session_factory, 1)
    if other == "open_the_box":
        second = _in_thread(session_factory, lambda s: open_parcel(s, world.actor("worker2"), code="RMA-5001",
                                                                   warehouse_id=world.wh.id, idempotency_key=key()),
                            out, "other")
    else:
        second = _in_thread(session_factory, lambda s: close_parcel(s, w, parcel_id=parcel, idempotency_key=key()),
                            out, "other")
    assert _lock_waiters(session_factory, 2)
    link.commit()
    link.close()
    scan.join(30)
    second.join(30)
    assert not any("deadlock" in repr(v).lower() for v in out.values()), out
    assert isinstance(out["other"], Result), out
    if other == "close_the_parcel" and not isinstance(out["scan"], ItemReceived):
        # the close won the race for the return: the scan is refused, clearly, and writes nothing
        assert "already closed" in str(out["scan"]), out
    else:
        assert isinstance(out["scan"], ItemReceived) and out["scan"].rma_line_id is not None, out


@pytest.mark.pg_only
def test_the_link_decides_on_the_return_as_it_is_once_locked(session, session_factory, world, monkeypatch):
    """A closed blind parcel is linked while a worker opens the return's box: the link must see the
    return as being received, and neither close it nor call its items missing."""
    w = world.actor("worker")
    blind = open_parcel(session, w, code="NOLABEL-8", warehouse_id=world.wh.id, idempotency_key=key(), blind=True)
    scan_item(session, w, parcel_id=blind.parcel_id, product_id=world.products["shirt"].id, idempotency_key=key())
    close_parcel(session, w, parcel_id=blind.parcel_id, idempotency_key=key())
    session.commit()
    find = linking.find_return

    def found_then_the_box_is_opened(s, actor, code):  # type: ignore[no-untyped-def]
        rma = find(s, actor, code)
        other = session_factory()
        open_parcel(other, w, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=key())
        other.close()
        return rma

    monkeypatch.setattr(linking, "find_return", found_then_the_box_is_opened)
    linker = session_factory()
    _link(linker, world, blind.parcel_id)
    linker.close()
    session.expire_all()
    assert session.get(Rma, world.rma.id).status == "receiving"
    assert session.scalars(select(ReturnException).where(ReturnException.type == "missing_item")).all() == []


def test_closing_one_parcel_of_a_return_leaves_the_other_parcels_items_alone(session, world):
    """The box is closed while the linked blind parcel is still open: nothing is missing yet and the
    return stays open; the shirt scanned into the other parcel then fills its line. The last close counts."""
    w = world.actor("worker")
    box = open_parcel(session, w, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=key()).parcel_id
    blind = open_parcel(session, w, code="NOLABEL-7", warehouse_id=world.wh.id, idempotency_key=key(), blind=True)
    _link(session, world, blind.parcel_id)
    shirt, phone = world.products["shirt"].id, world.products["phone"].id
    scan_item(session, w, parcel_id=box, product_id=shirt, idempotency_key=key())
    scan_item(session, w, parcel_id=box, product_id=phone, serial="SN-PHONE-0001", idempotency_key=key())
    first = close_parcel(session, w, parcel_id=box, idempotency_key=key())
    assert first.missing == () and first.return_still_open is True
    assert session.get(Rma, world.rma.id).status == "receiving"
    late = scan_item(session, w, parcel_id=blind.parcel_id, product_id=shirt, idempotency_key=key())
    assert late.rma_line_id is not None and late.exceptions == ()
    last = close_parcel(session, w, parcel_id=blind.parcel_id, idempotency_key=key())
    assert last.missing == () and last.return_still_open is False
    session.expire_all()
    assert session.get(Rma, world.rma.id).status == "closed"


def test_a_line_is_counted_the_same_by_the_scan_the_card_and_the_close(session, world):
    """A wrong item a supervisor accepted onto the shirt line fills it: the next shirt is an extra
    item (held for approval), the card and the close say 2/2, the parcel 2 of 3."""
    w = world.actor("worker")
    sock = Product(sku="SOCK-1", name="Sock", category="apparel", unit_value=Decimal("5.00"), merchant_id=world.merchant.id)
    session.add(sock)
    session.commit()
    box = open_parcel(session, w, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=key()).parcel_id
    shirt = world.products["shirt"].id
    scan_item(session, w, parcel_id=box, product_id=shirt, idempotency_key=key())
    wrong = scan_item(session, w, parcel_id=box, product_id=sock.id, idempotency_key=key())
    exc_id = session.scalar(select(ReturnException.id).where(ReturnException.unit_id == wrong.unit_id,
                                                             ReturnException.type == "wrong_item"))
    line = session.scalars(select(RmaLine).where(RmaLine.rma_id == world.rma.id, RmaLine.product_id == shirt)).one()
    es.accept_wrong_item(session, world.actor("super"), exception_id=exc_id, reason="customer sent a sock instead",
                         idempotency_key=key(), credit_amount="20", rma_line_id=line.id)
    third = scan_item(session, w, parcel_id=box, product_id=shirt, idempotency_key=key())
    card = {row.id: (expected, got) for row, expected, got in card_lines(session, world.rma.id)}
    assert third.exceptions == ("extra_item",) and third.line is None
    assert card[line.id] == (2, 2)
    assert third.parcel == ParcelProgress(got=2, expected=3)


def test_the_card_shows_an_order_lines_shipped_serials_once_per_line(session, world):
    """Two lines of one return on the same order line (the phone, for two reasons): each shows the
    serials shipped on it once."""
    phone_line = world.extra["order_lines"]["phone"]
    session.add(RmaLine(rma_id=world.rma.id, product_id=world.products["phone"].id, order_line_id=phone_line.id,
                        quantity=1, reason_code="changed_mind"))
    session.commit()
    lines = card_lines(session, world.rma.id)
    phones = [line for line, _, _ in lines if line.sku == world.products["phone"].sku]
    assert [line.serials for line in phones] == [("SN-PHONE-0001",), ("SN-PHONE-0001",)]
    assert [line.serials for line, _, _ in lines if line.sku != world.products["phone"].sku] == [()]
