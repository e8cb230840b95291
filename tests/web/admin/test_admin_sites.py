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
                         ("GET", "/admin/partners"), ("POST", "/admin/partners"),
                         ("POST", f"/admin/warehouses/{world.wh.id}"), ("POST", f"/admin/partners/{world.org.id}"),
                         ("GET", "/admin/merchants"), ("POST", "/admin/merchants"), ("POST", "/admin/channels"),
                         ("POST", f"/admin/merchants/{world.merchant.id}"), ("POST", f"/admin/channels/{world.channel.id}")]:
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


def _state(session):  # type: ignore[no-untyped-def]
    from app.catalog.models import Merchant, SalesChannel

    session.rollback()
    return ([(w.code, w.name, w.partner_org_id, w.active) for w in session.scalars(select(Warehouse).order_by(Warehouse.id)
                                                                                    .execution_options(populate_existing=True))],
            [(m.code, m.name) for m in session.scalars(select(Merchant).order_by(Merchant.id)
                                                        .execution_options(populate_existing=True))],
            [(c.code, c.name) for c in session.scalars(select(SalesChannel).order_by(SalesChannel.id)
                                                        .execution_options(populate_existing=True))],
            count(session, AuditEntry))


def test_a_retired_warehouse_is_not_offered_to_handhelds_and_comes_back(app, client, world, session):
    login(client, "admin")
    form = {"key": key(), "name": "Main DC (closed)", "partner_org_id": ""}
    resp = client.post(f"/admin/warehouses/{world.wh.id}", data=form, headers=HX)
    assert resp.status_code == 200 and b"saved" in resp.data
    assert client.post(f"/admin/warehouses/{world.wh.id}", data=form, headers=HX).status_code == 200  # resent: one change
    session.rollback()
    entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "warehouse.changed")).all()
    assert len(entries) == 1 and entries[0].details["before"]["active"] is True and entries[0].details["after"]["active"] is False
    phone = app.test_client()
    login(phone, "worker")
    assert b"Main DC (closed)" not in phone.get("/receive").data
    refused = phone.post("/receive/warehouse", data={"warehouse_id": str(world.wh.id)}, headers=HX)
    assert refused.status_code == 422
    back = client.post(f"/admin/warehouses/{world.wh.id}", data={**form, "key": key(), "active": "on"}, headers=HX)
    assert back.status_code == 200
    assert phone.post("/receive/warehouse", data={"warehouse_id": str(world.wh.id)}, headers=HX).status_code == 200
    listed = client.get("/admin/warehouses").get_data(as_text=True)
    assert "retired" not in listed


def test_handing_a_warehouse_to_a_3pl_lets_its_partner_work_there(app, client, world, session):
    phone = app.test_client()
    login(phone, "partner")
    assert phone.post("/receive/warehouse", data={"warehouse_id": str(world.wh.id)}, headers=HX).status_code == 422
    login(client, "admin")
    form = {"key": key(), "name": world.wh.name, "partner_org_id": str(world.org.id), "active": "on"}
    assert client.post(f"/admin/warehouses/{world.wh.id}", data=form, headers=HX).status_code == 200
    assert phone.post("/receive/warehouse", data={"warehouse_id": str(world.wh.id)}, headers=HX).status_code == 200


@pytest.mark.parametrize("path,form", [
    ("/admin/warehouses/{wh}", {"name": ""}), ("/admin/warehouses/{wh}", {"name": "X", "partner_org_id": "999999"}),
    ("/admin/warehouses/999999", {"name": "X"}), ("/admin/partners/{org}", {"name": ""}),
    ("/admin/partners/{org}", {"name": "X", "merchant_id": "999999"}), ("/admin/partners/{org}", {"name": "Other 3PL"}),
    ("/admin/partners/999999", {"name": "X"}), ("/admin/merchants", {"code": "", "name": "X"}),
    ("/admin/merchants", {"code": "ACME", "name": "Again"}), ("/admin/channels", {"code": "WEB", "name": "Again"}),
    ("/admin/merchants", {"code": "a b", "name": "X"}), ("/admin/channels", {"code": "x" * 33, "name": "X"}),
    ("/admin/merchants/{merchant}", {"name": "x" * 121}), ("/admin/channels/999999", {"name": "X"}),
    ("/admin/customers", {"code": "X", "name": "X"}),
])
def test_a_bad_site_change_says_why_and_changes_nothing(client, world, session, path, form):
    login(client, "admin")
    before = _state(session)
    url = path.format(wh=world.wh.id, org=world.org.id, merchant=world.merchant.id)
    resp = client.post(url, data={"key": key(), **form}, headers=HX)
    assert resp.status_code in (404, 409, 422), (url, resp.status_code)
    assert _state(session) == before


def test_merchants_and_channels_are_added_renamed_audited_and_usable_by_the_api(client, world, session):
    from app.catalog.models import Merchant, SalesChannel

    login(client, "admin")
    page = client.get("/admin/merchants").get_data(as_text=True)
    assert "Acme Outfitters" in page and "Web store" in page
    form = {"key": key(), "code": "initech", "name": "Initech"}
    assert b"Initech (INITECH) added" in client.post("/admin/merchants", data=form, headers=HX).data
    assert b"already" in client.post("/admin/merchants", data=form, headers=HX).data  # resent: one merchant
    made = client.post("/admin/channels", data={"key": key(), "code": "EBAY", "name": "eBay"}, headers=HX)
    assert b"eBay (ebay) added" in made.data
    session.rollback()
    merchant = session.scalars(select(Merchant).where(Merchant.code == "INITECH")).one()
    assert session.scalars(select(SalesChannel).where(SalesChannel.code == "ebay")).one()
    renamed = client.post(f"/admin/merchants/{merchant.id}", data={"key": key(), "name": "Initech Corp"}, headers=HX)
    assert b"Renamed: Initech Corp (INITECH)" in renamed.data
    session.rollback()
    actions = [(e.action, e.details["before"], e.details["after"]) for e in
               session.scalars(select(AuditEntry).where(AuditEntry.entity_type.in_(["merchant", "sales_channel"]))
                               .order_by(AuditEntry.id))]
    assert actions == [("merchant.created", None, {"code": "INITECH", "name": "Initech"}),
                       ("sales_channel.created", None, {"code": "ebay", "name": "eBay"}),
                       ("merchant.renamed", {"code": "INITECH", "name": "Initech"}, {"code": "INITECH", "name": "Initech Corp"})]
    log = client.get("/admin/audit").get_data(as_text=True)
    assert "Initech Corp" in log


def test_a_partner_organisation_changes_the_merchants_it_serves(app, client, world, session):
    login(client, "admin")
    form = {"key": key(), "name": "FastLane 3PL", "merchant_id": [str(world.merchant.id), str(world.other_merchant.id)]}
    resp = client.post(f"/admin/partners/{world.org.id}", data=form, headers=HX)
    assert resp.status_code == 200 and b"saved" in resp.data
    session.rollback()
    org = session.get(PartnerOrg, world.org.id, populate_existing=True)
    assert {m.id for m in org.merchants} == {world.merchant.id, world.other_merchant.id}
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "partner_org.changed")).one()
    assert entry.details["before"]["merchants"] != entry.details["after"]["merchants"]
