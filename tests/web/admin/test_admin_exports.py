"""Every console list exports as CSV: UTF-8 with a header, only for admins, and no cell a
spreadsheet would run as a formula; the audit log filters and pages, its filters carried into the
export."""
from __future__ import annotations

import csv
import io
import uuid

import pytest
from sqlalchemy import select

from tests.conftest import login

HX = {"HX-Request": "true"}
EVIL = '=HYPERLINK("http://x.example","click")'
EXPORTS = ["/admin/users?format=csv", "/admin/warehouses?format=csv", "/admin/partners?format=csv",
           "/admin/merchants?format=csv", "/admin/audit?format=csv", "/admin/categories?format=csv",
           "/admin/checklists?format=csv", "/admin/reasons?format=csv", "/admin/api-keys?format=csv",
           "/admin/webhooks?format=csv"]


def key() -> str:
    return uuid.uuid4().hex


def _rows(resp) -> list[list[str]]:  # type: ignore[no-untyped-def]
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))


@pytest.mark.parametrize("username", ["worker", "super", "partner"])
def test_only_admins_export(client, world, username):
    login(client, username)
    for url in EXPORTS:
        assert client.get(url).status_code == 403, url


def test_every_list_exports_with_a_header_and_no_formula_runs(client, world, session):
    login(client, "admin")
    client.post("/admin/merchants", data={"key": key(), "code": "EVIL", "name": EVIL}, headers=HX)
    client.post("/admin/warehouses", data={"key": key(), "code": "EV1", "name": "+SUM(A1:A9)"}, headers=HX)
    client.post("/admin/partners", data={"key": key(), "name": "@evil 3PL"}, headers=HX)
    found = {}
    for url in EXPORTS:
        resp = client.get(url)
        assert resp.data.startswith("\ufeff".encode())  # a spreadsheet reads it as UTF-8
        rows = _rows(resp)
        assert rows[0] and all(h and h == h.strip() for h in rows[0]), url
        found[url] = rows
        cells = [c for row in rows[1:] for c in row]
        assert not any(c.startswith(("=", "+", "-", "@")) for c in cells), url
    assert ["merchant", "EVIL", "'" + EVIL, "0"] in found["/admin/merchants?format=csv"]
    assert any(row[:2] == ["EV1", "'+SUM(A1:A9)"] for row in found["/admin/warehouses?format=csv"])
    assert any(row[0] == "'@evil 3PL" for row in found["/admin/partners?format=csv"])


def test_the_audit_log_filters_pages_and_exports_what_it_shows(client, world, session):
    login(client, "admin")
    for i in range(3):
        client.post("/admin/merchants", data={"key": key(), "code": f"M{i}", "name": f"Merchant {i}"}, headers=HX)
    client.post("/admin/channels", data={"key": key(), "code": "ebay", "name": "eBay"}, headers=HX)
    page = client.get("/admin/audit?kind=sales_channel").get_data(as_text=True)
    assert "1 change" in page and "eBay" in page and "Merchant 1" not in page
    rows = _rows(client.get("/admin/audit?format=csv&kind=merchant"))
    assert rows[0] == ["at", "who", "action", "entity", "entity_id", "before", "after"]
    assert [r[2] for r in rows[1:]] == ["merchant.created"] * 3
    # Text is matched literally: a wildcard finds nothing; bad filters are no filter, never a 500.
    assert "0 changes" in client.get("/admin/audit?q=%25_").get_data(as_text=True)
    for junk in ("?kind=users%00", "?page=-1", "?page=99999999999", "?kind=" + "x" * 500, "?q=" + "é" * 200):
        assert client.get("/admin/audit" + junk).status_code in (200, 400), junk


def test_keys_and_webhooks_export_without_their_secrets(client, world, session):
    import re

    login(client, "admin")
    made = client.post("/admin/api-keys", data={"key": key(), "name": "=ERP feed", "scope": "units:read"}, headers=HX)
    token = re.search(rb'<code class="token">(dk_[^<]+)</code>', made.data).group(1).decode()
    keys = _rows(client.get("/admin/api-keys?format=csv"))
    assert keys[1][0] == "'=ERP feed" and token not in str(keys) and token.split("_")[-1] not in str(keys)
    client.post("/admin/webhooks", data={"key": key(), "url": "https://erp.example/hooks", "description": "ERP"}, headers=HX)
    session.rollback()
    from app.webhooks.models import WebhookEndpoint

    secret = session.scalars(select(WebhookEndpoint.secret)).first()
    hooks = _rows(client.get("/admin/webhooks?format=csv"))
    assert secret and hooks[1][0] == "https://erp.example/hooks" and secret not in str(hooks)
