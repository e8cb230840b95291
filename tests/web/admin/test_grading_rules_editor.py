"""The checklist editor's grading rules: saved with the checklist's version, shown again, carried by
a restore; bad rules get a message naming the line and change nothing (never a 500)."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from app.inspection.models import ChecklistVersion
from app.ledger.models import AuditEntry, IdempotencyRecord
from tests.conftest import login

HX = {"HX-Request": "true"}
ITEMS = "seal_intact | Seal intact\nall_parts | All parts present\npowers_on | Powers on"
RULES = "seal_intact = yes -> grade A, skip the rest\nall_parts = no -> deduct 10%"


def counts(session) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
    session.rollback()
    return tuple(session.scalar(select(func.count()).select_from(m)) for m in (ChecklistVersion, AuditEntry, IdempotencyRecord))


def newest(session, code="electronics"):  # type: ignore[no-untyped-def]
    session.rollback()
    return session.scalars(select(ChecklistVersion).where(ChecklistVersion.category == code)
                           .order_by(ChecklistVersion.version.desc()).limit(1)).one()


def test_rules_are_saved_with_the_version_shown_again_and_restored(client, world, session):
    login(client, "admin")
    before = newest(session).version
    form = {"key": uuid.uuid4().hex, "items": ITEMS, "rules": RULES, "note": "seal rule"}
    saved = client.post("/admin/checklists/electronics", data=form, headers=HX)
    assert saved.status_code == 200 and f"Version {before + 1} saved" in saved.get_data(as_text=True)
    again = client.post("/admin/checklists/electronics", data=form, headers=HX)  # the same form sent twice
    assert again.status_code == 200 and newest(session).version == before + 1
    v = newest(session)
    assert v.rules == [{"key": "seal_intact", "answer": True, "grade": "A", "skip": True, "pct": None, "amount": None},
                       {"key": "all_parts", "answer": False, "grade": None, "skip": False, "pct": "0.1000", "amount": None}]
    page = client.get("/admin/checklists/electronics").get_data(as_text=True)
    assert "seal_intact = yes -&gt; grade A, skip the rest" in page and "all_parts = no -&gt; deduct 10%" in page
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "checklist.saved").order_by(AuditEntry.id.desc())).first()
    assert audit.details["after"]["rules"] == RULES
    # only the rules change: a new version; the same again: nothing to save
    changed = client.post("/admin/checklists/electronics", headers=HX,
                          data={**form, "key": uuid.uuid4().hex, "rules": "all_parts = no -> deduct 2.50"})
    assert changed.status_code == 200 and newest(session).rules[0]["amount"] == "2.50"
    restore = client.post("/admin/checklists/electronics/restore", headers=HX,
                          data={"key": uuid.uuid4().hex, "version": str(before + 1)})
    assert restore.status_code == 200 and newest(session).rules == v.rules


@pytest.mark.parametrize("rules, says", [
    ("sealed = yes -> grade A", "Line 1: sealed is not a key of this checklist."),
    ("seal_intact = yes -> grade Z", "Line 1: a grade is A, B, C or D"),
    ("\n\nall_parts = no -> deduct 250%", "Line 3: a deduction in percent is more than 0 and at most 100"),
    ("all_parts = no -> deduct 1e9", "Line 1: a fixed deduction is an amount"),
    ("all_parts = no -> refund twice", "is not an action"),
    ("all_parts no", "write a rule as key = yes"),
    ("all_parts = no -> deduct 5%\nall_parts = no -> deduct 6%", "already has a rule (line 1)"),
    ("seal_intact = yes -> grade A\x00", "NUL"),
    ("x" * 20_000, "under 10000"),
    ("s\u00e9al = yes -> grade A", "is not a key"),
])
def test_bad_rules_get_a_message_and_change_nothing(client, world, session, rules, says):
    login(client, "admin")
    before = counts(session)
    resp = client.post("/admin/checklists/electronics", headers=HX,
                       data={"key": uuid.uuid4().hex, "items": ITEMS, "rules": rules, "note": "try"})
    body = resp.get_data(as_text=True)
    assert 400 <= resp.status_code < 500, (resp.status_code, body[:300])
    if says != "NUL":
        assert resp.status_code == 422 and says in body, body[:500]
    assert counts(session) == before


def test_rules_need_the_items_they_name_in_the_same_version(client, world, session):
    """Dropping an item that a rule names is refused with the rule's line: no rule points at nothing."""
    login(client, "admin")
    before = counts(session)
    resp = client.post("/admin/checklists/electronics", headers=HX,
                       data={"key": uuid.uuid4().hex, "items": "powers_on | Powers on", "rules": RULES, "note": "drop"})
    assert resp.status_code == 422 and "seal_intact is not a key of this checklist" in resp.get_data(as_text=True)
    assert counts(session) == before
