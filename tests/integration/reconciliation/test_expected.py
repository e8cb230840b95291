"""Expected against received, by hand: one return in each of the returns' buckets, units received
long ago and not inspected, and one received at another warehouse than its return names."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import update

from app.db import utcnow
from app.ledger.models import ReturnUnit
from app.orders.models import CarrierTracking, Rma, RmaLine
from app.reconciliation.queries import expected_rows, expected_vs_received
from tests.helpers import receive_unit


def test_each_bucket_counts_and_values_what_it_says(session, world):
    w = world
    rmas = {}
    for number, status in (("RMA-A1", "authorized"), ("RMA-D1", "in_transit")):
        rma = Rma(number=number, merchant_id=w.merchant.id, channel_id=w.channel.id, warehouse_id=w.wh.id, status=status)
        session.add(rma)
        session.flush()
        session.add(RmaLine(rma_id=rma.id, product_id=w.products["cream"].id, quantity=2, reason_code="defective"))
        rmas[number] = rma
    session.add(CarrierTracking(tracking_number="1ZDELIVERED01", carrier="UPS", rma_id=rmas["RMA-D1"].id, status="delivered"))
    session.commit()
    old = receive_unit(session, w, "shirt", w.actor("worker"), paid_price="20.00")
    fresh = receive_unit(session, w, "shirt", w.actor("worker"))
    astray = receive_unit(session, w, "phone", w.actor("worker"), warehouse=w.wh3pl, paid_price="649.00")
    session.execute(update(ReturnUnit).where(ReturnUnit.id == old.id).values(received_at=utcnow() - timedelta(hours=50)))
    session.execute(update(ReturnUnit).where(ReturnUnit.id == astray.id).values(rma_id=w.rma.id))
    session.commit()
    now = utcnow()
    got = {b.code: (b.count, b.value) for b in expected_vs_received(session, w.actor("super"), now, 48)}
    # The world's RMA-5001 (phone 699 + 2 shirts 25) is in transit; RMA-A1 has no tracking; RMA-D1 is
    # delivered (2 creams at 40); the old shirt waits 50 h (paid 20); the phone of RMA-5001 (a WH1
    # return) was received at 3PL1.
    assert got == {"authorised": (1, Decimal("80.00")), "in_transit": (1, Decimal("749.00")),
                   "at_dock": (1, Decimal("80.00")), "not_inspected": (1, Decimal("20.00")),
                   "wrong_warehouse": (1, Decimal("649.00"))}
    assert [r[1] for r in expected_rows(session, w.actor("super"), "not_inspected", now, 48)] == [old.lpn]
    assert fresh.lpn not in [r[1] for r in expected_rows(session, w.actor("super"), "not_inspected", now + timedelta(hours=2), 3)]
    assert len(expected_rows(session, w.actor("super"), "not_inspected", now + timedelta(hours=2), 1)) == 3
    partner = {b.code: b.count for b in expected_vs_received(session, w.actor("partner"), now, 48)}
    assert partner == {"authorised": 0, "in_transit": 0, "at_dock": 0, "not_inspected": 0, "wrong_warehouse": 1}
