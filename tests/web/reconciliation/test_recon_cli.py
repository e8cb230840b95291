"""`flask reconcile`: the timer compares each source's newest snapshot and publishes its summary."""
from __future__ import annotations

from sqlalchemy import select

from app.ledger.models import OutboxEvent
from tests.recon_scenario import accepted, build_history, make_source


def test_the_command_compares_the_newest_snapshot_of_each_source(app, session, world):
    source_id = make_source(session, world)
    t, _units = build_history(session, world)
    sup = world.actor("super")
    for when in (t.replace(microsecond=0), t):  # the second is the newer
        kept, _done = accepted(session, sup, source_id, when)
    session.rollback()
    before = session.scalars(select(OutboxEvent.id).where(OutboxEvent.type == "reconciliation.completed")).all()
    out = app.test_cli_runner().invoke(args=["reconcile"])
    assert out.exit_code == 0, out.output
    assert "FASTLANE as of" in out.output and "2 over" in out.output and "1 source(s) compared" in out.output
    session.rollback()
    events = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "reconciliation.completed",
                                                       OutboxEvent.id.not_in(before))).all()
    assert [e.payload["snapshot_id"] for e in events] == [kept.id]
    assert events[0].payload["short"] == 2
