"""Each role's start page in Chromium on PostgreSQL: a worker and a partner on a Pixel 5 (393x851)
and at 360 px, a supervisor and an admin at 1366x900. The header says who and where on every
page, the warehouse switches in two taps and the scan screen follows, and every tappable thing
on the handheld's start page and header is at least 44x44 px (issue 18: gloved fingers)."""
from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app.db import make_engine
from tests.e2e.conftest import _refusing_csp_violations, receive_one, shoot, sign_in, tap_targets, too_small
from tests.integration.desk.test_desk_services import make_units, unidentified_parcel

pytestmark = pytest.mark.e2e

@pytest.fixture
def narrow(browser, playwright_instance):  # type: ignore[no-untyped-def]
    """The narrowest handheld the brief names: 360 px wide, touch."""
    device = {**playwright_instance.devices["Pixel 5"], "viewport": {"width": 360, "height": 740}}
    yield from _refusing_csp_violations(browser.new_context(**device))


def test_a_workers_home_switch_and_figures_on_a_handheld(live_server, e2e_world, handheld):
    page = handheld.new_page()
    sign_in(page, live_server, "worker")
    assert page.url.endswith("/receive")  # the scan box first: no tap before the first scan
    header = page.inner_text("header")
    assert "Worker · worker" in header and "Pick a warehouse" in header
    # two taps from the scan screen: open the list, pick
    page.click("summary.place-current:not(.lang-current)")
    shoot(page, "home-header-switch-open-worker-handheld")
    assert too_small(page, "header") == []
    page.click("header .place-choice:has-text('Main DC')")
    page.wait_for_selector("text=Scan a parcel label")
    assert page.url.endswith("/receive")
    assert "WH1" in page.inner_text("header .place-current:not(.lang-current)") and "Main DC" in page.inner_text("header .place-current:not(.lang-current)")
    receive_one(page, e2e_world.tracking.tracking_number, "036000291452")
    page.click("header >> text=Home")
    page.wait_for_selector("#work-today")
    assert page.inner_text("[data-figure=parcels]") == "1" and page.inner_text("[data-figure=received]") == "1"
    assert "Inspection queue" in page.inner_text("main")
    shoot(page, "home-worker-handheld")
    small = too_small(page, "header, main")
    assert small == [], small
    assert len(tap_targets(page, "header, main")) >= 6  # brand, Home, Receive, Sign out, the switch, two tiles
    # a parcel is open at WH1: switching to 3PL1 is refused, with the parcel named, and nothing changes
    page.click("summary.place-current:not(.lang-current)")
    page.click("header .place-choice:has-text('FastLane Reno')")
    page.wait_for_selector("#messages .msg-error")
    assert "still open at WH1" in page.inner_text("#messages")
    assert "WH1" in page.inner_text("header .place-current:not(.lang-current)")


def test_a_partners_home_offers_its_own_dock_and_warehouses(live_server, e2e_world, handheld):
    page = handheld.new_page()
    sign_in(page, live_server, "partner")
    assert page.url.endswith("/receive")
    page.click("header >> text=Home")
    page.wait_for_selector("#your-warehouses")
    assert "Main DC" not in page.inner_text("body")  # another organisation's warehouse is never offered
    page.click("#your-warehouses .place-choice:has-text('FastLane Reno')")
    page.wait_for_selector("#work-today")
    assert "My work today at 3PL1" in page.inner_text("#work-today")
    assert "Partner · partner" in page.inner_text("header")
    shoot(page, "home-partner-handheld")
    # one warehouse, chosen: the header names it, with nothing to open
    assert not page.query_selector("summary.place-current:not(.lang-current)") and "3PL1" in page.inner_text("header .place-only")
    small = too_small(page, "header, main")
    assert small == [], small
    page.goto(f"{live_server}/receive")
    assert "Where are you working?" not in page.inner_text("main")  # the scan screen works at 3PL1 now


def test_nothing_overflows_at_360_px(live_server, e2e_world, narrow):
    for username in ("worker", "partner"):
        narrow.clear_cookies()  # the next person signs in on this device
        page = narrow.new_page()
        sign_in(page, live_server, username)
        for path in ("/", "/receive", "/labels/"):
            page.goto(f"{live_server}{path}")
            shoot(page, f"home-360-{username}{path.replace('/', '-').rstrip('-')}")
            page.click("summary.place-current:not(.lang-current)")  # nothing chosen yet: the header offers the list
            shoot(page, f"home-360-{username}{path.replace('/', '-').rstrip('-')}-switch-open")
            small = too_small(page, "header")
            assert small == [], (username, path, small)
        page.goto(f"{live_server}/")
        assert too_small(page, "main") == []
        page.close()


def test_a_supervisors_home_shows_the_desk_and_its_queues(live_server, e2e_world, e2e_db_url, desktop):
    engine = make_engine(e2e_db_url)
    with Session(engine, expire_on_commit=False) as s:
        make_units(s, e2e_world, 3, paid="25.00", aged_hours=80)
        make_units(s, e2e_world, 2, pending_refund=True, paid="320.00")
        unidentified_parcel(s, e2e_world)
    engine.dispose()
    page = desktop.new_page()
    sign_in(page, live_server, "super")
    assert page.url.endswith("/desk")
    page.click("header >> text=Home")
    page.wait_for_selector("#desk-counts")
    assert page.inner_text("#desk-counts [data-queue=quarantine] .queue-card-count") == "5"
    assert page.inner_text("#desk-counts [data-queue=refunds] .queue-card-count") == "2"
    assert "Reports" in page.inner_text("main") and "Super · supervisor" in page.inner_text("header")
    shoot(page, "home-supervisor-desktop")
    page.click("main >> text=The desk")
    assert page.url.endswith("/desk")


def test_an_admins_home_is_the_console(live_server, e2e_world, desktop):
    page = desktop.new_page()
    sign_in(page, live_server, "admin")
    assert page.url.endswith("/admin/users")
    page.click("header >> text=Home")
    page.wait_for_selector("main .tile")
    assert "Admin · admin" in page.inner_text("header") and not page.query_selector("header summary:not(.lang-current)")
    shoot(page, "home-admin-desktop")
    page.click("main .tile:has-text('Warehouses')")
    assert page.url.endswith("/admin/warehouses")
