"""The admin console's logins: the role matrix, creating a login with a one-time password, the
actions that end sessions at once, the last admin, retries that change nothing twice, the audit log
with before and after, and an export that cannot run formulas."""
from __future__ import annotations

import csv
import io
import re
import uuid

import pytest
from sqlalchemy import func, select

from app.auth.models import SignInFailure, User, UserSession
from app.ledger.models import AuditEntry
from tests.conftest import login

HX = {"HX-Request": "true"}
ROUTES = [("GET", "/admin/"), ("GET", "/admin/users"), ("GET", "/admin/users?format=csv"), ("GET", "/admin/audit"),
          ("POST", "/admin/users"), ("POST", "/admin/users/1/deactivate"), ("POST", "/admin/users/1/activate"),
          ("POST", "/admin/users/1/reset-password"), ("POST", "/admin/users/1/unlock"),
          ("POST", "/admin/users/1/sign-out"), ("POST", "/admin/users/1/edit")]


def key() -> str:
    return uuid.uuid4().hex


def counts(session) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    session.rollback()
    return (session.scalar(select(func.count()).select_from(User)),
            session.scalar(select(func.count()).select_from(AuditEntry)),
            session.scalar(select(func.count()).select_from(User).where(User.active.is_(False))))


@pytest.mark.parametrize("username", ["worker", "super", "partner"])
def test_only_admins_reach_the_console_and_a_refusal_writes_nothing(client, world, session, username):
    login(client, username)
    before = counts(session)
    for method, path in ROUTES:
        data = {"key": key(), "username": "intruder", "role": "admin", "name": "X"} if method == "POST" else None
        resp = client.open(path, method=method, data=data)
        assert resp.status_code == 403, (username, method, path, resp.status_code)
    assert counts(session) == before


def test_signed_out_visitors_are_sent_to_sign_in(client, world):
    assert client.get("/admin/users").status_code == 302


def test_an_admin_lands_on_the_console_and_creates_a_login_that_signs_in(client, app, world, session):
    signed_in = client.post("/login", data={"username": "admin", "password": "password123"})
    assert signed_in.headers["Location"].endswith("/admin/users")  # "/" is the start page, one tap away
    same = key()
    form = {"key": same, "username": "New.Picker", "name": "New Picker", "role": "worker",
            "home_warehouse_id": str(world.wh.id)}
    first = client.post("/admin/users", data=form, headers=HX)
    assert first.status_code == 200
    password = re.search(r'<p class="password"><code>([^<]+)</code>', first.get_data(as_text=True)).group(1)
    again = client.post("/admin/users", data=form, headers=HX)  # the answer was lost: sent again
    assert again.status_code == 200 and "already done" in again.get_data(as_text=True)
    assert password not in again.get_data(as_text=True)  # shown once
    session.rollback()
    user = session.scalars(select(User).where(User.username == "new.picker")).one()
    assert user.role == "worker" and user.home_warehouse_id == world.wh.id and user.password_hash != password
    entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "user.created")).all()
    assert len(entries) == 1 and entries[0].details["before"] is None
    assert entries[0].details["after"]["username"] == "new.picker"
    fresh = app.test_client()
    assert fresh.post("/login", data={"username": "new.picker", "password": password}).status_code == 302


def test_bad_input_gets_a_clear_message_and_changes_nothing(client, world, session):
    login(client, "admin")
    before = counts(session)
    for form, said in [({"username": "", "role": "worker"}, "username"),
                       ({"username": "x y", "role": "worker"}, "username"),
                       ({"username": "ok", "role": "emperor"}, "Role must be"),
                       ({"username": "worker", "role": "worker"}, "exists already"),
                       ({"username": "p2", "role": "partner"}, "partner organisation"),
                       ({"username": "w9", "role": "worker", "home_warehouse_id": "99999"}, "No such warehouse"),
                       ({"username": "w8", "role": "worker", "home_warehouse_id": "abc"}, None)]:
        resp = client.post("/admin/users", data={"key": key(), "name": "", **form}, headers=HX)
        if said is None:  # a non-number is no warehouse: the login is made without one
            continue
        assert 400 <= resp.status_code < 500 and said in resp.get_data(as_text=True), (form, resp.status_code)
    session.rollback()
    assert counts(session)[0] == before[0] + 1  # only the last, valid one


def _sessions(session, username: str) -> int:  # type: ignore[no-untyped-def]
    session.rollback()
    return session.scalar(select(func.count()).select_from(UserSession).join(User).where(User.username == username))


def test_reset_password_and_switching_off_end_the_users_sessions_at_once(app, client, world, session):
    victim = app.test_client()
    login(victim, "worker")
    assert victim.get("/receive").status_code == 200
    login(client, "admin")
    uid = world.users["worker"].id
    reset = client.post(f"/admin/users/{uid}/reset-password", data={"key": key()}, headers=HX)
    assert reset.status_code == 200 and "one-time password" in reset.get_data(as_text=True).lower()
    assert _sessions(session, "worker") == 0
    assert victim.get("/receive").status_code == 302  # signed out on the next request
    login(victim, "super")
    assert client.post(f"/admin/users/{world.users['super'].id}/deactivate", data={"key": key()}).status_code == 200
    assert _sessions(session, "super") == 0 and victim.get("/desk").status_code == 302
    assert victim.post("/login", data={"username": "super", "password": "password123"}).status_code == 401


def test_the_last_active_admin_cannot_be_switched_off(client, world, session):
    login(client, "admin")
    resp = client.post(f"/admin/users/{world.users['admin'].id}/deactivate", data={"key": key()}, headers=HX)
    assert resp.status_code == 409 and "last active admin" in resp.get_data(as_text=True)
    session.rollback()
    assert session.get(User, world.users["admin"].id).active is True


