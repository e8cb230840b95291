"""The admin console in Chromium at 1366x900: an admin creates a partner login with a one-time
password, that partner signs in on a handheld and lands on its own dock; the admin then signs it
out everywhere and the audit log shows who did what."""
from __future__ import annotations

from tests.e2e.conftest import shoot, sign_in


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
