"""Search and a return's page in Chromium, on PostgreSQL: a supervisor at the desk (1366x900), a
partner and a worker on a handheld (412x915). Screenshots in test-artifacts/screenshots/search-*."""
from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app.db import make_engine
from app.receiving.services import close_parcel, scan_item
from tests.e2e.conftest import _refusing_csp_violations, shoot, sign_in
from tests.integration.desk.test_desk_services import key
from tests.web.desk.conftest import lookup_scene

pytestmark = pytest.mark.e2e

HANDHELD = {"viewport": {"width": 412, "height": 915}, "device_scale_factor": 2.625, "is_mobile": True, "has_touch": True}


@pytest.fixture
def phone(browser):  # type: ignore[no-untyped-def]
    """A 412x915 touch phone, the size of a Pixel-class handheld."""
    yield from _refusing_csp_violations(browser.new_context(**HANDHELD))


@pytest.fixture
def scene(e2e_db_url, e2e_world):  # type: ignore[no-untyped-def]
    """RMA-5001 received at the main DC (a phone with a wrong serial, a shirt, the parcel closed with
    one shirt missing) and RMA-7001 at the partner's warehouse, one shirt received by the partner."""
    engine = make_engine(e2e_db_url)
    with Session(engine, expire_on_commit=False) as s:
        found = lookup_scene(s, e2e_world)
        worker = e2e_world.actor("worker")
        scan_item(s, worker, parcel_id=found["parcel"], product_id=e2e_world.products["shirt"].id, idempotency_key=key())
        close_parcel(s, worker, parcel_id=found["parcel"], idempotency_key=key())
    engine.dispose()
    return found


def _find(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.fill("#find-q", text)
    page.press("#find-q", "Enter")
    page.wait_for_load_state("networkidle")


def test_a_supervisor_finds_from_the_desk(desktop, live_server, scene):
    page = desktop.new_page()
    sign_in(page, live_server, "super")
    assert page.url.endswith("/desk")
    _find(page, "so-1001")  # the order's two returns and a customer whose reference is that number
    assert page.locator("h2", has_text="Returns (2)").is_visible()
    assert page.locator("h2", has_text="Customers (1)").is_visible()
    shoot(page, "search-desk-several")
    _find(page, "NOPE-404")
    assert "Nothing found for" in page.inner_text("main")
    shoot(page, "search-desk-nothing")
    _find(page, "RMA-5001")
    assert "/desk/returns/" in page.url
    main = page.inner_text("main")
    assert f"Received {scene['phone_lpn']} (Phone X1 128GB) at Main DC dock (DOCK-01)" in main
    assert "Exception: Missing item: Tee blue M" in main and "2 expected, 1 received" in main
    assert "Parcel 1 closed" in main and "Return RMA-5001 closed" in main and "649.00" in main
    shoot(page, "search-desk-return")
    page.click(f"text={scene['phone_lpn']}")
    page.wait_for_load_state("networkidle")
    assert f"/desk/units/{scene['phone']}" in page.url
    _find(page, "Dana")
    assert "/desk/customers/" in page.url and "RMA-7001" in page.inner_text("main")
    shoot(page, "search-desk-customer")


def test_a_partner_finds_on_a_handheld_within_its_scope(phone, live_server, scene):
    page = phone.new_page()
    sign_in(page, live_server, "partner")
    page.click("nav >> text=Find")
    page.wait_for_load_state("networkidle")
    shoot(page, "search-handheld-partner-empty")
    _find(page, "RMA-5001")
    assert "Nothing found in your warehouses" in page.inner_text("main")
    _find(page, "rma-7001")
    assert "/desk/returns/" in page.url
    main = page.inner_text("main")
    assert scene["shirt_lpn"] in main and "USD" not in main and "20.00" not in main
    shoot(page, "search-handheld-partner-return")
    page.goto(f"{live_server}/desk/returns/{scene['rma']}")
    assert "No such return." in page.inner_text("main")  # as for a return that does not exist


def test_a_worker_reads_a_return_on_a_handheld(phone, live_server, scene):
    page = phone.new_page()
    sign_in(page, live_server, "worker")
    page.goto(f"{live_server}/desk/search")
    _find(page, "1Z999AA10123456784")
    assert "/desk/returns/" in page.url
    shoot(page, "search-handheld-worker-return")
    page.click(f"text={scene['phone_lpn']} >> nth=0")
    page.wait_for_load_state("networkidle")
    assert f"/receive/units/{scene['phone']}" in page.url
