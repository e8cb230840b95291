"""How a request ends its transaction: one that only read is committed, so psycopg keeps the
connection's prepared statements; one that wrote outside a unit of work, or failed, is rolled back."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text

from app.db import db
from app.orders.models import Rma
from tests.conftest import login

HX = {"HX-Request": "true"}


def _prepared(app) -> set[str]:  # type: ignore[no-untyped-def]
    """The statements prepared on the app's pooled connection (the test client reuses the one)."""
    with app.app_context():
        names = set(db.session.execute(text("SELECT statement FROM pg_prepared_statements")).scalars())
        db.session.rollback()
    return names


@pytest.mark.pg_only
def test_read_only_requests_keep_the_prepared_statements(app, client, world):
    """psycopg prepares a statement on its sixth run and forgets them all on a rollback. The
    handheld loads a page or a fragment after nearly every scan; if each of those rolled back,
    no statement would ever stay prepared."""
    login(client, "worker")
    for _ in range(8):
        assert client.get("/receive", headers=HX).status_code == 200
    prepared = _prepared(app)
    assert any("FROM users" in sql for sql in prepared), prepared


def test_a_request_that_wrote_without_committing_is_rolled_back(app, world):
    """Only a unit of work commits. A request that sent an UPDATE and ended without committing
    (a bug somewhere) must not have it committed by the end of the request."""
    rma_id = world.rma.id
    with app.test_request_context("/"):
        db.session.execute(select(Rma.id)).all()
        db.session.execute(text("UPDATE rmas SET status = 'closed' WHERE id = :id"), {"id": rma_id})
    with app.app_context():
        assert db.session.get(Rma, rma_id).status != "closed"


def test_a_request_that_failed_is_rolled_back(app, world):
    rma_id = world.rma.id
    with pytest.raises(RuntimeError):
        with app.test_request_context("/"):
            db.session.execute(text("UPDATE rmas SET status = 'closed' WHERE id = :id"), {"id": rma_id})
            raise RuntimeError("the view failed")
    with app.app_context():
        assert db.session.get(Rma, rma_id).status != "closed"
