"""Property test: for random ledger histories (units received at two warehouses for three
merchants, moved along the state machine, marked missing and found), the balance at any time T
computed from the ledger (app.reconciliation.queries.balance_at) equals replaying the operations
made up to T, per warehouse, merchant, SKU and state; and so do the units behind it (units_at)."""
from __future__ import annotations

import uuid
from collections import Counter
from decimal import Decimal

from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from app.catalog.models import Product
from app.db import unit_of_work, utcnow
from app.ledger.services import lock_unit
from app.ledger.writer import move_unit
from app.reconciliation.queries import balance_at, units_at
from app.rows import expire, write
from app.ledger.models import ReturnUnit
from tests.helpers import move_direct, receive_unit

# From product.md, not from app.ledger.domain: the moves a supervisor may make, and `missing` and back.
MOVES = {
    "received": ["available", "quarantine", "refurbish", "vendor_return", "liquidation", "disposed"],
    "quarantine": ["available", "refurbish", "vendor_return", "liquidation", "disposed"],
    "refurbish": ["available", "liquidation", "disposed", "quarantine"],
    "available": ["quarantine"],
}
ON_HAND = ["received", "available", "quarantine", "refurbish"]


@settings(max_examples=20, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_balance_at_t_equals_replaying_the_operations_up_to_t(session, world, data):
    tag = uuid.uuid4().hex[:8]
    with unit_of_work(session):
        for name in ("a", "b", "c"):
            product = Product(sku=f"BT-{tag}-{name}", name=name, category="apparel", unit_value=Decimal("10"),
                              merchant_id=world.merchant.id)
            session.add(product)
            world.products[f"{tag}-{name}"] = product
    mine = {world.products[f"{tag}-{n}"].id for n in "abc"}
    sup, worker = world.actor("super"), world.actor("worker")
    warehouses = {"wh": world.wh, "wh3pl": world.wh3pl}
    merchants = {"acme": world.merchant, "globex": world.other_merchant, None: None}
    units: dict[int, list] = {}  # unit id -> [warehouse id, merchant id, product id, state, lpn]
    checkpoints: list[tuple] = []

    def replayed() -> tuple[Counter, dict]:
        counted = Counter((w, m, p, s) for w, m, p, s, _ in units.values())
        lpns: dict = {}
        for w, m, p, s, lpn in units.values():
            lpns.setdefault((w, m, p, s), []).append(lpn)
        return counted, {k: sorted(v) for k, v in lpns.items()}

    for _ in range(data.draw(st.integers(3, 30), label="steps")):
        kind = data.draw(st.sampled_from(["receive"] * 3 + ["move"] * 3 + ["lose", "find", "checkpoint"]), label="kind")
        movable = [u for u, v in units.items() if v[3] in MOVES]
        if kind == "receive" or (kind == "move" and not movable):
            name = data.draw(st.sampled_from("abc"), label="sku")
            wh = warehouses[data.draw(st.sampled_from(list(warehouses)), label="wh")]
            merchant = merchants[data.draw(st.sampled_from(list(merchants)), label="merchant")]
            unit = receive_unit(session, world, f"{tag}-{name}", worker, warehouse=wh, merchant=merchant, with_refund=False)
            # A unit without a merchant counts as its SKU's merchant's (all three SKUs are Acme's).
            units[unit.id] = [wh.id, merchant.id if merchant else world.merchant.id, unit.product_id, "received", unit.lpn]
        elif kind == "move":
            uid = data.draw(st.sampled_from(sorted(movable)), label="unit")
            to_state = data.draw(st.sampled_from(MOVES[units[uid][3]]), label="to")
            move_direct(session, sup, uid, to_state)
            units[uid][3] = to_state
        elif kind in ("lose", "find"):
            pool = sorted(u for u, v in units.items() if (v[3] in ON_HAND) == (kind == "lose") and v[3] in ON_HAND + ["missing"])
            if not pool:
                continue
            uid = data.draw(st.sampled_from(pool), label="unit")
            to_state = "missing" if kind == "lose" else data.draw(st.sampled_from(ON_HAND), label="found_to")
            with unit_of_work(session):
                write(session, move_unit(sup, lock_unit(session, uid), to_state, reason=kind, correction=True))
                expire(session, (ReturnUnit, uid))
            units[uid][3] = to_state
        else:
            checkpoints.append((utcnow(), *replayed()))
        note(f"{kind}: {len(units)} units")
    checkpoints.append((utcnow(), *replayed()))
    ids = [world.wh.id, world.wh3pl.id]
    for t, counted, lpns in checkpoints:
        got = {k: v for k, v in balance_at(session, t, ids).items() if k[2] in mine}
        assert got == dict(counted), (t, got, counted)
        behind = units_at(session, t, ids, mine)
        assert {k: sorted(v) for k, v in behind.items()} == lpns
    session.rollback()
