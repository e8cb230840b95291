"""End to end: a storefront puts a return in through the API; a worker receives it in Chromium
by scanning the parcel's tracking number; the delivery worker (its own process, as `make run`
starts it) brings the unit's events to the storefront's webhook receiver, signed. Then the
console's API and webhook screens at desktop and handheld size."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.api.services import create_api_key
from app.auth.roles import SYSTEM
from app.disposition.models import ReasonCode
from app.ledger.models import ReturnUnit
from tests.e2e.conftest import shoot, sign_in
from tests.fakes import WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]


def _call(base: str, method: str, path: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(f"{base}{path}", method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                          "Idempotency-Key": uuid.uuid4().hex})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, json.loads(resp.read())


def test_a_return_put_in_through_the_api_is_received_and_its_events_reach_a_webhook(
        live_server, e2e_world, e2e_db_url, handheld, desktop, browser, playwright_instance):
    engine = create_engine(e2e_db_url)
    with Session(engine) as s:
        s.add(ReasonCode(code="wrong_size", label="Wrong size"))
        s.commit()
        token = create_api_key(s, SYSTEM, name="Storefront", scopes=["rmas:write", "webhooks:manage"],
                               idempotency_key=uuid.uuid4().hex).token
    engine.dispose()
    receiver = WebhookReceiver()
    try:
        status, hook = _call(live_server, "POST", "/api/v1/webhooks", token,
                             {"url": receiver.url, "event_types": ["unit.*", "rma.*"], "description": "storefront"})
        assert status == 201
        receiver.secret = hook["secret"]
        status, rma = _call(live_server, "POST", "/api/v1/rmas", token, {
            "number": "WEB-RMA-1", "merchant": "ACME", "channel": "web", "warehouse": "WH1", "customer_ref": "C-E2E",
            "tracking_numbers": ["1ZE2E0000000000001"],
            "lines": [{"sku": "TEE-BLU-M", "quantity": 1, "reason_code": "wrong_size"}]})
        assert status == 201 and rma["number"] == "WEB-RMA-1"

        page = handheld.new_page()
        sign_in(page, live_server, "worker")
        page.goto(f"{live_server}/receive")
        page.click("text=WH1 · Main DC")
        page.wait_for_selector("text=Scan a parcel label")
        page.fill("#scan", "1ZE2E0000000000001")  # the label on the parcel: the carrier's tracking number
        page.press("#scan", "Enter")
        page.wait_for_selector("#parcel")
        assert "WEB-RMA-1" in page.inner_text("#parcel")
        page.fill("#scan", "036000291452")  # the tee's UPC
        page.press("#scan", "Enter")
        page.wait_for_selector(".result-ok .lpn")
        lpn = page.inner_text(".result .lpn")
        shoot(page, "api-01-received-from-api-rma")

        engine = create_engine(e2e_db_url)
        with Session(engine) as s:
            unit = s.scalars(select(ReturnUnit).where(ReturnUnit.lpn == lpn)).one()
            assert unit.rma_id == rma["id"] and unit.state == "received"
        engine.dispose()

        # The delivery worker, as make run starts it, in its own process: delivers what is due, then stops.
        env = {**os.environ, "DATABASE_URL": e2e_db_url, "SECRET_KEY": "e2e"}
        done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "webhooks", "deliver", "--once"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]
        assert receiver.bad_signatures == 0
        got = {body["type"]: body["data"] for _, status, body in receiver.received if status == 200}
        assert got["rma.created"]["number"] == "WEB-RMA-1"
        assert got["unit.state_changed"]["lpn"] == lpn and got["unit.state_changed"]["to_state"] == "received"
        assert "rma.receiving" in got

        # The console: the key and the endpoint with what it was sent, at desktop and handheld size.
        admin = desktop.new_page()
        sign_in(admin, live_server, "admin")
        admin.goto(f"{live_server}/admin/api-keys")
        assert "Storefront" in admin.inner_text("main")
        shoot(admin, "api-02-console-api-keys-desktop")
        admin.goto(f"{live_server}/admin/webhooks")
        admin.click(f"text={receiver.url}")
        admin.wait_for_selector("text=unit.state_changed")
        shoot(admin, "api-03-console-webhook-log-desktop")
        admin.goto(f"{live_server}/api/v1/docs")
        shoot(admin, "api-04-reference-desktop")
        phone = browser.new_context(**playwright_instance.devices["Pixel 5"])  # the worker is signed in on `handheld`
        small = phone.new_page()
        sign_in(small, live_server, "admin")
        small.goto(f"{live_server}/admin/webhooks")
        shoot(small, "api-05-console-webhooks-handheld")
        small.goto(f"{live_server}/admin/api-keys")
        shoot(small, "api-06-console-api-keys-handheld")
        small.goto(f"{live_server}/admin/webhooks")
        small.click(f"text={receiver.url}")
        small.wait_for_selector("text=unit.state_changed")
        shoot(small, "api-07-console-webhook-log-handheld")
        small.goto(f"{live_server}/api/v1/docs")
        shoot(small, "api-08-reference-handheld")
        phone.close()
    finally:
        receiver.close()
