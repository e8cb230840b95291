"""A hand-built reconciliation: three SKUs at the 3PL's warehouse, a snapshot at T, moves after T
(one of them posted late: the partner counted it before T), and the variance lines worked out by
hand. Then the workflow: a lost unit marked missing, a dear unit's correction waiting for a second
supervisor, resolutions audited and published. SQLite and PostgreSQL."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.db import utcnow
from app.errors import Conflict, FourEyesViolation, IllegalTransition, InvalidItems, NotFound, NotPermitted, ValidationFailed
from app.ledger.models import AuditEntry, OutboxEvent, ReturnUnit
from app.ledger.services import balance_table, ledger_sums, transition_unit
from app.reconciliation import services
from app.reconciliation.models import ReconSnapshot, ReconSnapshotLine, ReconVariance
from tests.helpers import counts, move_direct, new_key, receive_unit
from tests.recon_scenario import MAPPING, SNAPSHOT, THRESHOLD, accepted, build_history, make_source

def lines_of(session, snapshot_id):  # type: ignore[no-untyped-def]
    from app.catalog.models import Product, Warehouse

    rows = session.execute(select(Warehouse.code, Product.sku, ReconVariance.state, ReconVariance.ledger_qty,
                                  ReconVariance.snapshot_qty, ReconVariance.kind, ReconVariance.cause)
                           .join(Warehouse, Warehouse.id == ReconVariance.warehouse_id)
                           .join(Product, Product.id == ReconVariance.product_id)
                           .where(ReconVariance.snapshot_id == snapshot_id)).all()
    session.rollback()
    return sorted(tuple(r) for r in rows)


def test_the_hand_built_scenario_gives_exactly_these_lines(session, world):
    source_id = make_source(session, world)
    t, units = build_history(session, world)
    partner = world.actor("partner")
    kept = services.upload_snapshot(session, partner, source_id=source_id, as_of=t.isoformat(), filename="fl.csv",
                                    content=SNAPSHOT.encode(), idempotency_key=new_key())
    assert (kept.rows, kept.units, kept.guard) == (4, 6, False)
    done = services.accept_snapshot(session, partner, snapshot_id=kept.id, confirm_zero_out=False, idempotency_key=new_key())
    after = "timing: moves posted in Dockhand after T explain it"
    count = "unexplained by the ledger around T: count it"
    unsynced = "timing: the source has not synced moves made just before T"
    # By hand, at T (3PL1, merchant ACME):
    #   shirts: 2 available, 1 received;  snapshot: 3 SELLABLE (the third shelved before T, posted after)
    #   creams: 1 available, 1 quarantine; snapshot: 1 SELLABLE, 0 DAMAGED (the late cream: after T on both sides)
    #   phone:  1 available;               snapshot: 2 SELLABLE
    # Causes: the shirts' two lines are undone by the shelving posted after T (+1 available, -1
    # received); the cream moved into quarantine within the hours before T (+1), which the partner
    # not yet having synced would explain (1 - 1 = 0); nothing around T explains a second phone.
    assert lines_of(session, kept.id) == sorted([
        ("3PL1", "HB-CREAM-50", "available", 1, 1, "match", ""),
        ("3PL1", "HB-CREAM-50", "quarantine", 1, 0, "short", unsynced),
        ("3PL1", "PHN-X1-128", "available", 1, 2, "over", count),
        ("3PL1", "TEE-BLU-M", "available", 2, 3, "over", after),
        ("3PL1", "TEE-BLU-M", "received", 1, 0, "short", after),
    ])
    assert (done.lines, done.match, done.over, done.short, done.units_over, done.units_short) == (5, 1, 2, 2, 2, 2)
    assert (done.value_over, done.value_short) == ("724.00", "65.00")  # 699 + 25 over; 40 + 25 short
    # Roll-forward from the start: 6 received, none moved out, 6 on hand at T; the partner counts 6.
    assert (done.opening, done.received, done.moved_out, done.closing, done.roll_forward_holds) == (0, 6, 0, 6, True)
    assert done.snapshot_on_hand == 6
    # The units behind the short cream line, and the late-posted entry behind the shirt lines.
    line = session.scalars(select(ReconVariance).where(ReconVariance.snapshot_id == kept.id,
                                                       ReconVariance.state == "quarantine")).one()
    assert line.details["units"] == [units["creams"][0].lpn]
    shirt = session.scalars(select(ReconVariance).where(ReconVariance.snapshot_id == kept.id,
                                                        ReconVariance.state == "received")).one()
    assert [(e["lpn"], e["from"], e["to"], e["after_t"]) for e in shirt.details["entries"]][-1] == \
        (units["shirts"][2].lpn, "received", "available", True)
    event = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "reconciliation.completed")).one()
    assert event.payload["short"] == 2 and event.payload["roll_forward_holds"] is True


def test_a_second_snapshot_rolls_forward_from_the_first(session, world):
    source_id = make_source(session, world)
    t, units = build_history(session, world)
    sup = world.actor("super")
    accepted(session, sup, source_id, t)
    move_direct(session, sup, units["creams"][0].id, "disposed")  # out of on-hand after T
    _second, done = accepted(session, sup, source_id, utcnow())
    # opening 6 at T; after T: the late cream received (+1), a cream disposed (-1): 6 at T2.
    assert (done.opening, done.received, done.moved_out, done.closing, done.roll_forward_holds) == (6, 1, 1, 6, True)


@pytest.mark.parametrize("content, line, says", [
    (b"warehouse,sku,bucket,qty\n3PL1,TEE-BLU-M,SELLABLE,1\n", 1, "unknown column 'qty'"),
    (b"warehouse,merchant,sku,bucket,quantity\n3PL1,ACME,NOPE-1,SELLABLE,1\n", 2, "no SKU NOPE-1"),
    (b"warehouse,merchant,sku,bucket,quantity\n3PL1,ACME,TEE-BLU-M,SELLABLE,-4\n", 2, "negative"),
    (b"warehouse,merchant,sku,bucket,quantity\n3PL1,ACME,TEE-BLU-M,SELLABLE,1\n3PL1,ACME,TEE-BLU-M,SELLABLE,2\n", 3,
     "repeats line 2"),
    (b"warehouse,merchant,sku,bucket,quantity\n3PL1,ACME,TEE-BLU-M,SELL\xe9,1\n", 2, "not UTF-8"),
    (b"warehouse,merchant,sku,bucket,quantity\n3PL1,ACME,TEE-BLU-M,ONSHELF,1\n", 2, "no mapping"),
    (b"warehouse,merchant,sku,bucket,quantity\nWH1,ACME,TEE-BLU-M,SELLABLE,1\n", 2, "not a warehouse of this source"),
    (b"warehouse,merchant,sku,bucket,quantity\n3PL1,ACME,TEE-BLU-M,SELLABLE\n", 2, "has 4 cells"),
])
def test_hostile_files_are_refused_by_line_and_keep_nothing(session, world, content, line, says):
    source_id = make_source(session, world)
    before = counts(session)
    with pytest.raises(InvalidItems) as refused:
        services.upload_snapshot(session, world.actor("partner"), source_id=source_id, as_of=utcnow().isoformat(),
                                 filename="bad.csv", content=content, idempotency_key=new_key())
    assert any(e["field"].startswith(f"line {line}") and says in e["message"] for e in refused.value.errors), \
        refused.value.errors
    assert counts(session) == before
    assert session.scalar(select(func.count()).select_from(ReconSnapshot)) == 0
    assert session.scalar(select(func.count()).select_from(ReconSnapshotLine)) == 0


def test_a_file_over_the_limit_is_refused_before_it_is_read(session, world):
    source_id = make_source(session, world)
    big = b"warehouse,merchant,sku,bucket,quantity\n" + b"3PL1,ACME,TEE-BLU-M,SELLABLE,1\n" * 10
    with pytest.raises(ValidationFailed, match="MB"):
        services.upload_snapshot(session, world.actor("super"), source_id=source_id, as_of=utcnow().isoformat(),
                                 filename="big.csv", content=big, max_bytes=100, idempotency_key=new_key())
    assert session.scalar(select(func.count()).select_from(ReconSnapshot)) == 0


def test_partners_reach_only_their_organisations_sources(session, world):
    source_id = make_source(session, world)
    with pytest.raises(NotFound):
        services.upload_snapshot(session, world.actor("outsider"), source_id=source_id, as_of=utcnow().isoformat(),
                                 filename="x.csv", content=SNAPSHOT.encode(), idempotency_key=new_key())
    with pytest.raises(NotPermitted):
        services.upload_snapshot(session, world.actor("worker"), source_id=source_id, as_of=utcnow().isoformat(),
                                 filename="x.csv", content=SNAPSHOT.encode(), idempotency_key=new_key())
    with pytest.raises(NotPermitted):
        services.save_source(session, world.actor("partner"), code="MINE", name="Mine", partner_org_id=world.org.id,
                             mapping=MAPPING, idempotency_key=new_key())


def test_the_zero_out_guard_asks_for_confirmation(session, world):
    source_id = make_source(session, world)
    worker = world.actor("worker")
    for key in ("shirt", "cream", "phone"):
        for _ in range(2):
            receive_unit(session, world, key, worker, warehouse=world.wh3pl)
    from app.catalog.models import Product

    for n in range(3):  # three more items held, so that five of six are zeroed
        p = Product(sku=f"EXTRA-{n}", name=f"Extra {n}", category="apparel", unit_value=Decimal("5"),
                    merchant_id=world.merchant.id)
        session.add(p)
        session.commit()
        world.products[f"extra{n}"] = p
        receive_unit(session, world, f"extra{n}", worker, warehouse=world.wh3pl)
    sup = world.actor("super")
    only_shirts = b"warehouse,merchant,sku,bucket,quantity\n3PL1,ACME,TEE-BLU-M,DOCK,2\n"
    kept = services.upload_snapshot(session, sup, source_id=source_id, as_of=utcnow().isoformat(), filename="s.csv",
                                    content=only_shirts, idempotency_key=new_key())
    assert (kept.zeroed, kept.guard) == (5, True)
    with pytest.raises(Conflict, match="zero them out"):
        services.accept_snapshot(session, sup, snapshot_id=kept.id, confirm_zero_out=False, idempotency_key=new_key())
    assert session.get(ReconSnapshot, kept.id, populate_existing=True).status == "previewed"
    done = services.accept_snapshot(session, sup, snapshot_id=kept.id, confirm_zero_out=True, idempotency_key=new_key())
    assert done.short == 5 and done.match == 1


def test_lost_and_found_go_through_the_ledger_with_four_eyes_above_the_threshold(session, world):
    source_id = make_source(session, world)
    t, units = build_history(session, world)
    sup, sup2 = world.actor("super"), world.actor("super2")
    accepted(session, sup, source_id, t)
    cream_line = session.scalars(select(ReconVariance).where(ReconVariance.state == "quarantine")).one()
    phone_line = session.scalars(select(ReconVariance).where(ReconVariance.kind == "over",
                                                             ReconVariance.cause.like("unexplained%"))).one()
    session.rollback()
    cream, phone = units["creams"][0], units["phone"]
    # A lost unit is resolved only once the ledger says so.
    with pytest.raises(ValidationFailed, match="through the ledger first"):
        services.resolve_variance(session, sup, variance_id=cream_line.id, owner_id=None, resolution="lost_unit",
                                  notes=None, expected_version=None, idempotency_key=new_key())
    for who in ("worker", "partner", "admin"):
        with pytest.raises(NotPermitted):
            services.correct_unit(session, world.actor(who), variance_id=cream_line.id, lpn=cream.lpn, found=False, reason="not found",
                                  threshold=THRESHOLD, idempotency_key=new_key())
    with pytest.raises(ValidationFailed, match="reason"):
        services.correct_unit(session, sup, variance_id=cream_line.id, lpn=cream.lpn, found=False, reason=" ",
                              threshold=THRESHOLD, idempotency_key=new_key())
    # The floor's moves cannot take a unit to missing: only a correction does.
    with pytest.raises(IllegalTransition):
        transition_unit(session, sup, unit_id=cream.id, to_state="missing", reason="gone", idempotency_key=new_key())
    lost = services.correct_unit(session, sup, variance_id=cream_line.id, lpn=cream.lpn, found=False, reason="not on the shelf",
                                 threshold=THRESHOLD, idempotency_key=new_key())
    assert (lost.status, lost.unit_state) == ("applied", "missing")
    done = services.resolve_variance(session, sup, variance_id=cream_line.id, owner_id=world.users["super"].id,
                                     resolution="lost_unit", notes="counted twice", expected_version=1,
                                     idempotency_key=new_key())
    assert done.version == 2
    # The dear phone (699 > 250): the correction waits; its asker may not approve it.
    with pytest.raises(Conflict, match="nothing to find"):
        services.correct_unit(session, sup, variance_id=phone_line.id, lpn=phone.lpn, found=True, reason="seen",
                              threshold=THRESHOLD, idempotency_key=new_key())
    pending = services.correct_unit(session, sup, variance_id=phone_line.id, lpn=phone.lpn, found=False,
                                    reason="partner says 2, one on the shelf: check",
                                    threshold=THRESHOLD, idempotency_key=new_key())
    assert (pending.status, pending.unit_state) == ("pending", "available")
    assert session.get(ReturnUnit, phone.id, populate_existing=True).state == "available"
    with pytest.raises(FourEyesViolation):
        services.decide_correction(session, sup, correction_id=pending.id, approve=True, reason="ok",
                                   idempotency_key=new_key())
    approved = services.decide_correction(session, sup2, correction_id=pending.id, approve=True, reason="checked",
                                          idempotency_key=new_key())
    assert (approved.status, approved.unit_state) == ("applied", "missing")
    # Found again: back from missing to the line's state, again with a second supervisor.
    back = services.correct_unit(session, sup2, variance_id=phone_line.id, lpn=phone.lpn, found=True, reason="found behind rack",
                                 threshold=THRESHOLD, idempotency_key=new_key())
    assert back.status == "pending" and back.to_state == "available"
    key = new_key()
    services.decide_correction(session, sup, correction_id=back.id, approve=True, reason="seen", idempotency_key=key)
    before = counts(session)
    again = services.decide_correction(session, sup, correction_id=back.id, approve=True, reason="seen", idempotency_key=key)
    assert again.replayed and counts(session) == before  # one move back, not two
    assert session.get(ReturnUnit, phone.id, populate_existing=True).state == "available"
    assert ledger_sums(session) == balance_table(session)
    actions = set(session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("recon.%"))))
    assert {"recon.correction_requested", "recon.correction_applied", "recon.variance_resolved"} <= actions
    types = set(session.scalars(select(OutboxEvent.type)))
    assert {"reconciliation.variance_resolved", "reconciliation.unit_corrected", "unit.state_changed"} <= types


def test_each_mutation_has_one_effect_under_a_retried_key(session, world):
    key = new_key()
    saved = [services.save_source(session, world.actor("super"), code="TWICE", name="Twice", partner_org_id=None,
                                  mapping=MAPPING, idempotency_key=key) for _ in range(2)]
    assert saved[1].replayed and saved[1].id == saved[0].id
    assert session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "recon.source_saved")) == 1
    source_id = make_source(session, world)
    t, units = build_history(session, world)
    sup = world.actor("super")
    key = new_key()
    first = services.upload_snapshot(session, sup, source_id=source_id, as_of=t.isoformat(), filename="fl.csv",
                                     content=SNAPSHOT.encode(), idempotency_key=key)
    again = services.upload_snapshot(session, sup, source_id=source_id, as_of=t.isoformat(), filename="fl.csv",
                                     content=SNAPSHOT.encode(), idempotency_key=key)
    assert again.replayed and again.id == first.id
    assert session.scalar(select(func.count()).select_from(ReconSnapshot)) == 1
    key = new_key()
    done = services.accept_snapshot(session, sup, snapshot_id=first.id, confirm_zero_out=False, idempotency_key=key)
    before = counts(session)
    replay = services.accept_snapshot(session, sup, snapshot_id=first.id, confirm_zero_out=False, idempotency_key=key)
    assert replay.replayed and replay.short == done.short and counts(session) == before
    line = session.scalars(select(ReconVariance).where(ReconVariance.state == "quarantine")).one()
    session.rollback()
    key = new_key()
    services.correct_unit(session, sup, variance_id=line.id, lpn=units["creams"][0].lpn, found=False, reason="gone",
                          threshold=THRESHOLD, idempotency_key=key)
    before = counts(session)
    services.correct_unit(session, sup, variance_id=line.id, lpn=units["creams"][0].lpn, found=False, reason="gone",
                          threshold=THRESHOLD, idempotency_key=key)
    assert counts(session) == before
    key = new_key()
    services.resolve_variance(session, sup, variance_id=line.id, owner_id=None, resolution="lost_unit", notes="x",
                              expected_version=1, idempotency_key=key)
    before = counts(session)
    services.resolve_variance(session, sup, variance_id=line.id, owner_id=None, resolution="lost_unit", notes="x",
                              expected_version=1, idempotency_key=key)
    assert counts(session) == before


def test_the_consoles_stored_threshold_wins_over_the_environments(session, world):
    from app.settings.models import RefundThreshold

    source_id = make_source(session, world)
    t, units = build_history(session, world)
    sup = world.actor("super")
    accepted(session, sup, source_id, t)
    session.add(RefundThreshold(scope="all", amount=Decimal("30.00")))
    session.commit()
    line = session.scalars(select(ReconVariance).where(ReconVariance.state == "quarantine")).one()
    session.rollback()
    held = services.correct_unit(session, sup, variance_id=line.id, lpn=units["creams"][0].lpn, found=False,
                                 reason="gone", threshold=THRESHOLD, idempotency_key=new_key())
    assert held.status == "pending"  # the cream (40.00) is above the stored 30.00, below the environment's 250


def test_only_the_states_a_source_counts_are_compared(session, world):
    worker, sup = world.actor("worker"), world.actor("super")
    gone, _kept = (receive_unit(session, world, "shirt", worker, warehouse=world.wh3pl) for _ in range(2))
    move_direct(session, worker, gone.id, "disposed")
    t = utcnow()
    snapshot = "warehouse,merchant,sku,bucket,quantity\n3PL1,ACME,TEE-BLU-M,DOCK,1\n"
    no_scrap = services.save_source(session, sup, code="NOSCRAP", name="Counts no scrap", partner_org_id=world.org.id,
                                    mapping="DOCK = received", idempotency_key=new_key())
    _kept_snap, done = accepted(session, sup, no_scrap.id, t, snapshot)
    assert (done.lines, done.match, done.short) == (1, 1, 0)  # the disposed shirt is not this source's to count
    _kept_snap, done = accepted(session, sup, make_source(session, world), t, snapshot)
    assert (done.lines, done.match, done.short) == (2, 1, 1)  # this one maps SCRAP: it should have counted it
