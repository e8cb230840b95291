"""The console's sites: warehouses (each made with a location of every type), more locations, and
partner organisations with the merchants they serve; audited, retried once, refused clearly."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from app.catalog.models import LOCATION_TYPES, Location, PartnerOrg, Warehouse
from app.ledger.models import AuditEntry
from tests.conftest import login

HX = {"HX-Request": "true"}


def key() -> str:
    return uuid.uuid4().hex


def count(session, model) -> int:  # type: ignore[no-untyped-def]
    session.rollback()
    return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("username", ["worker", "super", "partner"])
def test_only_admins_manage_sites_and_a_refusal_writes_nothing(client, world, session, username):
    login(client, username)
    before = (count(session, Warehouse), count(session, Location), count(session, PartnerOrg))
    for method, path in [("GET", "/admin/warehouses"), ("POST", "/admin/warehouses"),
                         ("GET", f"/admin/warehouses/{world.wh.id}"), ("POST", f"/admin/warehouses/{world.wh.id}/locations"),
                         ("GET", "/admin/partners"), ("POST", "/admin/partners")]:
        data = {"key": key(), "code": "X1", "name": "X", "type": "dock"} if method == "POST" else None
        assert client.open(path, method=method, data=data).status_code == 403, (username, path)
    assert (count(session, Warehouse), count(session, Location), count(session, PartnerOrg)) == before


def test_a_new_warehouse_can_receive_at_once_and_a_retry_makes_one(client, world, session):
    login(client, "admin")
    form = {"key": key(), "code": "dal2", "name": "Dallas returns", "partner_org_id": str(world.org.id)}
    assert client.post("/admin/warehouses", data=form, headers=HX).status_code == 200
    again = client.post("/admin/warehouses", data=form, headers=HX)
    assert again.status_code == 200 and "already done" in again.get_data(as_text=True)
    session.rollback()
    wh = session.scalars(select(Warehouse).where(Warehouse.code == "DAL2")).one()
    assert wh.partner_org_id == world.org.id
    locations = session.scalars(select(Location).where(Location.warehouse_id == wh.id)).all()
    assert sorted(loc.type for loc in locations) == sorted(LOCATION_TYPES)
    assert {loc.barcode for loc in locations} >= {"LOC:DAL2-DOCK-01", "LOC:DAL2-QUARANTINE-01"}
    page = client.get(f"/admin/warehouses/{wh.id}").get_data(as_text=True)
    assert "LOC:DAL2-VENDOR-RETURN-01" in page
    assert client.post(f"/admin/warehouses/{wh.id}/locations", data={"key": key(), "code": "dock-02", "type": "dock"},
                       headers=HX).status_code == 200
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Location).where(Location.warehouse_id == wh.id)) == 9
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "warehouse.created")).one()
    assert entry.details["after"]["code"] == "DAL2" and len(entry.details["after"]["locations"]) == len(LOCATION_TYPES)


def test_bad_sites_get_a_message_and_change_nothing(client, world, session):
    login(client, "admin")
    before = (count(session, Warehouse), count(session, Location), count(session, PartnerOrg))
    refusals = [("/admin/warehouses", {"code": "", "name": "X"}, 422, "warehouse code"),
                ("/admin/warehouses", {"code": "A B", "name": "X"}, 422, "warehouse code"),
                ("/admin/warehouses", {"code": "ÜNÏ١", "name": "X"}, 422, "warehouse code"),
                ("/admin/warehouses", {"code": "WH9", "name": ""}, 422, "name"),
                ("/admin/warehouses", {"code": world.wh.code, "name": "Again"}, 409, "exists already"),
                ("/admin/warehouses", {"code": "WH9", "name": "X", "partner_org_id": "99999"}, 422, "No such partner"),
                (f"/admin/warehouses/{world.wh.id}/locations", {"code": "Z-1", "type": "roof"}, 422, "type is one of"),
                (f"/admin/warehouses/{world.wh.id}/locations", {"code": world.loc(world.wh, "dock").code, "type": "dock"},
                 409, "already"),
                ("/admin/warehouses/99999/locations", {"code": "Z-1", "type": "dock"}, 404, "No such warehouse"),
                ("/admin/partners", {"name": ""}, 422, "name"),
                ("/admin/partners", {"name": world.org.name}, 409, "exists already"),
                ("/admin/partners", {"name": "Ghost 3PL", "merchant_id": "99999"}, 422, "does not exist")]
    for path, form, status, said in refusals:
        resp = client.post(path, data={"key": key(), **form}, headers=HX)
        assert resp.status_code == status and said in resp.get_data(as_text=True), (path, form, resp.status_code)
    assert (count(session, Warehouse), count(session, Location), count(session, PartnerOrg)) == before


def test_a_partner_organisation_serves_the_merchants_ticked(client, world, session):
    login(client, "admin")
    resp = client.post("/admin/partners", data={"key": key(), "name": "Lone Star 3PL",
                                                "merchant_id": [str(world.merchant.id)]}, headers=HX)
    assert resp.status_code == 200
    session.rollback()
    org = session.scalars(select(PartnerOrg).where(PartnerOrg.name == "Lone Star 3PL")).one()
    assert [m.id for m in org.merchants] == [world.merchant.id]
    assert "Lone Star 3PL" in client.get("/admin/partners").get_data(as_text=True)
    assert "partner org created" in client.get("/admin/audit").get_data(as_text=True)