def _edit(client, world, username, **changes):  # type: ignore[no-untyped-def]
    user = world.users[username]
    form = {"key": key(), "name": user.name, "role": user.role, "partner_org_id": user.partner_org_id or "",
            "home_warehouse_id": user.home_warehouse_id or "", **changes}
    return client.post(f"/admin/users/{user.id}/edit", data=form, headers=HX)


def test_the_last_active_admin_cannot_be_demoted_and_nothing_changes(client, world, session):
    login(client, "admin")
    before = counts(session)
    resp = _edit(client, world, "admin", role="supervisor")
    assert resp.status_code == 409 and "last active admin" in resp.get_data(as_text=True)
    session.rollback()
    assert session.get(User, world.users["admin"].id).role == "admin" and counts(session) == before


def test_a_role_change_holds_at_the_users_next_request_and_is_audited(app, client, world, session):
    victim = app.test_client()
    login(victim, "worker")
    assert victim.get("/desk").status_code == 403
    login(client, "admin")
    resp = _edit(client, world, "worker", role="supervisor", name="Wendy Lead")
    assert resp.status_code == 200 and "worker is changed" in resp.get_data(as_text=True)
    assert victim.get("/desk").status_code == 200  # the same session, the new role
    session.rollback()
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "user.changed")).one()
    assert entry.details["before"]["role"] == "worker" and entry.details["after"]["role"] == "supervisor"
    assert entry.details["after"]["name"] == "Wendy Lead"
    same = _edit(client, world, "worker", role="supervisor", name="Wendy Lead")
    assert "nothing changed" in same.get_data(as_text=True)


def test_a_partner_needs_its_organisation_and_a_staff_login_drops_it(client, world, session):
    login(client, "admin")
    refused = _edit(client, world, "worker", role="partner")
    assert refused.status_code == 422 and "needs its partner organisation" in refused.get_data(as_text=True)
    assert _edit(client, world, "partner", role="worker").status_code == 200
    session.rollback()
    moved = session.get(User, world.users["partner"].id, populate_existing=True)
    assert moved.role == "worker" and moved.partner_org_id is None


def test_a_resent_change_is_one_audited_change(client, world, session):
    login(client, "admin")
    user = world.users["worker2"]
    form = {"key": key(), "name": "W2", "role": "supervisor", "partner_org_id": "", "home_warehouse_id": ""}
    for _ in range(2):
        assert client.post(f"/admin/users/{user.id}/edit", data=form, headers=HX).status_code == 200
    session.rollback()
    assert session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "user.changed")) == 1


@pytest.mark.parametrize("changes", [{"role": "root"}, {"name": ""}, {"name": "x" * 121},
                                     {"home_warehouse_id": "999999"}, {"role": "partner", "partner_org_id": "999999"}])
def test_a_bad_change_is_refused_and_changes_nothing(client, world, session, changes):
    login(client, "admin")
    before = counts(session)
    assert _edit(client, world, "worker2", **changes).status_code == 422
    session.rollback()
    assert session.get(User, world.users["worker2"].id).role == "worker" and counts(session) == before


def test_unlock_lets_a_locked_out_user_try_again(app, client, world, session):
    other = app.test_client()
    for _ in range(5):
        other.post("/login", data={"username": "worker2", "password": "wrong"})
    assert other.post("/login", data={"username": "worker2", "password": "password123"}).status_code == 429
    login(client, "admin")
    listed = client.get("/admin/users?status=locked").get_data(as_text=True)
    assert "<strong>worker2</strong>" in listed and "locked out" in listed and "<strong>worker</strong>" not in listed
    assert client.post(f"/admin/users/{world.users['worker2'].id}/unlock", data={"key": key()}).status_code == 200
    session.rollback()
    assert session.scalar(select(func.count()).select_from(SignInFailure).where(SignInFailure.scope == "account")) == 0
    assert other.post("/login", data={"username": "worker2", "password": "password123"}).status_code == 302


def test_sign_out_everywhere_retried_is_one_audited_change(app, client, world, session):
    for _ in range(2):
        login(app.test_client(), "worker")
    login(client, "admin")
    same = key()
    for _ in range(2):
        assert client.post(f"/admin/users/{world.users['worker'].id}/sign-out", data={"key": same}).status_code == 200
    session.rollback()
    entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "user.signed_out_everywhere")).all()
    assert len(entries) == 1 and entries[0].details["sessions_ended"] == 2
    assert _sessions(session, "worker") == 0
    log = client.get("/admin/audit").get_data(as_text=True)
    assert "signed out everywhere" in log and "Admin" in log


def test_the_export_neutralises_formulas(client, world, session):
    login(client, "admin")
    client.post("/admin/users", data={"key": key(), "username": "evil", "role": "worker",
                                      "name": '=HYPERLINK("http://x.example","click")'})
    resp = client.get("/admin/users?format=csv&q=evil")
    assert resp.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert rows[0][0] == "username" and len(rows) == 2
    assert rows[1][1] == "'=HYPERLINK(\"http://x.example\",\"click\")"


def test_filters_and_unknown_actions(client, world):
    login(client, "admin")
    page = client.get("/admin/users?role=partner").get_data(as_text=True)
    assert "<strong>partner</strong>" in page and "<strong>worker</strong>" not in page
    assert client.get("/admin/users?role=<script>&status=nope&page=abc").status_code == 200
    assert client.post(f"/admin/users/{world.users['worker'].id}/explode", data={"key": key()}).status_code == 404
    assert client.post("/admin/users/99999/deactivate", data={"key": key()}).status_code == 404
