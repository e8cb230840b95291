"""The schema migrates, the world builds, the ledger moves a unit on both databases."""
from dataclasses import replace

from sqlalchemy import select

from app.ledger.models import LedgerEntry
from app.ledger.services import balance_table, ledger_sums, transition_unit
from tests.helpers import receive_unit


def test_receive_and_move(session, world):
    worker = world.actor("worker")
    unit = receive_unit(session, world, "shirt", worker, with_refund=False)
    result = transition_unit(session, worker, unit_id=unit.id, to_state="available", reason="grade A",
                             idempotency_key="key-00000001")
    assert result.state == "available" and result.replayed is False
    again = transition_unit(session, worker, unit_id=unit.id, to_state="available", reason="grade A",
                            idempotency_key="key-00000001")
    assert again.replayed is True and replace(again, replayed=False) == result
    moves = session.execute(select(LedgerEntry.from_state, LedgerEntry.to_state, LedgerEntry.idempotency_key)
                            .where(LedgerEntry.unit_id == unit.id).order_by(LedgerEntry.id)).all()
    assert [tuple(m) for m in moves] == [(None, "received", None), ("received", "available", "key-00000001")]
    assert ledger_sums(session) == balance_table(session) == {(unit.product_id, world.wh.id, "available"): 1}
    assert unit.lpn == "LP00000001"
