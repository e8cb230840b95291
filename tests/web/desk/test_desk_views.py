"""The desk through the Flask client: role matrix, fragments vs pages, decisions, conflicts, junk input."""
from __future__ import annotations

import io
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from app.db import unit_of_work
from app.disposition.models import ReasonCode
from app.exceptions.models import ReturnException
from app.inspection.services import add_photo
from app.ledger.models import AuditEntry, ReturnUnit
from app.ledger.services import balance_table, ledger_sums
from app.refunds.models import RefundTrigger
from tests.conftest import login
from tests.helpers import open_exception_now
from tests.integration.desk.test_desk_services import (key, make_units, row_counts, serial_mismatch_case,
                                                  unidentified_parcel)

HX = {"HX-Request": "true"}


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (200, 150), (30, 90, 200)).save(buf, "JPEG")
    return buf.getvalue()


def _version(session, model, id_: int) -> int:  # type: ignore[no-untyped-def]
    v = session.get(model, id_).version
    session.rollback()
    return v


@pytest.fixture
def scene(app, session, world):  # type: ignore[no-untyped-def]
    """One of everything a supervisor decides, so every route has something real to act on."""
    s: dict[str, Any] = {}
    s["release"], s["route"], s["regrade"] = make_units(session, world, 3)
    s["bulk"] = make_units(session, world, 2)
    [s["received"]] = make_units(session, world, 1, state="received")
    pend = make_units(session, world, 3, pending_refund=True, paid="300.00")
    refunds = dict(session.execute(select(RefundTrigger.unit_id, RefundTrigger.id).where(RefundTrigger.unit_id.in_(pend))).all())
    s["approve"], s["reject"], s["bulk_refund"] = (refunds[u] for u in pend)
    s["parcel"] = unidentified_parcel(session, world)
    s["parcel2"] = unidentified_parcel(session, world)
    s["fraud"] = serial_mismatch_case(session, world)
    [wrong_unit] = make_units(session, world, 1, product="cream", state="received", with_refund=False)
    with unit_of_work(session):
        s["wrong"] = open_exception_now(session, world.actor("worker"), "wrong_item", warehouse_id=world.wh.id,
                                       unit_id=wrong_unit, rma_id=world.rma.id,
                                       product_id=world.products["cream"].id, details={"sku": "HB-CREAM-50"}).id
    with unit_of_work(session):
        session.add(ReasonCode(code="defective", label="Defective"))
        session.add(ReasonCode(code="wrong_size", label="Wrong size"))
        session.add(ReasonCode(code="damaged_in_transit", label="Damaged in transit"))
    photo = add_photo(session, world.actor("worker"), unit_id=s["fraud"]["unit_id"], data=_jpeg(),
                      store=app.extensions["dockhand.photos"], max_bytes=10**7, idempotency_key=key())
    s["photo"] = photo.photo_id
    session.rollback()
    return s


def _rules_form(n: int = 200, note: str = "tidy up") -> dict[str, Any]:
    """The editor's form for the default rules, as a browser would post it."""
    from app.desk.rules import drafts_from_rules
    from app.disposition.domain import DEFAULT_RULES

    form: dict[str, Any] = {"count": str(len(DEFAULT_RULES)), "base_version": "0", "n": str(n), "note": note, "key": key()}
    for i, d in enumerate(drafts_from_rules(DEFAULT_RULES)):
        p = f"r{i}-"
        form.update({p + "position": d.position, p + "name": d.name, p + "disposition": d.disposition,
                     p + "refund_action": d.refund_action, p + "restocking_fee_pct": d.restocking_fee_pct, p + "enabled": "1"})
        for k, v in d.conditions.items():
            form[p + k] = [str(x) for x in v] if isinstance(v, list) else str(v).lower() if isinstance(v, bool) else str(v)
    return form


