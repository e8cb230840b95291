"""The console's categories and their versioned inspection checklists: admins only, audited with
before and after, one effect per form however often it is sent, a clear refusal for bad input,
and the handheld inspecting against the version in use (none for a new category)."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from app.catalog.models import Category
from app.inspection.models import ChecklistVersion, Inspection
from app.ledger.models import AuditEntry, IdempotencyRecord
from tests.conftest import login

HX = {"HX-Request": "true"}


def key() -> str:
    return uuid.uuid4().hex


def counts(session) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
    session.rollback()
    return tuple(session.scalar(select(func.count()).select_from(m)) for m in (Category, ChecklistVersion, AuditEntry,
                                                                                 IdempotencyRecord))


def versions(session, code):  # type: ignore[no-untyped-def]
    session.rollback()
    return session.execute(select(ChecklistVersion.version, ChecklistVersion.items, ChecklistVersion.note)
                           .where(ChecklistVersion.category == code).order_by(ChecklistVersion.version)).all()


@pytest.mark.parametrize("username", ["worker", "super", "partner"])
def test_only_admins_manage_categories_and_checklists_and_a_refusal_writes_nothing(client, world, session, username):
    login(client, username)
    before = counts(session)
    for method, path in [("GET", "/admin/categories"), ("POST", "/admin/categories"),
                         ("POST", "/admin/categories/apparel/rename"), ("POST", "/admin/categories/apparel/retire"),
                         ("GET", "/admin/checklists"), ("GET", "/admin/checklists/apparel"),
                         ("POST", "/admin/checklists/apparel"), ("POST", "/admin/checklists/apparel/restore")]:
        data = {"key": key(), "code": "toys", "name": "Toys", "items": "a | A", "note": "n", "version": "1"}
        resp = client.open(path, method=method, data=data if method == "POST" else None)
        assert resp.status_code == 403, (username, path)
    assert counts(session) == before


def test_an_admin_adds_renames_retires_and_takes_back_a_category_each_audited(client, world, session):
    login(client, "admin")
    page = client.get("/admin/categories").get_data(as_text=True)
    assert "health_beauty" in page and "Health &amp; beauty" in page
    form = {"key": key(), "code": " Toys ", "name": "Toys and games"}
    assert client.post("/admin/categories", data=form, headers=HX).status_code == 200
    again = client.post("/admin/categories", data=form, headers=HX)
    assert again.status_code == 200 and "already done" in again.get_data(as_text=True)
    assert client.post("/admin/categories/toys/rename", data={"key": key(), "name": "Toys"}, headers=HX).status_code == 200
    retired = client.post("/admin/categories/toys/retire", data={"key": key()}, headers=HX)
    assert retired.status_code == 200 and "no new product may use it" in retired.get_data(as_text=True)
    assert client.post("/admin/categories/toys/activate", data={"key": key()}, headers=HX).status_code == 200
    session.rollback()
    assert session.get(Category, "toys").name == "Toys" and session.get(Category, "toys").active
    log = session.execute(select(AuditEntry.action, AuditEntry.details).where(AuditEntry.entity_type == "category")
                          .order_by(AuditEntry.id)).all()
    assert [a for a, _ in log] == ["category.created", "category.renamed", "category.retired", "category.activated"]
    assert log[0][1] == {"before": None, "after": {"code": "toys", "name": "Toys and games", "active": True}}
    assert log[1][1]["before"]["name"] == "Toys and games" and log[1][1]["after"]["name"] == "Toys"
    assert log[2][1]["before"]["active"] is True and log[2][1]["after"]["active"] is False
    audit = client.get("/admin/audit").get_data(as_text=True)
    assert "category retired" in audit and "toys" in audit


def test_a_replayed_checklist_save_makes_one_version(client, world, session):
    """The same form sent twice (a retry, a double tap) saves one version; without run_idempotent's
    key the second send would be refused as "nothing to save" or add a version."""
    login(client, "admin")
    form = {"key": key(), "items": "tags_attached | Original tags attached\nno_smoke | No smoke smell", "note": "Smoke"}
    first = client.post("/admin/checklists/apparel", data=form, headers=HX)
    assert first.status_code == 200 and "Version 2 saved" in first.get_data(as_text=True)
    again = client.post("/admin/checklists/apparel", data=form, headers=HX)
    assert again.status_code == 200 and "already done" in again.get_data(as_text=True)
    assert [v for v, *_ in versions(session, "apparel")] == [1, 2]
    restore = {"key": key(), "version": "1", "note": ""}
    assert client.post("/admin/checklists/apparel/restore", data=restore, headers=HX).status_code == 200
    assert client.post("/admin/checklists/apparel/restore", data=restore, headers=HX).status_code == 200
    rows = versions(session, "apparel")
    assert [v for v, *_ in rows] == [1, 2, 3] and rows[2].items == rows[0].items and rows[2].note == "Restored version 1."
    log = session.execute(select(AuditEntry.action, AuditEntry.details).where(AuditEntry.entity_type == "checklist")
                          .order_by(AuditEntry.id)).all()
    assert [a for a, _ in log] == ["checklist.saved", "checklist.restored"]
    assert log[0][1]["before"]["version"] == 1 and log[0][1]["after"]["version"] == 2
    assert "no_smoke | No smoke smell" in log[0][1]["after"]["items"] and log[1][1]["restored_from"] == 1


def test_the_editor_shows_versions_and_an_older_ones_items(client, world, session):
    login(client, "admin")
    client.post("/admin/checklists/electronics", data={"key": key(), "items": "powers_on | Powers on", "note": "Short"},
                headers=HX)
    page = client.get("/admin/checklists/electronics").get_data(as_text=True)
    assert "Edit version 2" in page and "powers_on | Powers on</textarea>" in page and "Short" in page
    old = client.get("/admin/checklists/electronics?version=1").get_data(as_text=True)
    assert "No liquid damage indicator" in old and "Restore as version 3" in old
    assert "version 2" in client.get("/admin/checklists").get_data(as_text=True)


def test_a_new_category_has_an_empty_checklist_and_its_products_are_still_inspected(app, client, world, session):
    """A category with no checklist: the console says so, the handheld shows no questions and
    records the inspection with no answers and no version; once saved, the next one uses it."""
    login(client, "admin")
    client.post("/admin/categories", data={"key": key(), "code": "toys", "name": "Toys"}, headers=HX)
    assert "No checklist yet" in client.get("/admin/checklists/toys").get_data(as_text=True)
    assert "none yet" in client.get("/admin/categories").get_data(as_text=True)
    session.rollback()
    world.products["shirt"].category = "toys"
    session.commit()
    client = login(app.test_client(), "worker")
    client.post("/receive/warehouse", data={"warehouse_id": world.wh.id}, headers=HX)
    client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}, headers=HX)
    client.post("/receive/scan", data={"code": "036000291452", "key": key()}, headers=HX)
    unit = client.get("/receive/units/1", headers=HX)
    assert unit.status_code == 200 and 'name="q_' not in unit.get_data(as_text=True)
    saved = client.post("/receive/units/1/inspect", headers=HX,
                        data={"grade": "A", "packaging": "sealed", "q_tags_attached": "yes", "key": key()})
    assert saved.status_code == 200
    session.rollback()
    assert session.execute(select(Inspection.answers, Inspection.checklist_version)).one() == ({}, None)


BAD = "\n".join(f"k{n} | item {n}" for n in range(41))


@pytest.mark.parametrize("path, form, status, says", [
    ("/admin/categories", {"code": "", "name": "X"}, 422, "category code"),
    ("/admin/categories", {"code": "Toys & Games", "name": "X"}, 422, "category code"),
    ("/admin/categories", {"code": "x" * 33, "name": "X"}, 422, "category code"),
    ("/admin/categories", {"code": "toys", "name": ""}, 422, "name"),
    ("/admin/categories", {"code": "toys", "name": "x" * 121}, 422, "name"),
    ("/admin/categories", {"code": "apparel", "name": "Again"}, 409, "exists already"),
    ("/admin/categories/nope/rename", {"name": "X"}, 404, "No such category"),
    ("/admin/categories/" + "x" * 5000 + "/retire", {}, 404, "No such category"),
    ("/admin/categories/apparel/explode", {}, 404, "No such action"),
    ("/admin/categories/apparel/rename", {"name": "  "}, 422, "name"),
    ("/admin/checklists/nope", {"items": "a | A", "note": "n"}, 404, "No such category"),
    ("/admin/checklists/apparel", {"items": "", "note": "n"}, 422, "1 to 40 items"),
    ("/admin/checklists/apparel", {"items": BAD, "note": "n"}, 422, "1 to 40 items"),
    ("/admin/checklists/apparel", {"items": "a | A\na | B", "note": "n"}, 422, "also line 1"),
    ("/admin/checklists/apparel", {"items": "a | " + "x" * 121, "note": "n"}, 422, "label is"),
    ("/admin/checklists/apparel", {"items": "x" * 200_000, "note": "n"}, 422, "under 10000"),
    ("/admin/checklists/apparel", {"items": "a | A", "note": ""}, 422, "note"),
    ("/admin/checklists/apparel", {"items": "a | A", "note": "n" * 201}, 422, "note"),
    ("/admin/checklists/apparel", {"items": "tags_attached | Original tags attached\nunworn | Unworn, unwashed, no odour\n"
                                            "no_stains | No stains, tears or pulls\nsize_matches | Size label matches the SKU",
                                   "note": "same"}, 422, "nothing to save"),
    ("/admin/checklists/apparel/restore", {"version": "9"}, 404, "no checklist version 9"),
    ("/admin/checklists/apparel/restore", {"version": "x"}, 404, "no checklist version"),
    ("/admin/checklists/apparel/restore", {"version": "99999999999999999999"}, 404, "no checklist version"),
    ("/admin/checklists/apparel/restore", {"version": "1"}, 422, "nothing to save"),
])
def test_bad_input_gets_a_message_and_changes_nothing(client, world, session, path, form, status, says):
    login(client, "admin")
    before = counts(session)[:3]
    resp = client.post(path, data={"key": key(), **form}, headers=HX)
    assert resp.status_code == status and says in resp.get_data(as_text=True), (resp.status_code, resp.data[:300])
    assert counts(session)[:3] == before


@pytest.mark.parametrize("path", ["/admin/checklists/nope", "/admin/checklists/" + "x" * 3000,
                                  "/admin/checklists/apparel?version=abc", "/admin/checklists/apparel?version=99"])
def test_odd_urls_answer_404_or_the_editor(client, world, path):
    login(client, "admin")
    resp = client.get(path)
    assert resp.status_code == (404 if "nope" in path or "xxx" in path else 200)


def test_a_nul_character_is_refused_at_the_door(client, world, session):
    login(client, "admin")
    before = counts(session)
    resp = client.post("/admin/checklists/apparel", data={"key": key(), "items": "a | A\x00", "note": "n"}, headers=HX)
    assert 400 <= resp.status_code < 500 and counts(session) == before
