"""The start pages and the header's "who and where" through the Flask client, on both databases:
each role's home, the warehouse switch (allowed, refused, with a parcel in hand), my work today."""
from __future__ import annotations

import itertools
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.db import utcnow
from app.home.domain import day_start
from app.ledger.models import AuditEntry
from app.receiving.models import Parcel
from tests.conftest import login
from tests.helpers import counts

HX = {"HX-Request": "true"}
_keys = itertools.count(1)


def key() -> str:
    return f"home-key-{next(_keys):08d}"


def _session_warehouse(client) -> int | None:
    with client.session_transaction() as s:
        return s.get("warehouse_id")


def _figures(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-figure="(\w+)">(\d+)<', html)}


def _header(html: str) -> str:
    return html[html.index("<header"):html.index("</header>")]


# --------------------------------------------------------------------------- the role matrix

@pytest.mark.parametrize("username, marks", [
    ("worker", ["Hello, Worker", 'href="/receive"', 'href="/labels/"', "My work today", 'href="/receive/queue"']),
    ("partner", ["Hello, Partner", 'href="/receive"', 'href="/labels/"', "Your warehouses", "3PL1"]),
    ("super", ['href="/desk"', 'href="/desk/rules"', 'data-queue="quarantine"', 'data-queue="refunds"',
               'data-queue="exceptions/missing_item"', "Reports"]),
    ("admin", ['href="/admin/users"', 'href="/admin/warehouses"', 'href="/admin/partners"', 'href="/admin/api-keys"',
               'href="/admin/webhooks"', 'href="/admin/audit"']),
])
def test_each_role_has_its_start_page_with_its_links(client, world, username, marks):
    login(client, username)
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for mark in marks:
        assert mark in html, (username, mark)
    header = _header(html)
    name, role = world.users[username].name, world.users[username].role
    assert f"{name} · {role}" in header and 'class="home-link"' in header


def test_signing_in_still_lands_each_role_where_its_work_is(client, world):
    """Workers and partners on the scan screen (no tap before the first scan), supervisors at the
    desk, admins in the console: the start page is one tap away, in the header."""
    for username, landing in (("worker", "/receive"), ("partner", "/receive"), ("super", "/desk"),
                              ("admin", "/admin/users")):
        c = client.application.test_client()
        resp = c.post("/login", data={"username": username, "password": "password123"})
        assert resp.headers["Location"].endswith(landing), username


def test_no_page_links_to_a_page_that_does_not_exist(client, world):
    for username in ("worker", "partner", "super", "admin"):
        c = login(client.application.test_client(), username)
        html = c.get("/").get_data(as_text=True)
        for href in sorted(set(re.findall(r'<a [^>]*href="(/[^"#]*)', html))):
            assert c.get(href).status_code == 200, (username, href)


def test_signed_out_the_start_page_and_the_switch_ask_to_sign_in(client, world):
    assert client.get("/").status_code == 302
    assert client.post("/warehouse", data={"warehouse_id": world.wh.id}).status_code == 302
    assert client.post("/warehouse", data={"warehouse_id": world.wh.id}, headers=HX).status_code == 401


def test_an_admin_works_at_no_warehouse_and_cannot_switch(client, world, session):
    login(client, "admin")
    header = _header(client.get("/admin/users").get_data(as_text=True))
    assert "Admin · admin" in header and 'action="/warehouse"' not in header
    before = counts(session)
    assert client.post("/warehouse", data={"warehouse_id": world.wh.id}).status_code == 403
    assert _session_warehouse(client) is None and counts(session) == before


# --------------------------------------------------------------------------- the header

def test_every_page_says_who_and_where_and_offers_the_switch(client, world):
    login(client, "worker")
    client.post("/warehouse", data={"warehouse_id": world.wh.id, "next": "/receive"})
    for path in ("/", "/receive", "/labels/", "/labels/printer"):
        header = _header(client.get(path).get_data(as_text=True))
        assert "Worker · worker" in header, path
        assert "place-code\">WH1<" in header and "Main DC" in header, path
        assert header.count('name="warehouse_id"') == 2, path  # both warehouses, staff may work at either
        assert f'name="next" value="{path}"' in header, path


def test_a_partner_is_offered_only_its_own_warehouses(client, world):
    login(client, "partner")
    html = client.get("/").get_data(as_text=True)
    assert "3PL1" in html and "WH1" not in html and "Main DC" not in html


def test_fragments_carry_no_header(client, world):
    login(client, "worker")
    frag = client.get("/receive", headers=HX).get_data(as_text=True)
    assert "<header" not in frag and "whereabouts" not in frag


# --------------------------------------------------------------------------- switching

def test_a_switch_applies_to_the_scan_screen_and_goes_back(client, world):
    login(client, "worker")
    resp = client.post("/warehouse", data={"warehouse_id": world.wh3pl.id, "next": "/labels/"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/labels/"
    assert _session_warehouse(client) == world.wh3pl.id
    scan = client.get("/receive").get_data(as_text=True)
    assert "Where are you working?" not in scan and "Scan a parcel label" in scan
    assert "You are working at 3PL1 · FastLane Reno." in scan  # the flash, shown on the next page
    # a parcel opened now is opened at the warehouse switched to
    client.post("/receive/scan", data={"code": "BLIND-PARCEL-1", "key": key()}, headers=HX)
    client.post("/receive/blind", data={"code": "BLIND-PARCEL-1", "key": key()}, headers=HX)
    from app.db import db
    with client.application.app_context():
        wh = db.session.scalar(select(Parcel.warehouse_id).where(Parcel.scanned_code == "BLIND-PARCEL-1"))
    assert wh == world.wh3pl.id


def test_a_supervisor_works_at_any_warehouse_and_switches_like_a_worker(client, world, session):
    login(client, "super")
    header = _header(client.get("/desk").get_data(as_text=True))
    assert "Super · supervisor" in header and header.count('name="warehouse_id"') == 2
    before = counts(session)
    assert client.post("/warehouse", data={"warehouse_id": world.wh3pl.id, "next": "/desk"}).headers["Location"] == "/desk"
    assert _session_warehouse(client) == world.wh3pl.id and counts(session) == before
    assert "My work today at 3PL1" in client.get("/").get_data(as_text=True)


def test_a_switch_with_no_next_goes_home_and_a_foreign_next_is_ignored(client, world):
    login(client, "worker")
    assert client.post("/warehouse", data={"warehouse_id": world.wh.id}).headers["Location"] == "/"
    resp = client.post("/warehouse", data={"warehouse_id": world.wh.id, "next": "https://evil.example/"})
    assert resp.headers["Location"] == "/"


@pytest.mark.parametrize("value", ["", "abc", "-1", "0", "99999", "2147483648", "1e3", " ", "１"])
def test_a_warehouse_that_is_not_one_is_refused_and_changes_nothing(client, world, session, value):
    login(client, "worker")
    client.post("/warehouse", data={"warehouse_id": world.wh.id})
    before = counts(session)
    resp = client.post("/warehouse", data={"warehouse_id": value, "next": "/receive"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/receive"
    assert "not one of your warehouses" in client.get("/receive").get_data(as_text=True)
    assert _session_warehouse(client) == world.wh.id and counts(session) == before
    htmx = client.post("/warehouse", data={"warehouse_id": value}, headers=HX)
    assert htmx.status_code == 422 and "not one of your warehouses" in htmx.get_data(as_text=True)


def test_a_partner_cannot_pick_another_organisations_warehouse(client, world, session):
    login(client, "partner")
    client.post("/warehouse", data={"warehouse_id": world.wh3pl.id})
    before = counts(session)
    resp = client.post("/warehouse", data={"warehouse_id": world.wh.id, "next": "/receive"})
    assert resp.status_code == 303
    page = client.get("/receive").get_data(as_text=True)
    assert "not one of your warehouses" in page and "Main DC" not in page
    assert _session_warehouse(client) == world.wh3pl.id and counts(session) == before
    assert client.post("/warehouse", data={"warehouse_id": world.wh.id}, headers=HX).status_code == 422
    # and the one whose organisation has no warehouse is offered none and can pick none
    outsider = login(client.application.test_client(), "outsider")
    assert "No warehouse is open to you" in outsider.get("/").get_data(as_text=True)
    assert outsider.post("/warehouse", data={"warehouse_id": world.wh3pl.id}, headers=HX).status_code == 422


def test_a_parcel_in_hand_keeps_the_worker_where_it_was_opened(client, world, session):
    """Its items go on being received where it was opened: a switch elsewhere is refused, with
    the parcel named, until it is closed; the same warehouse is still fine."""
    login(client, "worker")
    client.post("/warehouse", data={"warehouse_id": world.wh.id})
    assert client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}, headers=HX).status_code == 200
    before = counts(session)
    resp = client.post("/warehouse", data={"warehouse_id": world.wh3pl.id, "next": "/receive"})
    assert resp.status_code == 303
    page = client.get("/receive").get_data(as_text=True)
    assert "Parcel RMA-5001 is still open at WH1: close it before you switch to 3PL1" in page
    assert _session_warehouse(client) == world.wh.id and counts(session) == before
    refused = client.post("/warehouse", data={"warehouse_id": world.wh3pl.id}, headers=HX)
    assert refused.status_code == 409 and "still open at WH1" in refused.get_data(as_text=True)
    assert client.post("/warehouse", data={"warehouse_id": world.wh.id}).status_code == 303
    # the parcel is found even when the handheld lost it from its session (another device, a new sign-in)
    with client.session_transaction() as s:
        parcel_id = s.pop("parcel_id")
    assert client.post("/warehouse", data={"warehouse_id": world.wh3pl.id}, headers=HX).status_code == 409
    client.post("/receive/close", data={"parcel_id": parcel_id, "key": key()}, headers=HX)
    assert client.post("/warehouse", data={"warehouse_id": world.wh3pl.id}).status_code == 303
    assert _session_warehouse(client) == world.wh3pl.id


# --------------------------------------------------------------------------- my work today

def test_my_work_today_counts_my_own_work_at_this_warehouse_only(client, world, session):
    login(client, "worker")
    client.post("/warehouse", data={"warehouse_id": world.wh.id})
    assert _figures(client.get("/").get_data(as_text=True)) == {"parcels": 0, "received": 0, "inspected": 0,
                                                               "disposed": 0}
    client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}, headers=HX)
    for _ in range(2):
        assert client.post("/receive/scan", data={"code": "036000291452", "key": key()}, headers=HX).status_code == 200
    for _ in range(2):  # saved twice: one unit inspected
        client.post("/receive/units/1/inspect", data={"grade": "A", "packaging": "sealed", "key": key()}, headers=HX)
    assert client.post("/receive/units/1/dispose", data={"key": key()}, headers=HX).status_code == 200
    # somebody else's work, and mine before today, are not mine today
    other = login(client.application.test_client(), "worker2")
    other.post("/warehouse", data={"warehouse_id": world.wh.id})
    other.post("/receive/scan", data={"code": "1Z999AA10123456784", "key": key()}, headers=HX)
    session.add(AuditEntry(actor_id=world.users["worker"].id, actor_name="Worker", action="unit.received",
                           entity_type="unit", entity_id=999, warehouse_id=world.wh.id,
                           at=day_start(utcnow(), "UTC") - timedelta(minutes=1), details={}))
    session.commit()
    html = client.get("/").get_data(as_text=True)
    assert _figures(html) == {"parcels": 1, "received": 2, "inspected": 1, "disposed": 1}
    assert "My work today at WH1" in html
    # the same person at the other warehouse has done nothing there today (the parcel closed first)
    parcel_id = session.scalar(select(func.max(Parcel.id)).where(Parcel.opened_by_id == world.users["worker"].id))
    client.post("/receive/close", data={"parcel_id": parcel_id, "key": key()}, headers=HX)
    client.post("/warehouse", data={"warehouse_id": world.wh3pl.id})
    assert _figures(client.get("/").get_data(as_text=True)) == {"parcels": 0, "received": 0, "inspected": 0,
                                                               "disposed": 0}


def test_a_supervisor_sees_the_queue_counts_on_the_start_page(client, world, session):
    from tests.helpers import open_exception_now

    open_exception_now(session, world.actor("worker"), "missing_item", warehouse_id=world.wh.id, rma_id=world.rma.id)
    session.commit()
    login(client, "super")
    html = client.get("/").get_data(as_text=True)
    assert re.search(r'data-queue="exceptions/missing_item">\s*<span class="queue-card-label">[^<]*</span>\s*'
                     r'<span class="queue-card-count">1</span>', html)
