"""The desk's shared scene for a return's page and search."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.db import unit_of_work
from app.ledger.models import ReturnUnit
from app.orders.models import Customer, Rma, RmaLine
from app.receiving.services import open_parcel, scan_item
from tests.integration.desk.test_desk_services import key, serial_mismatch_case


@pytest.fixture
def found(session, world):  # type: ignore[no-untyped-def]
    """The scene of lookup_scene."""
    return lookup_scene(session, world)


def lookup_scene(session, world) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """RMA-5001 at the main DC received through the real flow (a phone with a serial nobody shipped),
    and RMA-7001 at the partner's warehouse (a merchant it serves) with one shirt received by the partner."""
    case = serial_mismatch_case(session, world)
    with unit_of_work(session):
        rma = Rma(number="RMA-7001", order_id=world.order.id, merchant_id=world.merchant.id, channel_id=world.channel.id,
                  warehouse_id=world.wh3pl.id, customer_id=world.customer.id, status="in_transit")
        session.add(rma)
        session.flush()
        session.add(RmaLine(rma_id=rma.id, product_id=world.products["shirt"].id, quantity=1, reason_code="wrong_size",
                            order_line_id=world.extra["order_lines"]["shirt"].id))
        session.add(Customer(external_ref="SO-1001", name="Sam Lookalike"))
        session.add(Customer(external_ref="C-50", name="Percy % Under_score Ltd"))
        rma_id = rma.id
    p = world.actor("partner")
    parcel = open_parcel(session, p, code="RMA-7001", warehouse_id=world.wh3pl.id, idempotency_key=key())
    shirt = scan_item(session, p, parcel_id=parcel.parcel_id, product_id=world.products["shirt"].id, idempotency_key=key())
    lpns = dict(session.execute(select(ReturnUnit.id, ReturnUnit.lpn)).all())
    session.rollback()
    return {"rma": world.rma.id, "rma_3pl": rma_id, "phone": case["unit_id"], "phone_lpn": lpns[case["unit_id"]],
            "shirt": shirt.unit_id, "shirt_lpn": lpns[shirt.unit_id], "customer": world.customer.id,
            "parcel": case["parcel_id"]}
