"""The console's API keys: an admin creates one (the token shown on that answer only), a resent
form makes no second key, revoking refuses the key at once; nobody else may."""
from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select

from app.api.models import ApiKey
from tests.conftest import login
from tests.helpers import receive_unit

HX = {"HX-Request": "true"}


@pytest.mark.parametrize("username", ["worker", "super", "partner"])
def test_only_admins_see_or_make_keys(client, world, session, username):
    login(client, username)
    assert client.get("/admin/api-keys").status_code == 403
    assert client.post("/admin/api-keys", data={"key": uuid.uuid4().hex, "name": "X", "scope": "units:read"}).status_code == 403
    assert session.scalars(select(ApiKey)).all() == []


def test_an_admin_makes_a_key_sees_its_token_once_and_revokes_it(client, world, session):
    login(client, "admin")
    form = {"key": uuid.uuid4().hex, "name": "ERP feed", "scope": ["events:read", "units:read"]}
    made = client.post("/admin/api-keys", data=form, headers=HX)
    assert made.status_code == 200
    token = re.search(rb'<code class="token">(dk_[^<]+)</code>', made.data).group(1).decode()
    assert client.get("/api/v1/events", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # The form resent (a lost answer): one key, no token shown again.
    again = client.post("/admin/api-keys", data=form, headers=HX)
    assert b"already created" in again.data and token.encode() not in again.data
    assert len(session.scalars(select(ApiKey)).all()) == 1
    page = client.get("/admin/api-keys")
    assert token.encode() not in page.data and b"ERP feed" in page.data and b"events:read, units:read" in page.data
    row = session.scalars(select(ApiKey)).one()
    revoked = client.post(f"/admin/api-keys/{row.id}/revoke", data={"key": uuid.uuid4().hex}, headers=HX)
    assert b"revoked" in revoked.data
    assert client.get("/api/v1/events", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_bad_key_form_says_why_and_makes_nothing(client, world, session):
    login(client, "admin")
    resp = client.post("/admin/api-keys", data={"key": uuid.uuid4().hex, "name": "Shop", "scope": "events:read",
                                                 "merchant_id": str(world.merchant.id)}, headers=HX)
    assert resp.status_code == 422 and b"cannot hold events:read" in resp.data
    resp = client.post("/admin/api-keys", data={"key": uuid.uuid4().hex, "name": "Shop"}, headers=HX)
    assert resp.status_code == 422 and b"at least one scope" in resp.data
    assert session.scalars(select(ApiKey)).all() == []


def test_a_partners_key_sees_only_its_warehouses(client, world, session):
    login(client, "admin")
    made = client.post("/admin/api-keys", data={"key": uuid.uuid4().hex, "name": "FastLane WMS", "scope": "units:read",
                                                 "partner_org_id": str(world.org.id)}, headers=HX)
    assert b"FastLane 3PL&#39;s warehouses only" in made.data or b"FastLane 3PL's warehouses only" in made.data
    token = re.search(rb'<code class="token">(dk_[^<]+)</code>', made.data).group(1).decode()
    assert session.scalars(select(ApiKey)).one().partner_org_id == world.org.id
    receive_unit(session, world, "shirt", world.actor("worker"))
    theirs = receive_unit(session, world, "cream", world.actor("partner"), warehouse=world.wh3pl)
    units = client.get("/api/v1/units", headers={"Authorization": f"Bearer {token}"}).get_json()["units"]
    assert [(u["lpn"], u["warehouse"]) for u in units] == [(theirs.lpn, "3PL1")]
    bad = client.post("/admin/api-keys", data={"key": uuid.uuid4().hex, "name": "X", "scope": "events:read",
                                                "partner_org_id": str(world.org.id)}, headers=HX)
    assert bad.status_code == 422 and b"cannot hold events:read" in bad.data
