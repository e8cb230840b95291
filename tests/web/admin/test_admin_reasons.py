"""Reason codes in the console: an admin (as a supervisor at the rules) adds a code with whether
such returns are avoidable and who is responsible, reclassifies one, audited with before and after;
workers and partners may not; bad values change nothing."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from app.disposition.models import ReasonCode
from app.ledger.models import AuditEntry
from tests.conftest import login

HX = {"HX-Request": "true"}


def key() -> str:
    return uuid.uuid4().hex


def _codes(session) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    session.rollback()
    return {r.code: (r.label, r.active, r.avoidable, r.responsible_party)
            for r in session.scalars(select(ReasonCode).execution_options(populate_existing=True))}


@pytest.mark.parametrize("username", ["worker", "partner"])
def test_workers_and_partners_may_not_edit_reason_codes(client, world, session, username):
    login(client, username)
    before = _codes(session)
    assert client.get("/admin/reasons").status_code == 403
    assert client.post("/desk/reasons", data={"key": key(), "code": "too_small", "label": "Too small"}).status_code == 403
    assert client.post("/desk/reasons/defective", data={"key": key(), "action": "classify", "avoidable": "yes"}).status_code == 403
    assert _codes(session) == before


def test_an_admin_adds_and_classifies_reason_codes_audited(client, world, session):
    login(client, "admin")
    page = client.get("/admin/reasons")
    assert page.status_code == 200 and b"Avoidable" in page.data and b"product content" in page.data
    form = {"key": key(), "code": "too_small", "label": "Too small", "avoidable": "yes", "responsible_party": "product_content",
            "next": "/admin/reasons"}
    added = client.post("/desk/reasons", data=form, headers=HX)
    assert added.status_code == 200 and b"too_small" in added.data
    assert client.post("/desk/reasons", data=form, headers=HX).status_code == 200  # resent: the same answer
    assert _codes(session)["too_small"] == ("Too small", True, True, "product_content")
    changed = client.post("/desk/reasons/too_small", data={"key": key(), "action": "classify", "avoidable": "no",
                                                          "responsible_party": "carrier"}, headers=HX)
    assert changed.status_code == 200
    assert _codes(session)["too_small"] == ("Too small", True, False, "carrier")
    entries = session.scalars(select(AuditEntry).where(AuditEntry.entity_type == "reason_code").order_by(AuditEntry.id)).all()
    assert [e.action for e in entries] == ["reason_code.added", "reason_code.classified"]
    assert entries[1].details["before"]["responsible_party"] == "product_content"
    assert entries[1].details["after"]["responsible_party"] == "carrier"
    plain = client.post("/desk/reasons/too_small", data={"key": key(), "action": "deactivate", "next": "/admin/reasons"})
    assert plain.status_code == 302 and plain.headers["Location"].endswith("/admin/reasons")
    log = client.get("/admin/audit").get_data(as_text=True)
    assert "reason code deactivated" in log and "avoidable: False" in log


@pytest.mark.parametrize("form", [{"action": "classify", "avoidable": "maybe"},
                                  {"action": "classify", "responsible_party": "the moon"},
                                  {"action": "rename", "label": ""}, {"action": "rename", "label": "x" * 121}])
def test_a_bad_classification_is_refused_and_changes_nothing(client, world, session, form):
    login(client, "admin")
    before = _codes(session)
    audits = session.scalar(select(func.count()).select_from(AuditEntry))
    resp = client.post("/desk/reasons/defective", data={"key": key(), **form}, headers=HX)
    assert resp.status_code == 422
    assert _codes(session) == before and session.scalar(select(func.count()).select_from(AuditEntry)) == audits
