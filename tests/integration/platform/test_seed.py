"""seed-demo builds a believable, consistent demo through the real services (SQLite and PostgreSQL)."""
from __future__ import annotations

import os
import stat
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.anomalies.models import AnomalyFlag
from app.auth.models import User
from app.admin.services import create_user
from app.auth.roles import SYSTEM
from app.catalog.models import LOCATION_TYPES, Category, Location, PartnerOrg, Product, ProductBarcode, Warehouse
from app.disposition.domain import DEFAULT_RULES
from app.disposition.models import DispositionRule, ReasonCode, RuleSetVersion
from app.exceptions.models import ReturnException
from app.inspection.models import ChecklistVersion
from app.inspection.queries import kit_components
from app.ledger.domain import STATES
from app.ledger.models import AuditEntry, Balance, IdempotencyRecord, LedgerEntry, OutboxEvent, ReturnUnit
from app.ledger.services import balance_table, ledger_sums
from app.db import as_utc, utcnow
from app.orders.models import RMA_STATUSES, CarrierTracking, Customer, Order, OrderLine, Rma, RmaLine, ShippedSerial
from app.receiving.models import Parcel
from app.catalog.domain import normalize_gtin
from app.refunds.models import RefundEvent, RefundTrigger
from app.seed import LOGINS_FILE, SeedError, seed_demo

RECEIVING_EXCEPTIONS = {"unidentified_parcel", "wrong_item", "extra_item", "over_return", "serial_mismatch", "missing_item"}
REFUND_STATUSES = {"awaiting_inspection", "pending_approval", "released", "rejected", "acknowledged"}
SNAPSHOT = (User, Warehouse, Product, Order, Rma, Parcel, ReturnUnit, LedgerEntry, Balance, RefundTrigger, RefundEvent,
            ReturnException, AuditEntry, OutboxEvent, IdempotencyRecord)


def n(session, model, *where) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def grouped(session, column) -> dict:  # type: ignore[no-untyped-def]
    return dict(session.execute(select(column, func.count()).group_by(column)).all())


def snapshot(session) -> dict[str, int]:  # type: ignore[no-untyped-def]
    out = {m.__tablename__: n(session, m) for m in SNAPSHOT}
    session.rollback()
    return out


