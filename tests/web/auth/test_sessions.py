"""Sessions the server can end (app.auth.services): sign-out, a password reset, deactivation and
an admin's "sign out everywhere" end every session and remember-me cookie of the user; sessions
expire on the server; they are not bound to the client's address; sign-in rotates the session
(and with it the CSRF secret)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from app.auth.models import UserSession
from app.auth.roles import Actor
from app.admin.services import set_active, set_password, sign_out_everywhere
from app.auth.roles import SYSTEM
from app.db import db, utcnow
from tests.conftest import login

ADMIN = Actor(id=None, role="admin", name="Admin")


def _opens_desk(client) -> bool:  # type: ignore[no-untyped-def]
    resp = client.get("/desk")
    assert resp.status_code in (200, 302), resp.status_code
    return resp.status_code == 200


def _cookie(client, name: str) -> str:  # type: ignore[no-untyped-def]
    cookie = client.get_cookie(name)
    assert cookie is not None, f"no {name} cookie"
    return cookie.value


def _replay(app, **cookies: str):  # type: ignore[no-untyped-def]
    """A new client (another device, an attacker) holding copies of the cookies."""
    other = app.test_client()
    for name, value in cookies.items():
        other.set_cookie(name, value)
    return other


def _remembered_login(client, username: str = "super"):  # type: ignore[no-untyped-def]
    resp = client.post("/login", data={"username": username, "password": "password123", "remember": "y"})
    assert resp.status_code == 302
    return client


def test_a_session_cookie_copied_before_sign_out_opens_nothing_after_it(app, client, world):
    login(client, "super")
    stolen = _cookie(client, "session")
    assert _opens_desk(_replay(app, session=stolen))
    client.post("/logout")
    assert not _opens_desk(client)
    assert not _opens_desk(_replay(app, session=stolen))


def test_a_remember_me_cookie_opens_a_session_until_sign_out(app, client, world):
    _remembered_login(client)
    remembered = _cookie(client, "remember_token")
    assert _opens_desk(_replay(app, remember_token=remembered))  # a browser restarted: still signed in
    client.post("/logout")
    assert not _opens_desk(_replay(app, remember_token=remembered))


def test_signing_out_ends_the_sessions_on_other_devices_too(app, world):
    handheld, desk = _remembered_login(app.test_client()), _remembered_login(app.test_client())
    handheld.post("/logout")
    assert not _opens_desk(desk)


def test_each_sign_in_gets_its_own_remember_me_token(app, world):
    first = _cookie(_remembered_login(app.test_client()), "remember_token")
    second = _cookie(_remembered_login(app.test_client()), "remember_token")
    assert first != second


def test_a_password_reset_ends_every_session_and_remember_me_cookie(app, client, world):
    _remembered_login(client)
    remembered = _cookie(client, "remember_token")
    with app.app_context():
        set_password(db.session, SYSTEM, user="super", password="a new password", idempotency_key="k-set-password")
    assert not _opens_desk(client)
    assert not _opens_desk(_replay(app, remember_token=remembered))
    resp = client.post("/login", data={"username": "super", "password": "a new password"})
    assert resp.status_code == 302 and _opens_desk(client)


def test_deactivation_ends_every_session_and_reactivation_revives_none(app, client, world):
    _remembered_login(client)
    session_cookie, remembered = _cookie(client, "session"), _cookie(client, "remember_token")
    with app.app_context():
        set_active(db.session, SYSTEM, user="super", active=False, idempotency_key="k-deactivate")
        set_active(db.session, SYSTEM, user="super", active=True, idempotency_key="k-activate")
    assert not _opens_desk(_replay(app, session=session_cookie))
    assert not _opens_desk(_replay(app, remember_token=remembered))


def test_an_admin_signs_a_user_out_everywhere(app, world):
    devices = [_remembered_login(app.test_client()) for _ in range(2)]
    with app.app_context():
        assert sign_out_everywhere(db.session, ADMIN, user="super", idempotency_key="k-sign-out-all").sessions_ended == 2
    assert not any(_opens_desk(d) for d in devices)


def test_only_an_admin_signs_others_out(app, world):
    from app.errors import NotPermitted

    device = _remembered_login(app.test_client())
    with app.app_context():
        try:
            sign_out_everywhere(db.session, Actor(id=None, role="supervisor", name="S"), user="super", idempotency_key="k-refused")
        except NotPermitted:
            pass
        else:
            raise AssertionError("a supervisor signed somebody out")
    assert _opens_desk(device)


def test_a_remembered_session_expires_on_the_server_whatever_the_cookie_says(app, client, world):
    _remembered_login(client)
    remembered = _cookie(client, "remember_token")
    with app.app_context():
        db.session.execute(update(UserSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert not _opens_desk(_replay(app, remember_token=remembered))
    assert not _opens_desk(client)


def test_remember_me_lives_fourteen_days_by_default_with_its_cookie_flags(app, client, world):
    resp = client.post("/login", data={"username": "super", "password": "password123", "remember": "y"})
    cookie = next(h for h in resp.headers.getlist("Set-Cookie") if h.startswith("remember_token="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie
    with app.app_context():
        row = db.session.scalars(select(UserSession).where(UserSession.remember.is_(True))).one()
        lifetime = row.expires_at - row.created_at
    assert lifetime == timedelta(days=14)
    session_cookie = next(h for h in resp.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie


def test_a_session_survives_a_change_of_client_address(app, world):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "192.168.1.20"  # the dock's Wi-Fi
    login(client, "super")
    client.environ_base["REMOTE_ADDR"] = "100.64.7.9"  # the same handheld on mobile data
    assert _opens_desk(client)
    assert client.get("/desk", headers={"X-Forwarded-For": "203.0.113.5"}).status_code == 200


def test_signing_in_starts_a_fresh_session_with_a_new_csrf_secret(app, world):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    page = client.get("/login")
    assert page.status_code == 200
    with client.session_transaction() as before:
        secret_before = before.get("csrf_token")
        before["planted"] = "by somebody before sign-in"
    assert secret_before
    import re

    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1).decode()
    resp = client.post("/login", data={"username": "super", "password": "password123", "csrf_token": token})
    assert resp.status_code == 302
    client.get("/desk")
    with client.session_transaction() as after:
        assert after.get("csrf_token") != secret_before
        assert "planted" not in after


def test_the_command_line_ends_sessions_and_refuses_unknown_users_clearly(app, world):
    device = _remembered_login(app.test_client())
    runner = app.test_cli_runner()
    result = runner.invoke(args=["sign-out-everywhere", "super"])
    assert result.exit_code == 0 and "1 session(s) of super ended" in result.output, result.output
    assert not _opens_desk(device)
    result = runner.invoke(args=["set-password", "ghost", "--password", "long enough"])
    assert result.exit_code == 1 and "No user called ghost" in result.output
    result = runner.invoke(args=["set-password", "super", "--password", "short"])
    assert result.exit_code == 1 and "at least 8 characters" in result.output


def test_signing_in_clears_the_users_expired_sessions(app, world):
    _remembered_login(app.test_client())
    with app.app_context():
        db.session.execute(update(UserSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    _remembered_login(app.test_client())
    with app.app_context():
        assert len(db.session.scalars(select(UserSession)).all()) == 1
