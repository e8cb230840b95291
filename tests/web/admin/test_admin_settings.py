"""The console's settings: an admin changes the queue ageing, the largest photo and the default
restocking fee, and sets refund thresholds; each change is audited with before and after; bad
values are refused whole; nobody else may; and the dock obeys what was saved."""
from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.ledger.models import AuditEntry
from app.settings.models import RefundThreshold, Setting
from tests.conftest import login

HX = {"HX-Request": "true"}


def key() -> str:
    return uuid.uuid4().hex


def _stored(session) -> dict[str, str]:  # type: ignore[no-untyped-def]
    session.rollback()
    return {s.name: s.value for s in session.scalars(select(Setting))}


@pytest.mark.parametrize("username", ["worker", "super", "partner"])
def test_only_admins_see_or_change_settings(client, world, session, username):
    login(client, username)
    assert client.get("/admin/settings").status_code == 403
    assert client.post("/admin/settings", data={"key": key(), "queue_ageing_hours": "2"}).status_code == 403
    assert client.post("/admin/settings/thresholds", data={"key": key(), "target": "all", "amount": "5"}).status_code == 403
    assert _stored(session) == {} and session.scalar(select(func.count()).select_from(RefundThreshold)) == 0


def test_an_admin_saves_settings_audited_and_a_blank_goes_back_to_the_default(client, world, session):
    login(client, "admin")
    page = client.get("/admin/settings")
    assert page.status_code == 200 and b"Queue ageing (hours)" in page.data and b"placeholder=\"48\"" in page.data
    saved = client.post("/admin/settings", data={"key": key(), "queue_ageing_hours": "6", "photo_max_mb": "2.5",
                                                 "restocking_fee_pct": "0.2"}, headers=HX)
    assert saved.status_code == 200 and b"Saved:" in saved.data
    assert _stored(session) == {"queue_ageing_hours": "6", "photo_max_mb": "2.50", "restocking_fee_pct": "0.2000"}
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "settings.saved")).one()
    assert entry.details["before"] == {"queue_ageing_hours": None, "photo_max_mb": None, "restocking_fee_pct": None}
    assert entry.details["after"]["queue_ageing_hours"] == "6"
    client.post("/admin/settings", data={"key": key(), "queue_ageing_hours": ""}, headers=HX)
    assert "queue_ageing_hours" not in _stored(session)
    assert b"6" in client.get("/admin/audit").data


@pytest.mark.parametrize("field,value,says", [
    ("queue_ageing_hours", "1.5", b"whole number"), ("queue_ageing_hours", "0", b"from 1 to"),
    ("queue_ageing_hours", "abc", b"whole number"), ("photo_max_mb", "9999", b"from 0.5 to 15"),
    ("restocking_fee_pct", "1.5", b"from 0 to 1"), ("restocking_fee_pct", "NaN", b"number"),
])
def test_a_bad_value_is_refused_and_nothing_is_saved(client, world, session, field, value, says):
    login(client, "admin")
    resp = client.post("/admin/settings", data={"key": key(), "queue_ageing_hours": "7", field: value}, headers=HX)
    assert resp.status_code == 422 and says in resp.data
    assert _stored(session) == {}


def test_a_resent_save_changes_nothing_twice(client, world, session):
    login(client, "admin")
    form = {"key": key(), "queue_ageing_hours": "6"}
    client.post("/admin/settings", data=form, headers=HX)
    again = client.post("/admin/settings", data=form, headers=HX)
    assert b"already done" in again.data
    session.rollback()
    assert session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "settings.saved")) == 1


def test_thresholds_from_the_console(client, world, session):
    login(client, "admin")
    made = client.post("/admin/settings/thresholds", data={"key": key(), "target": f"merchant:{world.merchant.id}",
                                                           "amount": "40"}, headers=HX)
    assert made.status_code == 200 and b"Refunds above 40.00 for" in made.data
    bad = client.post("/admin/settings/thresholds", data={"key": key(), "target": "merchant:abc", "amount": "40"},
                      headers=HX)
    assert bad.status_code == 422
    session.rollback()
    row = session.scalars(select(RefundThreshold)).one()
    gone = client.post(f"/admin/settings/thresholds/{row.id}/remove", data={"key": key()}, headers=HX)
    assert gone.status_code == 200 and b"is removed" in gone.data
    assert client.post(f"/admin/settings/thresholds/{row.id}/remove", data={"key": key()}, headers=HX).status_code == 404
    session.rollback()
    actions = [e.action for e in session.scalars(select(AuditEntry).where(AuditEntry.entity_type == "setting"))]
    assert actions == ["refund_threshold.set", "refund_threshold.removed"]
    log = client.get("/admin/audit")
    assert log.status_code == 200 and "above: 40.00" in log.get_data(as_text=True) and "(removed)" in log.get_data(as_text=True)


def _jpeg(side: int) -> tuple[io.BytesIO, str]:
    """A noisy JPEG (noise does not compress): side 300 is about 0.1 MB, 800 about 0.75 MB."""
    import random

    rng = random.Random(side)
    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), bytes(rng.getrandbits(8) for _ in range(side * side * 3))).save(buf, "JPEG", quality=95)
    buf.seek(0)
    return buf, "photo.jpg"


def test_the_handheld_refuses_a_photo_above_the_saved_size(app, client, world, session):
    from app.inspection.models import Photo

    login(client, "admin")
    client.post("/admin/settings", data={"key": key(), "photo_max_mb": "0.5"}, headers=HX)
    client = app.test_client()
    login(client, "worker")
    client.post("/receive/warehouse", data={"warehouse_id": str(world.wh.id)})
    client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}, headers=HX)
    client.post("/receive/scan", data={"code": "036000291452", "key": key()}, headers=HX)
    big = client.post("/receive/units/1/photos", data={"key": key(), "photo": _jpeg(800)}, headers=HX,
                      content_type="multipart/form-data")
    assert big.status_code == 422 and b"larger than" in big.data
    small = client.post("/receive/units/1/photos", data={"key": key(), "photo": _jpeg(300)}, headers=HX,
                        content_type="multipart/form-data")
    assert small.status_code == 200
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Photo)) == 1


def test_the_desk_counts_ageing_by_the_saved_hours(app, client, world, session):
    login(client, "admin")
    client.post("/admin/settings", data={"key": key(), "queue_ageing_hours": "3"}, headers=HX)
    client = app.test_client()
    login(client, "super")
    cards = client.get("/desk/counts?view=cards")
    assert cards.status_code == 200 and b"Items waiting over 3 hours are marked" in cards.data
