"""Checklist versions under concurrency: saves at once each get their own number, and the same
form's key at once makes one version (PostgreSQL: real row locks)."""
from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import select

from app.admin.services import save_checklist
from app.inspection.models import ChecklistVersion


def _at_once(session_factory, actor, calls):  # type: ignore[no-untyped-def]
    """Run save_checklist for each (text, key) in its own session and thread, started together."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = []

    def one(text: str, key: str) -> None:
        s = session_factory()
        try:
            barrier.wait()
            results.append(save_checklist(s, actor, category="apparel", text=text, note="at once", idempotency_key=key))
        except Exception as exc:  # noqa: BLE001 - kept for the assertion
            results.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=one, args=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.pg_only
def test_saves_at_once_are_numbered_one_after_the_other(session, session_factory, world):
    admin = world.actor("admin")
    results = _at_once(session_factory, admin, [(f"k{n} | Item {n}", uuid.uuid4().hex) for n in range(4)])
    assert not [r for r in results if isinstance(r, Exception)], results
    session.rollback()
    assert session.scalars(select(ChecklistVersion.version).where(ChecklistVersion.category == "apparel")
                           .order_by(ChecklistVersion.version)).all() == [1, 2, 3, 4, 5]


@pytest.mark.pg_only
def test_the_same_key_at_once_makes_one_version(session, session_factory, world):
    key = uuid.uuid4().hex
    results = _at_once(session_factory, world.actor("admin"), [("k | Item", key)] * 3)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert {r.version for r in results} == {2} and sum(not r.replayed for r in results) == 1  # type: ignore[union-attr]
    session.rollback()
    assert len(session.scalars(select(ChecklistVersion).where(ChecklistVersion.category == "apparel")).all()) == 2
