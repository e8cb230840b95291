"""`flask reconcile`: the timer compares each source's newest snapshot and publishes its summary."""
from __future__ import annotations

from sqlalchemy import select

from app.ledger.models import OutboxEvent
from app.reconciliation import services
from tests.helpers import new_key
from tests.recon_scenario import SNAPSHOT, build_history, make_source


def test_the_command_compares_the_newest_snapshot_of_each_source(app, session, world):
    source_id = make_source(session, world)
    t, _units = build_history(session, world)
    sup = world.actor("super")
    for when in (t.replace(microsecond=0).isoformat(), t.isoformat()):  # the second is the newer
        kept = services.upload_snapshot(session, sup, source_id=source_id, as_of=when, filename="s.csv",
                                        content=SNAPSHOT.encode(), idempotency_key=new_key())
        services.accept_snapshot(session, sup, snapshot_id=kept.id, confirm_zero_out=False, idempotency_key=new_key())
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
