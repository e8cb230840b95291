"""The handheld when answers are lost and sessions end, in Chromium at Pixel 5 on PostgreSQL.

- The server commits a scan and an inspection, then the answer is lost (a 502 from the proxy,
  tests.fakes.LosingProxy): the handheld says it is checking, sends them again with the same
  key, and the unit appears once.
- Scans queued while the network is down belong to the worker who made them: signed out, they
  wait; a supervisor signing in on the same device sees that they wait and sends none of them;
  the worker signs in again and they are sent, as the worker.
- A session ended on the server while scans wait: they are kept and sent after signing in again.
- The handheld's address changes (Wi-Fi to mobile data): it stays signed in and scans go on."""
from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from app.auth.models import UserSession
from app.db import make_engine
from app.ledger.models import ReturnUnit
from tests.e2e.conftest import shoot, sign_in
from tests.fakes import ClientAddress, LosingProxy

pytestmark = pytest.mark.e2e
QUEUED = "() => Object.keys(localStorage).filter(k => k.startsWith('dockhand.scanQueue.v2.')).length"


def _scan(page, code: str) -> None:  # type: ignore[no-untyped-def]
    page.fill("#scan", code)
    page.press("#scan", "Enter")


def _start(page, base: str, username: str = "worker") -> None:  # type: ignore[no-untyped-def]
    sign_in(page, base, username)
    page.goto(f"{base}/receive")
    page.click("text=WH1 · Main DC")
    page.wait_for_selector("text=Scan a parcel label")


def _count(url: str, sql: str) -> int:
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            return s.scalar(text(sql))
    finally:
        engine.dispose()


def _units_by(url: str) -> list[str]:
    """Who received each unit, from the ledger."""
    return [row[0] for row in _rows(url, "SELECT u.username FROM ledger_entries l JOIN users u ON u.id = l.actor_id "
                                         "WHERE l.to_state = 'received' ORDER BY l.id")]


def _rows(url: str, sql: str) -> list:  # type: ignore[type-arg]
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            return list(s.execute(text(sql)).all())
    finally:
        engine.dispose()


def test_a_lost_answer_is_checked_again_and_the_unit_appears_once(live_app, live_server, e2e_world, handheld, e2e_db_url):
    proxy = LosingProxy(live_app.wsgi_app)
    live_app.wsgi_app = proxy
    page = handheld.new_page()
    _start(page, live_server)
    _scan(page, "RMA-5001")
    page.wait_for_selector("#parcel")
    proxy.lose_next("POST", "/receive/scan")
    _scan(page, "036000291452")
    page.wait_for_selector("#queue-status[data-state=retrying]")
    assert "Not confirmed yet" in page.inner_text("#queue-status")
    shoot(page, "handheld-lost-answer-retrying")
    page.wait_for_selector(".result-ok .lpn")
    page.wait_for_function(f"() => {QUEUED} === 0")
    assert proxy.lost == ["200 OK"]
    assert _count(e2e_db_url, "SELECT count(*) FROM return_units") == 1
    shoot(page, "handheld-lost-answer-once")

    # An inspection (an htmx form, static/dockhand.js) whose answer is lost the same way.
    page.click("text=Inspect now")
    page.wait_for_selector("#inspect-form")
    page.check("input[name=grade][value=A]")
    page.check("input[name=packaging][value=sealed]")
    proxy.lose_next("POST", "/receive/units/1/inspect")
    page.click("text=Save inspection")
    page.wait_for_selector("#messages .msg-pending")
    shoot(page, "handheld-lost-inspection-checking")
    page.wait_for_selector("#decision")
    assert _count(e2e_db_url, "SELECT count(*) FROM inspections") == 1
    assert not page.locator("#messages .msg-pending").count()


def _scanning_without_network(page, base: str, *codes: str) -> None:  # type: ignore[no-untyped-def]
    """The worker opens a parcel, then the scans of `codes` cannot reach the server: they wait."""
    _start(page, base)
    _scan(page, "RMA-5001")
    page.wait_for_selector("#parcel")
    page.route("**/receive/scan", lambda route: route.abort("internetdisconnected"))
    for code in codes:
        _scan(page, code)
    page.wait_for_selector("#queue-status[data-state=retrying]")


def test_queued_scans_are_sent_only_as_the_worker_who_made_them(live_server, e2e_world, handheld, e2e_db_url):
    page = handheld.new_page()
    _scanning_without_network(page, live_server, "036000291452", "(01)04006381333931(10)L24A")
    assert "2 scans queued" in page.inner_text("#queue-status")
    page.click("button:has-text('Sign out')")
    page.wait_for_selector("#username")
    page.unroute("**/receive/scan")

    # A supervisor on the same handheld: the worker's scans are shown as waiting, and not sent.
    sign_in(page, live_server, "super")
    page.goto(f"{live_server}/receive")
    page.wait_for_selector("#queue-status:not([hidden])")
    assert "2 scans of Worker wait on this device" in page.inner_text("#queue-status")
    shoot(page, "handheld-someone-elses-scans-waiting")
    page.wait_for_timeout(2500)  # longer than the first pauses before a resend
    assert _count(e2e_db_url, "SELECT count(*) FROM return_units") == 0
    page.click("button:has-text('Sign out')")
    page.wait_for_selector("#username")

    # The worker again: their scans go, as theirs.
    sign_in(page, live_server, "worker")
    page.wait_for_function(f"() => {QUEUED} === 0")
    page.wait_for_load_state("networkidle")
    assert _units_by(e2e_db_url) == ["worker", "worker"]
    shoot(page, "handheld-queued-scans-sent-as-their-worker")


def test_scans_waiting_when_the_session_ends_are_sent_after_signing_in_again(live_server, e2e_world, handheld, e2e_db_url):
    page = handheld.new_page()
    _scanning_without_network(page, live_server, "036000291452")
    engine = make_engine(e2e_db_url)
    with Session(engine) as s:  # the session ends on the server (expired, or an admin signed the worker out)
        s.execute(delete(UserSession))
        s.commit()
    engine.dispose()
    page.unroute("**/receive/scan")
    page.wait_for_selector("#queue-status[data-state=signed-out]", timeout=20000)
    assert "You are signed out" in page.inner_text("#messages")
    shoot(page, "handheld-signed-out-scans-kept")
    assert page.evaluate(QUEUED) == 1
    assert _count(e2e_db_url, "SELECT count(*) FROM return_units") == 0

    sign_in(page, live_server, "worker")
    page.wait_for_function(f"() => {QUEUED} === 0")
    page.wait_for_load_state("networkidle")
    assert _units_by(e2e_db_url) == ["worker"]


def test_a_handheld_that_changes_address_stays_signed_in(live_app, live_server, e2e_world, handheld, e2e_db_url):
    seen = ClientAddress(live_app.wsgi_app, "192.168.1.20")  # the dock's Wi-Fi
    live_app.wsgi_app = seen
    page = handheld.new_page()
    _start(page, live_server)
    _scan(page, "RMA-5001")
    page.wait_for_selector("#parcel")
    seen.address = "100.64.7.9"  # the same handheld on mobile data
    _scan(page, "036000291452")
    page.wait_for_selector(".result-ok .lpn")
    page.reload()
    page.wait_for_selector("#parcel")
    assert "Sign in" not in page.inner_text("main")
    assert _units_by(e2e_db_url) == ["worker"]