def _routes(s: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """(name, method, url, form) for every desk page and every decision."""
    fraud, parcel, parcel2 = s["fraud"], s["parcel"], s["parcel2"]
    return [
        ("landing", "GET", "/desk", None),
        ("counts", "GET", "/desk/counts", None),
        ("counts cards", "GET", "/desk/counts?view=cards", None),
        ("quarantine", "GET", "/desk/quarantine", None),
        ("refunds", "GET", "/desk/refunds", None),
        ("exceptions", "GET", "/desk/exceptions/unidentified_parcel", None),
        ("unit case", "GET", f"/desk/units/{fraud['unit_id']}", None),
        ("exception case", "GET", f"/desk/exception/{parcel['exception_id']}", None),
        ("rules", "GET", "/desk/rules", None),
        ("release", "POST", f"/desk/units/{s['release']}/decide", {"to_state": "available", "reason": "fine"}),
        ("route", "POST", f"/desk/units/{s['route']}/decide", {"to_state": "refurbish", "reason": "scuffed"}),
        ("regrade", "POST", f"/desk/units/{s['regrade']}/regrade", {"grade": "A", "packaging": "sealed", "reason": "tags found"}),
        ("dispose", "POST", f"/desk/units/{s['received']}/dispose", {"disposition": "liquidate", "reason": "slow mover"}),
        ("bulk", "POST", "/desk/quarantine/bulk", {"unit_ids": [str(i) for i in s["bulk"]], "to_state": "available", "reason": "ok"}),
        ("approve", "POST", f"/desk/refunds/{s['approve']}/decide", {"decision": "approve", "reason": "ok", "amount": "290"}),
        ("reject", "POST", f"/desk/refunds/{s['reject']}/decide", {"decision": "reject", "reason": "used"}),
        ("bulk refunds", "POST", "/desk/refunds/bulk", {"refund_ids": [str(s["bulk_refund"])], "decision": "approve", "reason": "ok"}),
        ("link", "POST", f"/desk/exception/{parcel['exception_id']}/resolve", {"action": "link", "rma": "RMA-5001", "reason": "slip"}),
        ("resolve", "POST", f"/desk/exception/{parcel2['exception_id']}/resolve", {"action": "resolve", "resolution": "no_match_kept", "reason": "none"}),
        ("fraud", "POST", f"/desk/exception/{fraud['exception_id']}/resolve", {"action": "fraud", "reason": "not ours"}),
        ("accept", "POST", f"/desk/exception/{s['wrong']}/resolve", {"action": "accept", "reason": "close enough", "credit": "10"}),
        ("preview", "POST", "/desk/rules/preview", _rules_form()),
        ("save rules", "POST", "/desk/rules", _rules_form()),
        ("reason add", "POST", "/desk/reasons", {"code": "too_small", "label": "Too small"}),
        ("reason rename", "POST", "/desk/reasons/defective", {"action": "rename", "label": "Faulty"}),
        ("reason off", "POST", "/desk/reasons/wrong_size", {"action": "deactivate"}),
    ]


def _send(client, method: str, url: str, form: dict[str, Any] | None, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    if method == "GET":
        return client.get(url, headers=headers or {})
    data = dict(form or {})
    data.setdefault("key", key())
    return client.post(url, data=data, headers=headers or {})


@pytest.mark.parametrize("role", ["worker", "admin", "partner"])
def test_role_matrix_refuses_everyone_but_supervisors(client, session, world, scene, role):
    login(client, role)
    before = row_counts(session)
    for name, method, url, form in _routes(scene):
        if role == "admin" and name.startswith("reason"):
            continue  # admins edit reason codes too, from the console (tests/web/admin/test_admin_reasons.py)
        for headers in ({}, HX):
            resp = _send(client, method, url, form, headers)
            assert resp.status_code in (403, 404), (role, name, resp.status_code)
            assert row_counts(session) == before, (role, name)
    assert client.get(f"/desk/units/{scene['release']}").status_code == 403


def test_role_matrix_anonymous_is_sent_to_sign_in(client, session, scene):
    before = row_counts(session)
    for name, method, url, form in _routes(scene):
        resp = _send(client, method, url, form)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], name
        resp = _send(client, method, url, form, HX)  # a poll or a decision after the session expired
        assert resp.status_code == 204 and resp.headers["HX-Refresh"] == "true", name
    assert row_counts(session) == before


def test_role_matrix_supervisor_succeeds_everywhere(client, session, world, scene):
    login(client, "super")
    for name, method, url, form in _routes(scene):
        before = row_counts(session)
        resp = _send(client, method, url, form, HX if method == "POST" else {})
        assert resp.status_code == 200, (name, resp.status_code, resp.get_data(as_text=True)[:400])
        if method == "POST" and name != "preview":
            assert row_counts(session)["audit"] > before["audit"], name
            assert json.loads(resp.headers["HX-Trigger"]).get("desk:changed") == {}, name
        if name == "preview":
            assert row_counts(session) == before
    session.rollback()
    assert ledger_sums(session) == balance_table(session)
    assert session.get(ReturnUnit, scene["release"]).state == "available"
    assert session.get(RefundTrigger, scene["approve"]).amount == Decimal("290.00")
    assert session.get(ReturnException, scene["parcel"]["exception_id"]).resolution == "linked_to_rma"


def test_photos_follow_the_units_scope(app, client, session, world, scene):
    url, thumb = f"/desk/photos/{scene['photo']}", f"/desk/photos/{scene['photo']}/thumb"
    expected = {"super": 200, "worker": 200, "admin": 403, "partner": 404, "outsider": 404}
    for user, status in expected.items():
        c = app.test_client()
        login(c, user)
        for u in (url, thumb):
            resp = c.get(u)
            assert resp.status_code == status, (user, u)
            if status == 200:
                assert resp.mimetype == "image/jpeg" and resp.data[:2] == b"\xff\xd8"
    c = app.test_client()
    login(c, "super")
    full, small = c.get(url).data, c.get(thumb).data
    assert full != small
    assert c.get("/desk/photos/999999").status_code == 404
    assert c.get("/desk/photos/abc").status_code == 404


def test_pages_and_fragments(client, scene):
    login(client, "super")
    page = client.get("/desk/quarantine")
    assert page.status_code == 200 and "<html" in page.get_data(as_text=True)
    assert "HX-Request" in page.headers["Vary"]
    frag = client.get("/desk/quarantine", headers=HX)
    body = frag.get_data(as_text=True)
    assert "<html" not in body and body.lstrip().startswith('<div id="queue"')
    case = client.get(f"/desk/units/{scene['fraud']['unit_id']}", headers=HX).get_data(as_text=True)
    assert 'id="case"' in case and "<html" not in case
    restore = client.get("/desk/quarantine", headers={**HX, "HX-History-Restore-Request": "true"})
    assert "<html" in restore.get_data(as_text=True)
    counts = client.get("/desk/counts", headers=HX).get_data(as_text=True)
    assert 'hx-trigger="every 10s, desk:changed from:body"' in counts and "load" not in counts
    landing = client.get("/desk").get_data(as_text=True)
    assert 'id="desk-counts"' in landing and "every 10s" in landing


def test_case_page_shows_the_file(client, scene):
    login(client, "super")
    body = client.get(f"/desk/units/{scene['fraud']['unit_id']}").get_data(as_text=True)
    for text in ("SN-FAKE-9", "SN-PHONE-0001", "serial mismatch", "No prior returns", "Timeline",
                 "Received LP", "Refund for LP", "pending approval", f"/desk/photos/{scene['photo']}/thumb",
                 f"/desk/photos/{scene['photo']}\"", "Confirm fraud", "Release to stock", "Grade A"):
        assert text in body, text
    assert "Dana Buyer" not in body  # the customer's history, not who they are
    for raw in ("Ledger:", "Audit:", "Event:", "return rate 100%", "unit.", "refund."):  # each step once, in words
        assert raw not in body.split('id="tl-h"')[1], raw


def test_row_decision_removes_the_row_and_refreshes_counts(client, session, scene):
    login(client, "super")
    row = f'id="row-unit-{scene["release"]}"'
    assert row in client.get("/desk/quarantine").get_data(as_text=True)
    total_before = client.get("/desk/counts").get_data(as_text=True)
    waiting = re.search(r"<strong data-total>(\d+)</strong>", client.get("/desk/quarantine").get_data(as_text=True))
    resp = client.post(f"/desk/units/{scene['release']}/decide", headers=HX,
                       data={"to_state": "available", "reason": "fine", "key": key(), "context": "row",
                             "next": "/desk/quarantine?sort=value",
                             "version": _version(session, ReturnUnit, scene["release"])})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200
    meta = re.search(r'<p id="queue-meta"[^>]*hx-swap-oob="true"[^>]*>.*?<strong data-total>(\d+)</strong>', body, flags=re.S)
    assert meta and int(meta.group(1)) == int(waiting.group(1)) - 1  # the queue's own total, recounted
    rest = re.sub(r'<div id="messages".*?</div>', "", body, flags=re.S)
    assert re.sub(r'<p id="queue-meta".*?</p>', "", rest, flags=re.S).strip() == ""  # the row swaps to nothing
    assert 'hx-swap-oob="true"' in body and "available" in body
    assert json.loads(resp.headers["HX-Trigger"])["desk:changed"] == {}
    assert row not in client.get("/desk/quarantine").get_data(as_text=True)
    assert client.get("/desk/counts").get_data(as_text=True) != total_before


def test_second_supervisor_sees_already_decided_by(app, client, session, scene):
    v = _version(session, ReturnUnit, scene["release"])
    login(client, "super")
    other = app.test_client()
    login(other, "super2")
    ok = client.post(f"/desk/units/{scene['release']}/decide", headers=HX,
                     data={"to_state": "available", "reason": "fine", "key": key(), "version": v, "context": "unit"})
    assert ok.status_code == 200 and 'id="case"' in ok.get_data(as_text=True)
    before = row_counts(session)
    late = other.post(f"/desk/units/{scene['release']}/decide", headers=HX,
                      data={"to_state": "disposed", "reason": "junk", "key": key(), "version": v, "context": "row"})
    assert late.status_code == 409
    assert "already decided by Super" in late.get_data(as_text=True)
    assert late.headers["HX-Retarget"] == "#messages"
    assert row_counts(session) == before
    plain = other.post(f"/desk/units/{scene['release']}/decide",
                       data={"to_state": "disposed", "reason": "junk", "key": key(), "version": v})
    assert plain.status_code == 409 and "already decided by Super" in plain.get_data(as_text=True)


def test_four_eyes_through_the_desk(client, app, session, world):
    [uid] = make_units(session, world, 1, inspector="super", pending_refund=True, paid="400.00")
    refund_id = session.scalar(select(RefundTrigger.id).where(RefundTrigger.unit_id == uid))
    session.rollback()
    login(client, "super")
    page = client.get(f"/desk/units/{uid}").get_data(as_text=True)
    assert "another supervisor must decide its refund" in page and "Approve refund" not in page
    before = row_counts(session)
    for decision in ("approve", "reject"):
        resp = client.post(f"/desk/refunds/{refund_id}/decide", headers=HX,
                           data={"decision": decision, "reason": "mine", "key": key()})
        assert resp.status_code == 403 and "You inspected this unit" in resp.get_data(as_text=True)
    assert row_counts(session) == before
    spanish = client.post(f"/desk/refunds/{refund_id}/decide", headers={**HX, "Accept-Language": "es"},
                          data={"decision": "approve", "reason": "mine", "key": key()})
    assert spanish.status_code == 403 and "Inspeccionaste esta unidad: otro supervisor" in spanish.get_data(as_text=True)
    other = app.test_client()
    login(other, "super2")
    resp = other.post(f"/desk/refunds/{refund_id}/decide", headers=HX,
                      data={"decision": "approve", "reason": "ok", "key": key(), "context": "unit", "unit_id": uid})
    assert resp.status_code == 200 and "Refund released to finance" in resp.get_data(as_text=True)


def test_bulk_through_the_web(client, session, world):
    ids = make_units(session, world, 3)
    login(client, "super")
    form = {"unit_ids": [str(i) for i in ids] + ["junk", "-4"], "to_state": "available", "reason": "ok", "key": key(),
            "context": "queue", **{f"v-{i}": str(_version(session, ReturnUnit, i)) for i in ids}}
    resp = client.post("/desk/quarantine/bulk", data=form, headers=HX)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200 and body.lstrip().startswith('<div id="queue"') and "3 done" in body
    assert not session.scalars(select(ReturnUnit.id).where(ReturnUnit.state == "quarantine")).all()
    audits = session.scalars(select(AuditEntry).where(AuditEntry.action == "unit.released")).all()
    assert len(audits) == 3
    resp = client.post("/desk/quarantine/bulk", data={"to_state": "available", "reason": "ok", "key": key()}, headers=HX)
    assert resp.status_code == 422 and "Tick at least one" in resp.get_data(as_text=True)
    spanish = client.post("/desk/quarantine/bulk", data={"to_state": "available", "reason": "ok", "key": key()},
                          headers={**HX, "Accept-Language": "es"})
    assert spanish.status_code == 422 and "Marca antes al menos un elemento." in spanish.get_data(as_text=True)
    again = client.post("/desk/quarantine/bulk", data={"unit_ids": [str(ids[0])], "to_state": "available",
                                                       "reason": "ok", "key": key()}, headers=HX)
    assert again.status_code == 409 and "Nothing was done" in again.get_data(as_text=True)
    [fresh] = make_units(session, world, 1)
    plain = client.post("/desk/quarantine/bulk?sort=value", data={"unit_ids": [str(fresh)], "to_state": "available",
                                                                  "reason": "ok", "key": key()})
    assert plain.status_code == 302 and "sort=value" in plain.headers["Location"]


def test_link_parcel_through_the_web(client, session, world, scene):
    login(client, "super")
    exc_id = scene["parcel"]["exception_id"]
    bad = client.post(f"/desk/exception/{exc_id}/resolve", headers=HX,
                      data={"action": "link", "rma": "RMA-0000", "reason": "x", "key": key(), "context": "exception"})
    assert bad.status_code == 422 and "No return matches" in bad.get_data(as_text=True)
    ok = client.post(f"/desk/exception/{exc_id}/resolve", headers=HX,
                     data={"action": "link", "rma": "RMA-5001", "reason": "slip in the box", "key": key(),
                           "context": "exception", "version": _version(session, ReturnException, exc_id)})
    body = ok.get_data(as_text=True)
    assert ok.status_code == 200 and 'id="xcase"' in body and "Parcel linked to RMA-5001" in body
    assert "Linked to its return" in body


def test_rules_editor_preview_errors_and_save(client, session, world, scene):
    login(client, "super")
    page = client.get("/desk/rules").get_data(as_text=True)
    assert "High-value electronics not like new" in page and "+ Add a rule" in page
    assert 'restocking_fee_pct" value="0.15"' in page and "0.1500" not in page  # as a person writes it
    form = _rules_form()
    form["r0-grade_in"] = ["Z"]
    form["r3-value_gt"] = "lots"
    bad = client.post("/desk/rules/preview", data=form, headers=HX)
    body = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "is not a grade" in body and "value_gt must be a money amount" in body
    assert body.lstrip().startswith('<div id="rules-editor"')
    form = _rules_form(n=50)
    form["r10-position"] = "1"
    form["r10-disposition"] = "liquidate"
    preview = client.post("/desk/rules/preview", data=form, headers=HX).get_data(as_text=True)
    assert "Preview on the last" in preview and "would be decided differently" in preview
    before = row_counts(session)
    saved = client.post("/desk/rules", data=form, headers=HX)
    assert saved.status_code == 200 and "Rules saved as version" in saved.get_data(as_text=True)
    after = row_counts(session)
    assert after["rule_versions"] == before["rule_versions"] + 1 and after["audit"] == before["audit"] + 1
    stale = client.post("/desk/rules", data={**form, "key": key()}, headers=HX)
    assert stale.status_code == 409 and "already changed by Super" in stale.get_data(as_text=True)
    junk = client.post("/desk/rules", data={"count": "zzz", "key": key(), "note": "x"}, headers=HX)
    assert junk.status_code == 422 and "Keep at least one rule" in junk.get_data(as_text=True)
    empty_note = client.post("/desk/rules", data={**_rules_form(note=""), "base_version": str(after["rule_versions"])}, headers=HX)
    assert empty_note.status_code == 422 and "reason is required" in empty_note.get_data(as_text=True)


def test_reason_codes_through_the_web(client, session, scene):
    login(client, "super")
    ok = client.post("/desk/reasons", data={"code": "too_small", "label": "Too small", "key": key()}, headers=HX)
    assert ok.status_code == 200 and 'id="reasons"' in ok.get_data(as_text=True) and "too_small" in ok.get_data(as_text=True)
    dup = client.post("/desk/reasons", data={"code": "too_small", "label": "Again", "key": key()}, headers=HX)
    assert dup.status_code == 409
    bad = client.post("/desk/reasons", data={"code": "Bad Code!", "label": "x", "key": key()}, headers=HX)
    assert bad.status_code == 422
    missing = client.post("/desk/reasons/nope", data={"action": "deactivate", "key": key()}, headers=HX)
    assert missing.status_code == 404


JUNK_GETS = [
    "/desk/units/999999", "/desk/units/abc", "/desk/units/-1", "/desk/units/99999999999999999999999",
    "/desk/exception/999999", "/desk/exception/x", "/desk/exceptions/nope", "/desk/exceptions/%00",
    "/desk/quarantine?sort=drop&order=x&page=-1&per_page=1e9&warehouse=abc&type=%27&reason=%3Cb%3E&channel=" + "x" * 300,
    "/desk/refunds?page=999999&sort=value&order=asc", "/desk/exceptions/wrong_item?page=abc&warehouse=99999999999999999999",
    "/desk/counts?view=%00", "/desk/photos/0", "/desk/photos/0/thumb",
]


def test_no_junk_gives_a_500(client, scene):
    login(client, "super")
    for url in JUNK_GETS:
        for headers in ({}, HX):
            resp = client.get(url, headers=headers)
            expected = (400,) if "%00" in url else (200, 404)  # a NUL character is refused outright
            assert resp.status_code in expected, (url, resp.status_code)
    posts = [
        (f"/desk/units/{scene['route']}/decide", {"to_state": "moon", "reason": "x", "version": "abc"}),
        (f"/desk/units/{scene['route']}/decide", {"to_state": "available", "reason": "", "version": "-5"}),
        (f"/desk/units/{scene['route']}/decide", {"to_state": "available", "reason": "x" * 600}),
        (f"/desk/units/{scene['route']}/decide", {"to_state": "available", "reason": "x", "key": "short"}),
        ("/desk/units/999999/decide", {"to_state": "available", "reason": "x"}),
        (f"/desk/units/{scene['regrade']}/regrade", {"grade": "Z", "packaging": "box", "reason": "x"}),
        (f"/desk/units/{scene['route']}/dispose", {"disposition": "eat", "reason": "x"}),
        (f"/desk/units/{scene['route']}/dispose", {"disposition": "", "reason": "x"}),
        (f"/desk/refunds/{scene['approve']}/decide", {"decision": "approve", "reason": "x", "amount": "1e999"}),
        (f"/desk/refunds/{scene['approve']}/decide", {"decision": "approve", "reason": "x", "amount": "Infinity"}),
        (f"/desk/refunds/{scene['approve']}/decide", {"decision": "approve", "reason": "x", "amount": "-0.01"}),
        (f"/desk/refunds/{scene['approve']}/decide", {"decision": "burn", "reason": "x"}),
        ("/desk/refunds/999999/decide", {"decision": "approve", "reason": "x"}),
        ("/desk/refunds/bulk", {"refund_ids": ["x", "99999"], "decision": "approve", "reason": "x"}),
        (f"/desk/exception/{scene['parcel']['exception_id']}/resolve", {"action": "accept", "reason": "x"}),
        (f"/desk/exception/{scene['parcel']['exception_id']}/resolve", {"action": "fraud", "reason": "x"}),
        (f"/desk/exception/{scene['parcel']['exception_id']}/resolve", {"action": "link", "rma": "x" * 500, "reason": "x"}),
        (f"/desk/exception/{scene['wrong']}/resolve", {"action": "accept", "reason": "x", "credit": "NaN", "rma_line_id": "9999"}),
        (f"/desk/exception/{scene['wrong']}/resolve", {"action": "accept", "reason": "x", "rma_line_id": "99999"}),
        (f"/desk/exception/{scene['wrong']}/resolve", {"action": "nonsense", "reason": "x", "resolution": "zz"}),
        ("/desk/exception/999999/resolve", {"action": "resolve", "resolution": "accepted", "reason": "x"}),
        ("/desk/rules/preview", {"count": "99999999", "n": "abc"}),
        ("/desk/rules/preview", {"count": "1", "r0-name": "x", "r0-position": "abc", "r0-value_gt": "1e9999",
                                 "r0-customer_return_rate_gte": "2", "r0-restocking_fee_pct": "zz", "r0-disposition": "?"}),
        ("/desk/reasons", {"code": "", "label": ""}),
        ("/desk/reasons/" + "x" * 300, {"action": "rename", "label": ""}),
    ]
    for url, form in posts:
        for headers in ({}, HX):
            resp = client.post(url, data={"key": key(), **form}, headers=headers)
            assert 400 <= resp.status_code < 500, (url, form, resp.status_code, resp.get_data(as_text=True)[:300])


def test_a_decision_that_committed_is_never_shown_as_an_error(client, session, world, scene):
    """A tampered or stale unit id in the case-page form must not turn a saved decision into an error."""
    login(client, "super")
    resp = client.post(f"/desk/refunds/{scene['reject']}/decide", headers={"HX-Request": "true"},
                       data={"decision": "reject", "reason": "not ours", "key": "tamper-key-0001",
                             "context": "unit", "unit_id": "999999"})
    assert resp.status_code == 200, resp.data[:300]
    session.rollback()
    assert session.scalar(select(RefundTrigger.status).where(RefundTrigger.id == scene["reject"])) == "rejected"
