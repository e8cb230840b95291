"""The schema migrates, the world builds, the ledger moves a unit on both databases."""
from app.ledger.models import ReturnUnit
from app.ledger.services import apply_transition, balance_table, ledger_sums, transition_unit
from tests.helpers import new_lpn
from app.db import unit_of_work


def test_receive_and_move(session, world):
    worker = world.actor("worker")
    with unit_of_work(session):
        unit = ReturnUnit(lpn=new_lpn(session), product_id=world.products["shirt"].id, warehouse_id=world.wh.id,
                          merchant_id=world.merchant.id)
        apply_transition(session, worker, unit, "received", reason="received", to_location=world.loc(world.wh, "dock"))
    result = transition_unit(session, worker, unit_id=unit.id, to_state="available", reason="grade A",
                             idempotency_key="key-00000001")
    assert result["state"] == "available" and result["replayed"] is False
    again = transition_unit(session, worker, unit_id=unit.id, to_state="available", reason="grade A",
                            idempotency_key="key-00000001")
    assert again["replayed"] is True and again["ledger_id"] == result["ledger_id"]
    assert ledger_sums(session) == balance_table(session) == {(unit.product_id, world.wh.id, "available"): 1}
    assert unit.lpn == "LP00000001"
