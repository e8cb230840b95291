"""The admin console in Chromium at 1366x900: an admin creates a partner login with a one-time
password, that partner signs in on a handheld and lands on its own dock; the admin then signs it
out everywhere and the audit log shows who did what."""
from __future__ import annotations

from sqlalchemy import create_engine, text

from tests.e2e.conftest import receive_one, shoot, sign_in


def test_an_admin_creates_a_partner_login_that_works_on_a_handheld(live_server, e2e_world, desktop, handheld):
    page = desktop.new_page()
    sign_in(page, live_server, "admin")
    assert page.url.endswith("/admin/users")
    page.click("summary:has-text('Add a user')")
    page.fill("input[name=username]", "fastlane.pat")
    page.fill("input[name=name]", "Pat at FastLane")
    page.select_option("select[name=role]", "partner")
    page.select_option("select[name=partner_org_id]", label="FastLane 3PL")
    page.click("button:has-text('Create with a one-time password')")
    password = page.inner_text(".one-time .password code").strip()
    assert len(password) >= 12
    shoot(page, "admin-users-created-desktop")

    phone = handheld.new_page()
    sign_in(phone, live_server, "fastlane.pat", password)
    assert phone.url.endswith("/receive")
    assert "Main DC" not in phone.inner_text("main")  # another organisation's warehouse is not offered
    shoot(phone, "admin-created-partner-on-handheld")

    page.fill("input[name=q]", "fastlane")
    page.click("button:has-text('Filter')")
    page.wait_for_selector("#users tr:has-text('fastlane.pat') >> text=Sign out everywhere")
    page.click("#users tr:has-text('fastlane.pat') >> text=Sign out everywhere")
    page.wait_for_selector("text=is signed out on every device")
    phone.goto(f"{live_server}/receive")
    assert "/login" in phone.url
    page.click("nav >> text=Audit log")
    log = page.inner_text("main")
    assert "signed out everywhere" in log and "created" in log
    shoot(page, "admin-audit-desktop")


def test_an_admin_sets_up_a_3pl_dock_and_its_login_receives_there_only(live_server, e2e_world, e2e_db_url, desktop,
                                                                       handheld):
    """Issue 16's walk: a partner organisation serving a merchant, a warehouse it runs (with its
    locations), a login for it; that login signs in and receives a return at that warehouse only."""
    page = desktop.new_page()
    sign_in(page, live_server, "admin")
    page.click("nav >> text=Partners")
    page.fill("#partners input[name=name]", "Lone Star 3PL")
    page.check("#partners label:has-text('Acme Outfitters') input")
    page.click("text=Add partner organisation")
    page.wait_for_selector("#partners tr:has-text('Lone Star 3PL')")
    page.click("nav >> text=Warehouses")
    page.fill("#warehouses input[name=code]", "DAL2")
    page.fill("#warehouses input[name=name]", "Dallas returns")
    page.select_option("#warehouses select[name=partner_org_id]", label="Lone Star 3PL")
    page.click("text=Add warehouse")
    page.wait_for_selector("#warehouses tr:has-text('DAL2')")
    shoot(page, "admin-warehouses-desktop")
    page.click("#warehouses a:has-text('DAL2')")
    assert "LOC:DAL2-DOCK-01" in page.inner_text("#locations")
    shoot(page, "admin-warehouse-locations-desktop")
    page.click("nav >> text=Users")
    page.click("summary:has-text('Add a user')")
    page.fill("input[name=username]", "lonestar.sam")
    page.select_option("select[name=role]", "partner")
    page.select_option("select[name=partner_org_id]", label="Lone Star 3PL")
    page.click("button:has-text('Create with a one-time password')")
    password = page.inner_text(".one-time .password code").strip()

    # The storefront authorises the return for the new dock (its API and CSV import come later).
    engine = create_engine(e2e_db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE rmas SET warehouse_id = (SELECT id FROM warehouses WHERE code = 'DAL2') "
                          "WHERE id = :id"), {"id": e2e_world.rma.id})
    engine.dispose()

    phone = handheld.new_page()
    sign_in(phone, live_server, "lonestar.sam", password)
    offered = phone.inner_text("main")
    assert "DAL2" in offered and "Main DC" not in offered and "FastLane" not in offered
    phone.click("text=DAL2 · Dallas returns")
    phone.wait_for_selector("text=Scan a parcel label")  # the choice is saved before the first scan is sent
    receive_one(phone, e2e_world.tracking.tracking_number, "036000291452")
    shoot(phone, "admin-made-3pl-receives-on-handheld")


def test_an_admin_runs_the_settings_merchants_and_reason_codes(live_server, e2e_world, desktop, handheld):
    """The console's configuration screens in Chromium: a merchant's refund threshold, the queue
    ageing, a new sales channel, a reason code classified, a warehouse retired; at desk width and a
    phone's (nothing overflows)."""
    page = desktop.new_page()
    sign_in(page, live_server, "admin")
    page.click("nav >> text=Settings")
    page.fill("#setting-queue_ageing_hours", "24")
    page.click("text=Save settings")
    page.wait_for_selector("text=Saved: queue ageing (hours)")
    page.select_option("#settings select[name=target]", label="Acme Outfitters (ACME)")
    page.fill("#settings input[name=amount]", "120")
    page.click("text=Set threshold")
    page.wait_for_selector("#settings td:has-text('merchant Acme Outfitters')")
    shoot(page, "admin-settings-desktop")
    page.click("nav >> text=Merchants")
    page.fill("#channels-h ~ form input[name=code]", "ebay")
    page.fill("#channels-h ~ form input[name=name]", "eBay store")
    page.click("text=Add sales channel")
    page.wait_for_selector("text=eBay store (ebay) added")
    shoot(page, "admin-merchants-desktop")
    page.click("nav >> text=Reason codes")
    page.fill(".add-reason input[name=code]", "wrong_size")
    page.fill(".add-reason input[name=label]", "Wrong size or fit")
    page.click("text=Add reason code")
    page.wait_for_selector("text=Reason code 'wrong_size' added.")
    row = page.locator("#reasons tr:has(code:text-is('wrong_size'))")
    row.locator("select[name=avoidable]").select_option("yes")
    row.locator("select[name=responsible_party]").select_option("product_content")
    row.locator("button:has-text('Save')").click()
    page.wait_for_selector("text=Reason code 'wrong_size' saved.")
    shoot(page, "admin-reasons-desktop")
    page.click("nav >> text=Warehouses")
    page.click("#warehouses a:has-text('WH1')")
    page.uncheck("#warehouse-head input[name=active]")
    page.click("text=Save warehouse")
    page.wait_for_selector("#warehouse-head h1:has-text('retired')")
    shoot(page, "admin-warehouse-retired-desktop")
    page.click("nav >> text=Audit log")
    log = page.inner_text("main")
    assert "warehouse changed" in log and "reason code classified" in log and "refund threshold set" in log
    shoot(page, "admin-audit-config-desktop")

    phone = handheld.new_page()
    sign_in(phone, live_server, "admin")
    for path, name in [("/admin/settings", "admin-settings-handheld"), ("/admin/merchants", "admin-merchants-handheld"),
                       ("/admin/reasons", "admin-reasons-handheld")]:
        phone.goto(f"{live_server}{path}")
        shoot(phone, name)
