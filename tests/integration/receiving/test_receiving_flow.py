"""The main job through the services: parcel -> items -> inspection -> disposition -> refund."""
import io
from decimal import Decimal

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.catalog.models import ProductBarcode
from app.errors import ValidationFailed
from app.exceptions.models import ReturnException
from app.inspection.services import add_photo, record_inspection
from app.inspection.storage import FolderStore
from app.ledger.models import ReturnUnit
from app.ledger.services import balance_table, ledger_sums
from app.receiving.queries import resolve_scan
from app.receiving.services import Missing, close_parcel, open_parcel, scan_item
from app.disposition.services import confirm_disposition
from app.refunds.models import RefundTrigger
from app.refunds.services import RefundPolicy

POLICY = RefundPolicy(Decimal("250.00"))
_n = iter(range(1, 10**6))


def key() -> str:
    return f"test-key-{next(_n):06d}"


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


def test_happy_path(session, world, tmp_path):
    w = world.actor("worker")
    r = open_parcel(session, w, code=world.tracking.tracking_number, warehouse_id=world.wh.id, idempotency_key=key())
    assert r.rma_id == world.rma.id and not r.blind
    scan = resolve_scan(session, w, "036000291452")
    assert scan.kind == "product" and scan.product_id == world.products["shirt"].id
    shirt = scan_item(session, w, parcel_id=r.parcel_id, product_id=scan.product_id, idempotency_key=key())
    assert shirt.exceptions == () and shirt.lpn.startswith("LP")
    gs1 = resolve_scan(session, w, "(01)00614141999996(21)SN-PHONE-0001")
    phone = scan_item(session, w, parcel_id=r.parcel_id, product_id=gs1.product_id, serial=gs1.serial, idempotency_key=key())
    assert phone.serial_status == "match"
    record_inspection(session, w, unit_id=shirt.unit_id, grade="A", packaging="sealed", answers={"tags_attached": True},
                      notes=None, idempotency_key=key())
    add_photo(session, w, unit_id=shirt.unit_id, data=jpeg(), store=FolderStore(tmp_path), max_bytes=10**7, idempotency_key=key())
    done = confirm_disposition(session, w, unit_id=shirt.unit_id, idempotency_key=key(), policy=POLICY)
    assert done.state == "available" and done.refund_status == "released"
    closed = close_parcel(session, w, parcel_id=r.parcel_id, idempotency_key=key())
    assert closed.missing == (Missing("TEE-BLU-M", 1),)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ReturnException).where(ReturnException.type == "missing_item")) == 1
    assert ledger_sums(session) == balance_table(session)


def test_serial_mismatch_quarantines_and_holds(session, world):
    w = world.actor("worker")
    r = open_parcel(session, w, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=key())
    with pytest.raises(ValidationFailed):
        scan_item(session, w, parcel_id=r.parcel_id, product_id=world.products["phone"].id, idempotency_key=key())
    phone = scan_item(session, w, parcel_id=r.parcel_id, product_id=world.products["phone"].id, serial="SN-OTHER",
                      idempotency_key=key())
    assert phone.serial_status == "mismatch" and "serial_mismatch" in phone.exceptions
    record_inspection(session, w, unit_id=phone.unit_id, grade="A", packaging="opened", answers={}, notes="",
                      idempotency_key=key())
    done = confirm_disposition(session, w, unit_id=phone.unit_id, idempotency_key=key(), policy=POLICY)
    assert done.state == "quarantine" and done.refund_status == "pending_approval"
    assert "serial mismatch" in done.explanation


def test_unknown_parcel_blind_parcel(session, world):
    w = world.actor("worker")
    with pytest.raises(ValidationFailed):
        open_parcel(session, w, code="NOPE-123", warehouse_id=world.wh.id, idempotency_key=key())
    r = open_parcel(session, w, code="NOPE-123", warehouse_id=world.wh.id, idempotency_key=key(), blind=True)
    assert r.blind
    unit = scan_item(session, w, parcel_id=r.parcel_id, product_id=world.products["shirt"].id, idempotency_key=key())
    session.rollback()
    assert session.get(ReturnUnit, unit.unit_id).state == "received"
    assert session.scalar(select(func.count()).select_from(RefundTrigger)) == 0
    types = session.scalars(select(ReturnException.type)).all()
    assert types == ["unidentified_parcel"]


