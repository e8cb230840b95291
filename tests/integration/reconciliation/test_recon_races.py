"""Real races on PostgreSQL: ten supervisors sending the same correction with one key, and ten
different keys marking the same unit missing: one move in the ledger either way."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from app.errors import Conflict
from app.ledger.models import LedgerEntry
from app.ledger.services import balance_table, ledger_sums
from app.reconciliation import services
from app.reconciliation.models import ReconCorrection, ReconVariance
from tests.helpers import new_key
from tests.integration.ledger.test_concurrency import _split, race, racing_sessions  # noqa: F401 - the fixture
from tests.recon_scenario import THRESHOLD, accepted, build_history, make_source

pytestmark = pytest.mark.pg_only


def _line_and_cream(session, world):  # type: ignore[no-untyped-def]
    source_id = make_source(session, world)
    t, units = build_history(session, world)
    accepted(session, world.actor("super"), source_id, t)
    line_id = session.scalar(select(ReconVariance.id).where(ReconVariance.state == "quarantine"))
    cream = units["creams"][0]
    found = (line_id, SimpleNamespace(id=cream.id, lpn=cream.lpn))  # plain values: the threads share no session
    session.rollback()
    return found


def _moves(session, unit_id: int) -> int:
    n = session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.unit_id == unit_id))
    session.rollback()
    return int(n)


def test_the_same_correction_key_sent_at_once_moves_the_unit_once(session, world, racing_sessions):
    line_id, cream = _line_and_cream(session, world)
    sup, key, before = world.actor("super"), new_key("race"), _moves(session, cream.id)
    outcomes = race(racing_sessions, 10, lambda s, i: services.correct_unit(
        s, sup, variance_id=line_id, lpn=cream.lpn, found=False, reason="gone", threshold=THRESHOLD, idempotency_key=key))
    wins, errors = _split(outcomes)
    assert not errors and len(wins) == 10 and sum(1 for r in wins if not r.replayed) == 1
    assert _moves(session, cream.id) - before == 1
    assert session.scalar(select(func.count()).select_from(ReconCorrection)) == 1
    assert ledger_sums(session) == balance_table(session)


def test_ten_keys_marking_one_unit_missing_at_once_move_it_once(session, world, racing_sessions):
    line_id, cream = _line_and_cream(session, world)
    sup, before = world.actor("super"), _moves(session, cream.id)
    outcomes = race(racing_sessions, 10, lambda s, i: services.correct_unit(
        s, sup, variance_id=line_id, lpn=cream.lpn, found=False, reason=f"gone {i}", threshold=THRESHOLD, idempotency_key=new_key()))
    wins, errors = _split(outcomes)
    # The first to lock the unit takes it to missing; the nine after it find it missing already.
    assert len(wins) == 1 and len(errors) == 9 and all(isinstance(e, Conflict) for e in errors), errors
    assert _moves(session, cream.id) - before == 1
    assert ledger_sums(session) == balance_table(session)
