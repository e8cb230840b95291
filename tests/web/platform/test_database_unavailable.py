"""When the database cannot be reached: a 503 with Retry-After, after a short bounded backoff of
reconnects, on an error path that needs no database; the message says the action is being
checked, never that nothing was saved."""
from __future__ import annotations

import time

import pytest
from flask.sessions import SecureCookieSessionInterface

from app import create_app
from app.connections import CONNECT_BACKOFF
from tests.fakes import closed_port

HX = {"HX-Request": "true"}


@pytest.fixture
def unreachable(tmp_path):  # type: ignore[no-untyped-def]
    """The app with a PostgreSQL address where nothing listens, and a client whose signed
    session names a user (so the first thing a request does is read the database)."""
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False, "PHOTO_DIR": str(tmp_path / "photos"),
                      "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/dockhand"})
    client = app.test_client()
    cookie = SecureCookieSessionInterface().get_signing_serializer(app).dumps({"_user_id": "1:token", "_fresh": True})
    client.set_cookie("session", cookie)
    return client


def test_an_unreachable_database_answers_503_after_a_bounded_backoff(unreachable):
    started = time.monotonic()
    resp = unreachable.get("/receive")
    waited = time.monotonic() - started
    assert resp.status_code == 503
    assert resp.headers["Retry-After"].isdigit()
    assert b"cannot reach its database" in resp.data and b"nothing was saved" not in resp.data
    assert b"Not reachable just now" in resp.data  # the page itself, rendered without the database
    assert sum(CONNECT_BACKOFF) <= waited < sum(CONNECT_BACKOFF) + 5, waited


def test_an_htmx_request_gets_the_message_where_messages_go(unreachable):
    resp = unreachable.post("/receive/scan", data={"code": "036000291452", "key": "k-1234567890"}, headers=HX)
    assert resp.status_code == 503 and resp.headers["Retry-After"].isdigit()
    assert resp.headers["HX-Retarget"] == "#messages"
    assert b"is being checked" in resp.data
