"""How a request ends its transaction (app.db.Database._end_request): one that only read is
committed, so psycopg keeps the connection's prepared statements; one that wrote, or holds
unflushed changes, is rolled back; a broken session never breaks the end of the request."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from app.db import db
from app.orders.models import Rma
from tests.conftest import login

HX = {"HX-Request": "true"}

pytestmark = pytest.mark.pg_only  # SQLite rolls back every open transaction: nothing to tell apart there


def _backend_and_prepared(app) -> tuple[int, set[str]]:  # type: ignore[no-untyped-def]
    """The pooled connection's backend and the statements prepared on it."""
    with app.app_context():
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        names = set(db.session.execute(text("SELECT statement FROM pg_prepared_statements")).scalars())
        db.session.rollback()
    return pid, names


def test_read_only_requests_keep_the_prepared_statements(app, client, world):
    """psycopg prepares a statement on its sixth run and forgets them all on a rollback. The
    handheld loads a page or a fragment after nearly every scan; if each of those rolled back,
    no statement would ever stay prepared."""
    login(client, "worker")
    pid, _ = _backend_and_prepared(app)
    for _ in range(8):
        assert client.get("/receive", headers=HX).status_code == 200
    after, prepared = _backend_and_prepared(app)
    assert after == pid  # one pooled connection throughout
    assert any("FROM users" in sql for sql in prepared), prepared


def test_a_request_that_wrote_without_committing_is_rolled_back(app, world):
    """Only a unit of work commits. A request that sent an UPDATE and ended without committing
    (a bug somewhere) must not have it committed by the end of the request."""
    rma_id = world.rma.id
    with app.test_request_context("/"):
        db.session.execute(text("UPDATE rmas SET status = 'closed' WHERE id = :id"), {"id": rma_id})
    with app.app_context():
        assert db.session.get(Rma, rma_id).status != "closed"


def test_unflushed_changes_are_not_committed_at_the_end_of_a_request(app, world):
    rma_id = world.rma.id
    with app.test_request_context("/"):
        db.session.get(Rma, rma_id).status = "closed"  # read, then changed in memory only
    with app.app_context():
        assert db.session.get(Rma, rma_id).status != "closed"


def test_a_request_whose_connection_died_ends_cleanly_and_the_next_one_works(app, client, world):
    """A view may catch a failed statement (the health check does), here a dropped connection
    (PostgreSQL restarted, say). The end of the request must not raise, and the next request
    must get a working connection."""
    with app.test_request_context("/"):
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with db.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(OperationalError):
            db.session.execute(text("SELECT 1"))  # the view catches this
    login(client, "worker")
    assert client.get("/receive", headers=HX).status_code == 200
    assert client.get("/health").get_json()["database"] == "ok"


def test_refused_requests_keep_the_prepared_statements(app, client, world):
    """A refusal (here a unit that does not exist: 404 from its error handler) ends its read-only
    transaction the same way, so a worker's mistyped codes do not cost the dock its prepared statements."""
    login(client, "worker")
    pid, _ = _backend_and_prepared(app)
    for _ in range(8):
        assert client.get("/receive/units/999999", headers=HX).status_code == 404
    after, prepared = _backend_and_prepared(app)
    assert after == pid
    assert any("FROM users" in sql for sql in prepared), prepared


def _kill_backend(app, pid: int) -> None:  # type: ignore[no-untyped-def]
    """Terminate one backend from a connection outside the app's pool, and wait until it is gone."""
    import time

    import psycopg

    url = app.config["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        deadline = time.monotonic() + 5
        while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]:
            assert time.monotonic() < deadline, "the backend did not go away"
            time.sleep(0.01)


def test_a_connection_lost_between_requests_is_replaced_without_an_error(app, client, world):
    """PostgreSQL restarted (or dropped the connection) while the dock was busy: the pooled
    connection is dead. The pool pings it at checkout (pool_pre_ping) and connects anew: the
    worker sees their screen, not an error. Fails without pool_pre_ping in app.db.make_engine."""
    login(client, "worker")
    assert client.get("/receive", headers=HX).status_code == 200
    pid, _ = _backend_and_prepared(app)
    _kill_backend(app, pid)
    resp = client.get("/receive", headers=HX)
    assert resp.status_code == 200, resp.data[:300]
    after, _ = _backend_and_prepared(app)
    assert after != pid


def test_an_orm_query_after_a_lost_connection_works(app, world):
    """An ORM query, the first statement of its transaction, after PostgreSQL dropped the pooled
    connection: the checkout's ping replaces it. Fails without pool_pre_ping."""
    pid, _ = _backend_and_prepared(app)
    _kill_backend(app, pid)
    with app.app_context():
        assert db.session.scalars(select(Rma.number).order_by(Rma.id)).first() == "RMA-5001"
        db.session.rollback()
    assert _backend_and_prepared(app)[0] != pid


def test_the_first_sign_in_after_a_lost_connection_works(app, client, world):
    """PostgreSQL dropped the pooled connection a moment after its last use: the sign-in form's
    lookup and the health check still answer (the checkout's ping replaces the connection)."""
    assert client.get("/health").get_json()["database"] == "ok"
    pid, _ = _backend_and_prepared(app)
    _kill_backend(app, pid)
    login(client, "worker")  # asserts the redirect of a successful sign-in
    pid, _ = _backend_and_prepared(app)
    _kill_backend(app, pid)
    resp = client.get("/health")
    assert resp.status_code == 200 and resp.get_json()["database"] == "ok"