def test_seed_demo_builds_a_consistent_demo(session, tmp_path):
    """Counts in range, every stage and state present, balances equal the ledger, logins work, rerun is a no-op."""
    started = time.perf_counter()
    logins = seed_demo(session, if_empty=False, instance_path=str(tmp_path))
    elapsed = time.perf_counter() - started
    print(f"\nseed-demo on {session.get_bind().dialect.name}: {elapsed:.1f} s")
    assert elapsed < 60  # the target is well under 20 s; this only catches a pathological slowdown
    session.rollback()

    # Warehouses, the 3PL and its locations.
    warehouses = {w.code: w for w in session.scalars(select(Warehouse))}
    assert set(warehouses) == {"RNO1", "3PL-DAL"}
    assert warehouses["RNO1"].partner_org_id is None
    org = session.get(PartnerOrg, warehouses["3PL-DAL"].partner_org_id)
    assert org is not None and org.name == "FastLane Logistics" and len(org.merchants) == 1
    for wh in warehouses.values():
        types = set(session.scalars(select(Location.type).where(Location.warehouse_id == wh.id)))
        assert types == set(LOCATION_TYPES)
    assert all(b.startswith("LOC:") for b in session.scalars(select(Location.barcode)))

    # Catalogue: ~50 SKUs in three categories, valid GTINs stored as GTIN-14, some aliases, open-box variants.
    products = session.scalars(select(Product)).all()
    assert 45 <= len(products) <= 55
    by_cat = {c: [p for p in products if p.category == c] for c in ("electronics", "apparel", "health_beauty")}
    assert all(len(v) >= 8 for v in by_cat.values())
    assert sum(p.serial_tracked for p in by_cat["electronics"]) >= 12
    assert all(p.lot_tracked for p in by_cat["health_beauty"])
    assert {p.sku.rsplit("-", 1)[1] for p in by_cat["apparel"]} == {"S", "M", "L", "XL"}
    assert all(30 <= p.unit_value <= 1200 for p in by_cat["electronics"])
    assert sum(p.open_box_product_id is not None for p in products) >= 3
    codes = session.scalars(select(ProductBarcode.code)).all()
    assert codes and all(len(c) == 14 and normalize_gtin(c) == c for c in codes)
    aliases = session.execute(select(ProductBarcode.product_id, func.count()).group_by(ProductBarcode.product_id)).all()
    assert {pid for pid, _ in aliases} == {p.id for p in products}
    assert sum(1 for _, k in aliases if k >= 2) >= 3

    # Reference data.
    assert n(session, DispositionRule) == len(DEFAULT_RULES)
    assert session.scalars(select(RuleSetVersion.note)).all() == ["seeded defaults"]
    assert n(session, ReasonCode) == 7
    assert n(session, Category) == 3 and n(session, ChecklistVersion) >= 3
    # The electronics checklist guides the inspection from its newest version: sealed -> grade A, the rest skipped;
    # accessories missing -> 10% off the refund.
    guided = session.scalars(select(ChecklistVersion).where(ChecklistVersion.category == "electronics")
                             .order_by(ChecklistVersion.version.desc()).limit(1)).one()
    assert guided.items[0]["key"] == "seal_intact" and [(r["key"], r["answer"], r["grade"], r["skip"], r["pct"]) for r in guided.rules] == [
        ("seal_intact", True, "A", True, None), ("accessories", False, None, False, "0.1000")]
    # The console's integration pages: made through the admin's use cases, so audited.
    from app.api.models import ApiKey
    from app.labels.models import Printer
    from app.webhooks.models import WebhookEndpoint
    assert sorted(session.scalars(select(ApiKey.name))) == ["Finance ERP (demo)", "Storefront (demo)"]
    assert [(e.url, e.disabled_at is not None) for e in session.scalars(select(WebhookEndpoint))] == [
        ("https://erp.example.com/dockhand/webhooks", True)]
    assert [p.name for p in session.scalars(select(Printer))] == ["Reno dock 1 Zebra"]

    # Orders and shipped serials.
    assert n(session, Order) >= 200 and n(session, Customer) >= 50
    shipped_serial_units = session.scalar(select(func.sum(OrderLine.quantity)).join(Product, Product.id == OrderLine.product_id)
                                          .where(Product.serial_tracked.is_(True)))
    assert n(session, ShippedSerial) == shipped_serial_units

    # RMAs in every stage; units in every state; refunds in every resting status; every receiving exception.
    assert 50 <= n(session, Rma) <= 70
    assert set(grouped(session, Rma.status)) == set(RMA_STATUSES)
    assert n(session, CarrierTracking, CarrierTracking.status == "in_transit") >= 3
    assert set(grouped(session, ReturnUnit.state)) == set(STATES)  # `missing` from the reconciliation below
    from app.reconciliation.models import ReconSnapshot, ReconVariance

    snap = session.scalars(select(ReconSnapshot)).one()
    assert snap.status == "accepted" and snap.summary["roll_forward_holds"]
    assert (snap.summary["over"], snap.summary["short"]) == (1, 1)
    assert session.scalars(select(ReconVariance.resolution).where(ReconVariance.kind == "short")).all() == ["lost_unit"]
    assert set(grouped(session, RefundTrigger.status)) == REFUND_STATUSES
    assert set(grouped(session, ReturnException.type)) >= RECEIVING_EXCEPTIONS
    assert n(session, Parcel, Parcel.status == "open") >= 3
    assert n(session, ReturnUnit) >= 50

    # Consistency: balances are the ledger summed, every unit counted once, governance held.
    assert ledger_sums(session) == balance_table(session)
    assert sum(balance_table(session).values()) == n(session, ReturnUnit)
    assert n(session, RefundTrigger, RefundTrigger.status.in_(("released", "acknowledged")),
             RefundTrigger.inspected_at.is_(None)) == 0
    decided = session.execute(select(RefundTrigger.decided_by_id, RefundTrigger.inspected_by_id, RefundTrigger.override_by_id)
                              .where(RefundTrigger.decided_by_id.is_not(None))).all()
    assert decided and all(d not in (i, o) for d, i, o in decided)  # four eyes

    # A believable history for the dashboard: parcels over the last 90 days, each unit's ledger rows in
    # time order, queues that have aged, and this week's sizing spike on apparel.
    now = utcnow()
    received = [as_utc(t) for t in session.scalars(select(ReturnUnit.received_at))]
    assert min(received) < now - timedelta(days=60) and max(received) <= now
    assert len({t.date() for t in received}) >= 20
    rows = session.execute(select(LedgerEntry.unit_id, LedgerEntry.at).order_by(LedgerEntry.unit_id, LedgerEntry.id)).all()
    for (u1, t1), (u2, t2) in zip(rows, rows[1:]):
        assert u1 != u2 or as_utc(t1) <= as_utc(t2)
    units = session.execute(select(ReturnUnit.received_at, ReturnUnit.inspected_at)
                            .where(ReturnUnit.inspected_at.is_not(None))).all()
    assert all(as_utc(r) <= as_utc(i) for r, i in units)
    quarantined = [as_utc(t) for t in session.scalars(select(ReturnUnit.state_changed_at).where(ReturnUnit.state == "quarantine"))]
    assert any(t < now - timedelta(days=7) for t in quarantined)
    week = session.scalar(select(func.sum(RmaLine.quantity)).join(Rma, Rma.id == RmaLine.rma_id)
                          .where(RmaLine.reason_code == "wrong_size", Rma.created_at >= now - timedelta(days=7)))
    before = session.scalar(select(func.sum(RmaLine.quantity)).join(Rma, Rma.id == RmaLine.rma_id)
                            .where(RmaLine.reason_code == "wrong_size", Rma.created_at < now - timedelta(days=7),
                                   Rma.created_at >= now - timedelta(days=63)))
    assert week >= 3 and week >= 2 * (before or 0) / 8  # a spike against its 8-week baseline
    keys = session.scalars(select(IdempotencyRecord.key)).all()
    assert keys and all(k.startswith("seed-") for k in keys)
    assert n(session, AuditEntry, AuditEntry.actor_name == "Finance ERP") >= 1

    # A kit: the camera with three components; one return inspected with its charger missing (deducted,
    # the return flagged, nothing held for it), one received and waiting with a check per component.
    kit = session.scalars(select(Product).where(Product.sku == "VL-SNAPZ5-KIT")).one()
    assert [(c.name, c.label) for c in kit_components(session, kit.id)] == [
        ("Snap Z5 camera body", "Snap Z5 camera body"), ("Snap 18-55 mm lens", "Snap 18-55 mm lens"),
        ("Voltline 30 W USB-C charger", "Voltline 30 W USB-C charger")]
    kit_units = {u.rma_id: u for u in session.scalars(select(ReturnUnit).where(ReturnUnit.product_id == kit.id))}
    inspected, waiting = (kit_units[session.scalars(select(Rma.id).where(Rma.number == number)).one()]
                          for number in ("RMA-990001", "RMA-990002"))
    assert inspected.grading["missing"] == ["Voltline 30 W USB-C charger"]
    [flag] = session.scalars(select(AnomalyFlag).where(AnomalyFlag.rma_id == inspected.rma_id,
                                                       AnomalyFlag.kind == "missing_component")).all()
    assert (flag.unit_id, flag.holds, flag.cleared_at) == (inspected.id, False, None)
    assert "Voltline 30 W USB-C charger missing from kit VL-SNAPZ5-KIT" in flag.explanation
    assert waiting.state == "received" and waiting.inspected_at is None

    # Second lives: a restocked serial resold and returned again (flagged for information), and a serial
    # of another customer's order received on a return (a possible swap, holding the refund).
    flagged = {f.kind: f for f in session.scalars(select(AnomalyFlag).join(Rma, Rma.id == AnomalyFlag.rma_id)
                                                  .where(Rma.number.in_(("RMA-980001", "RMA-980002"))))}
    assert set(flagged) == {"returned_before", "swap"}
    assert (flagged["returned_before"].holds, flagged["returned_before"].details["resold"]) == (False, True)
    assert flagged["swap"].holds is True and flagged["swap"].details["same_customer"] is False

    # Logins: one per role (two supervisors), each authenticates, kept in a private file.
    assert [(u, r) for u, _, r in logins] == [("worker", "worker"), ("supervisor", "supervisor"),
                                              ("supervisor2", "supervisor"), ("admin", "admin"), ("partner", "partner")]
    for username, password, role in logins:
        user = session.scalars(select(User).where(User.username == username)).one()
        assert user.role == role and user.check_password(password) and not user.check_password(password + "x")
    users = {u.username: u for u in session.scalars(select(User))}
    assert users["partner"].partner_org_id == org.id and users["partner"].home_warehouse_id == warehouses["3PL-DAL"].id
    assert users["worker"].home_warehouse_id == warehouses["RNO1"].id
    assert n(session, Parcel, Parcel.status == "open", Parcel.opened_by_id == users["worker"].id) == 0
    path = tmp_path / LOGINS_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().splitlines() == [f"{u} {p} {r}" for u, p, r in logins]
    session.rollback()

    # Again with --if-empty: nothing changes, the same logins come back; without it, a clear refusal.
    before = snapshot(session)
    assert seed_demo(session, if_empty=True, instance_path=str(tmp_path)) == logins
    with pytest.raises(SeedError, match="already has data"):
        seed_demo(session, if_empty=False, instance_path=str(tmp_path))
    assert snapshot(session) == before


def test_cli_seed_demo_on_a_database_with_users(app, session, tmp_path):
    """--if-empty leaves a used database alone and prints only kept logins that still sign in."""
    create_user(session, SYSTEM, username="boss", role="admin", name="Boss", password="longpassword",
                idempotency_key="k-create-boss")
    (tmp_path / LOGINS_FILE).write_text("worker stale-password worker\nboss longpassword admin\n")
    app.instance_path = str(tmp_path)
    runner = app.test_cli_runner()
    kept = runner.invoke(args=["seed-demo", "--if-empty"])
    assert kept.exit_code == 0, kept.output
    assert "boss" in kept.output and "longpassword" in kept.output and "stale-password" not in kept.output
    refused = runner.invoke(args=["seed-demo"])
    assert refused.exit_code == 1 and "already has data" in refused.output
    assert n(session, Warehouse) == 0 and n(session, User) == 1
