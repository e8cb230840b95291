"""Sign-in throttling (app.auth.services.sign_in): per account and per client address, counted
in the database so that every app server refuses alike; an unknown username costs the same time
as a known one."""
from __future__ import annotations

import statistics
import time

from app import create_app
from app.admin.services import create_user
from app.auth.roles import SYSTEM
from app.db import db

WRONG = {"password": "not the password"}


def _attempt(client, username: str, password: str, address: str = "10.0.0.7"):  # type: ignore[no-untyped-def]
    return client.post("/login", data={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def _second_server(app):  # type: ignore[no-untyped-def]
    """Another app server on the same database (its own process state, its own pool)."""
    return create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"], "WTF_CSRF_ENABLED": False,
                       "SECRET_KEY": "test", "PHOTO_DIR": app.config["PHOTO_DIR"]})


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(client, world):
    for _ in range(5):
        assert _attempt(client, "super", "guess").status_code == 401
    resp = _attempt(client, "super", "password123")
    assert resp.status_code == 429
    assert b"Too many wrong passwords" in resp.data
    assert client.get("/desk").status_code == 302  # not signed in


def test_the_account_lock_holds_on_every_app_server(app, world):
    one, other = app.test_client(), _second_server(app).test_client()
    for i in range(5):
        server = one if i % 2 else other
        assert _attempt(server, "super", "guess", address=f"10.0.1.{i}").status_code == 401
    assert _attempt(one, "super", "password123", address="10.0.2.1").status_code == 429
    assert _attempt(other, "super", "password123", address="10.0.2.2").status_code == 429


def test_one_address_guessing_many_accounts_is_stopped(app, world):
    one, other = app.test_client(), _second_server(app).test_client()
    for i in range(20):
        assert _attempt(one if i % 2 else other, f"nobody{i}", "guess").status_code == 401
    assert _attempt(other, "worker", "password123").status_code == 429
    assert _attempt(one, "worker", "password123", address="10.9.9.9").status_code == 302  # another address


def test_signing_in_clears_the_accounts_failures(client, world):
    for _ in range(4):
        _attempt(client, "super", "guess")
    assert _attempt(client, "super", "password123").status_code == 302
    client.post("/logout")
    for _ in range(4):
        assert _attempt(client, "super", "guess").status_code == 401
    assert _attempt(client, "super", "password123").status_code == 302


def test_unknown_usernames_are_throttled_like_known_ones(client, world):
    for _ in range(5):
        assert _attempt(client, "ghost", "guess").status_code == 401
    assert _attempt(client, "ghost", "guess").status_code == 429


def test_an_unknown_username_takes_as_long_as_a_wrong_password(app, client, world):
    """Without the check against a stand-in hash an unknown name answered in ~5 ms, a known one
    in ~130 ms: a list of valid usernames for the asking."""
    with app.app_context():
        create_user(db.session, SYSTEM, username="timed", role="worker", name="Timed", password="a real password",
                    idempotency_key="k-create-timed")
    _attempt(client, "nobody-warmup", "x", address="10.1.0.0")  # the stand-in hash is made once

    def timed(username: str, base: int, i: int) -> float:
        start = time.perf_counter()
        assert _attempt(client, username, f"wrong{i}", address=f"10.1.{base}.{i}").status_code == 401
        elapsed = time.perf_counter() - start
        with app.app_context():  # keep the account below its lock
            from sqlalchemy import delete

            from app.auth.models import SignInFailure
            db.session.execute(delete(SignInFailure))
            db.session.commit()
        return elapsed

    # Known and unknown in turn, so that a busy machine slows both alike.
    pairs = [(timed("timed", 1, i), timed("nobody-at-all", 2, i)) for i in range(6)]
    known, unknown = statistics.median(k for k, _ in pairs), statistics.median(u for _, u in pairs)
    assert unknown > known * 0.6, (known, unknown)