def test_wrong_and_extra_items(session, world):
    w = world.actor("worker")
    r = open_parcel(session, w, code="SO-1001", warehouse_id=world.wh.id, idempotency_key=key())
    cream = scan_item(session, w, parcel_id=r.parcel_id, product_id=world.products["cream"].id, idempotency_key=key())
    assert cream.exceptions == ("extra_item",)
    for _ in range(2):
        scan_item(session, w, parcel_id=r.parcel_id, product_id=world.products["shirt"].id, idempotency_key=key())
    third = scan_item(session, w, parcel_id=r.parcel_id, product_id=world.products["shirt"].id, idempotency_key=key())
    assert third.exceptions == ("over_return",)


def test_no_refund_beyond_what_was_bought_and_extras_are_held(session, world):
    w = world.actor("worker")
    r = open_parcel(session, w, code="SO-1001", warehouse_id=world.wh.id, idempotency_key=key())
    cream = scan_item(session, w, parcel_id=r.parcel_id, product_id=world.products["cream"].id, idempotency_key=key())
    over = scan_item(session, w, parcel_id=r.parcel_id, product_id=world.products["cream"].id, idempotency_key=key())
    assert cream.exceptions == ("extra_item",) and over.exceptions == ("over_return",)
    session.rollback()
    refunds = {t.unit_id: t for t in session.scalars(select(RefundTrigger))}
    assert over.unit_id not in refunds  # the customer bought one cream: the second earns nothing
    record_inspection(session, w, unit_id=cream.unit_id, grade="A", packaging="sealed", answers={}, notes=None,
                      idempotency_key=key())
    done = confirm_disposition(session, w, unit_id=cream.unit_id, idempotency_key=key(), policy=POLICY)
    assert done.refund_status == "pending_approval"


def test_an_earlier_inspector_cannot_approve_after_someone_else_regraded(session, world):
    from app.errors import FourEyesViolation
    from app.refunds.services import approve_refund

    sup, sup2 = world.actor("super"), world.actor("super2")
    r = open_parcel(session, sup, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=key())
    phone = scan_item(session, sup, parcel_id=r.parcel_id, product_id=world.products["phone"].id,
                      serial="SN-PHONE-0001", idempotency_key=key())
    record_inspection(session, sup, unit_id=phone.unit_id, grade="B", packaging="opened", answers={}, notes=None,
                      idempotency_key=key())
    record_inspection(session, sup2, unit_id=phone.unit_id, grade="A", packaging="opened", answers={}, notes=None,
                      idempotency_key=key())
    confirm_disposition(session, sup2, unit_id=phone.unit_id, idempotency_key=key(), policy=POLICY)
    session.rollback()
    refund = session.scalars(select(RefundTrigger).where(RefundTrigger.unit_id == phone.unit_id)).one()
    assert refund.status == "pending_approval"
    with pytest.raises(FourEyesViolation):  # super graded it first: not theirs to approve either
        approve_refund(session, sup, refund_id=refund.id, reason="ok", idempotency_key=key())


def test_a_upc_e_and_a_digital_link_find_their_products(session, world):
    """A UPC-E finds the product kept under its UPC-A's GTIN (04252614 -> 00042100005264); a GS1
    Digital Link QR code finds the phone by its GTIN and carries the serial to receive."""
    w = world.actor("worker")
    shirt, phone = world.products["shirt"], world.products["phone"]
    session.add(ProductBarcode(code="00042100005264", kind="upc", product_id=shirt.id))
    session.commit()
    upc_e = resolve_scan(session, w, "04252614")
    assert (upc_e.kind, upc_e.product_id) == ("product", shirt.id)
    assert resolve_scan(session, w, "04252615").kind == "unknown"  # a misread check digit finds nothing
    link = resolve_scan(session, w, "https://id.example.com/01/00614141999996/21/SN-PHONE-0001/10/L7?17=271231")
    assert (link.kind, link.product_id, link.serial, link.lot) == ("product", phone.id, "SN-PHONE-0001", "L7")
    r = open_parcel(session, w, code=world.tracking.tracking_number, warehouse_id=world.wh.id, idempotency_key=key())
    received = scan_item(session, w, parcel_id=r.parcel_id, product_id=link.product_id, serial=link.serial, idempotency_key=key())
    assert received.serial_status == "match"
