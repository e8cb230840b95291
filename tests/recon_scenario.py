"""The reconciliation scenario the tests share: a source for the 3PL's organisation, a ledger
history at its warehouse around a time T, and the partner's snapshot at T (worked out by hand in
tests/integration/reconciliation/test_scenario.py)."""
from __future__ import annotations

import time
from decimal import Decimal

from app.db import utcnow
from app.reconciliation import services
from tests.helpers import move_direct, new_key, receive_unit

MAPPING = "SELLABLE = available\nDAMAGED = quarantine\nDOCK = received\nSCRAP = disposed"
THRESHOLD = Decimal("250.00")


def make_source(session, world, org=True) -> int:  # type: ignore[no-untyped-def]
    return services.save_source(session, world.actor("super"), code="FASTLANE", name="FastLane WMS",
                                partner_org_id=world.org.id if org else None, mapping=MAPPING,
                                idempotency_key=new_key()).id


def build_history(session, world, gap: float = 0.0):  # type: ignore[no-untyped-def]
    """The ledger of the scenario; returns T and the units by name. With `gap` (seconds, at least
    1), T is a whole second with `gap` on each side, for a form that takes seconds only."""
    worker = world.actor("worker")
    at = {"warehouse": world.wh3pl}
    shirts = [receive_unit(session, world, "shirt", worker, **at) for _ in range(3)]
    creams = [receive_unit(session, world, "cream", worker, **at) for _ in range(2)]
    phone = receive_unit(session, world, "phone", worker, **at)
    for u in shirts[:2]:
        move_direct(session, worker, u.id, "available")
    move_direct(session, worker, creams[0].id, "quarantine")
    move_direct(session, worker, creams[1].id, "available")
    move_direct(session, worker, phone.id, "available")
    if gap:
        time.sleep(gap)
    t = utcnow().replace(microsecond=0) if gap else utcnow()
    if gap:
        time.sleep(gap)
    # After T: the third shirt shelved (the partner had shelved it before T: posted late), and a
    # cream received and shelved (after T on both sides: no variance, though today's balance differs).
    move_direct(session, worker, shirts[2].id, "available")
    late_cream = receive_unit(session, world, "cream", worker, **at)
    move_direct(session, worker, late_cream.id, "available")
    return t, {"shirts": shirts, "creams": creams, "phone": phone}


SNAPSHOT = ("warehouse,merchant,sku,bucket,quantity\n"
            "3PL1,ACME,TEE-BLU-M,SELLABLE,3\n"
            "3PL1,ACME,HB-CREAM-50,SELLABLE,1\n"
            "3PL1,ACME,HB-CREAM-50,DAMAGED,0\n"
            "3PL1,ACME,PHN-X1-128,SELLABLE,2\n")


def accepted(session, actor, source_id: int, t, content: str = SNAPSHOT):  # type: ignore[no-untyped-def]
    """The snapshot uploaded as of `t` and accepted by `actor`: (what the upload kept, the comparison)."""
    kept = services.upload_snapshot(session, actor, source_id=source_id, as_of=t.isoformat(), filename="fl.csv",
                                    content=content.encode(), idempotency_key=new_key())
    return kept, services.accept_snapshot(session, actor, snapshot_id=kept.id, confirm_zero_out=False,
                                          idempotency_key=new_key())
