"""The offline shell in Chromium at Pixel 5 size (issue 18): the service worker keeps the scan
screen's shell, a reload with no network shows it with an "Offline" banner instead of the browser's
error page, a scan made there waits on the device and is sent once when the network is back; the
worker keeps nothing but the shell, its script, styles and icons."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from app.receiving.models import Parcel
from tests.e2e.conftest import shoot, sign_in

pytestmark = pytest.mark.e2e

_CACHED = """async () => {
  const out = {};
  for (const name of await caches.keys()) {
    out[name] = (await (await caches.open(name)).keys()).map(r => new URL(r.url).pathname);
  }
  return out;
}"""


def test_a_reload_offline_shows_the_scan_screen_and_its_queue_is_sent_once_back_online(
        live_server, e2e_world, handheld, e2e_db_url):
    page = handheld.new_page()
    sign_in(page, live_server, "worker")
    page.goto(f"{live_server}/receive")
    page.click("text=WH1 · Main DC")
    page.wait_for_selector("text=Scan a parcel label")
    page.wait_for_function("navigator.serviceWorker.controller !== null")  # installed, and in charge of the page

    cached = page.evaluate(_CACHED)
    assert len(cached) == 1, cached
    paths = next(iter(cached.values()))
    assert paths[0] == "/offline" and len(paths) == 7, paths
    assert all(p.startswith("/static/") for p in paths[1:]), paths  # the shell's own files, nothing else
    assert not any(p.startswith("/receive") for p in paths)  # no page of data

    handheld.set_offline(True)
    page.reload()
    page.wait_for_selector(".offline-banner")
    assert page.inner_text(".offline-banner").startswith("Offline")
    assert page.url == f"{live_server}/receive"  # the scan screen's address, the shell's content
    assert page.is_visible("#scan") and page.get_attribute("#scan", "inputmode") == "none"
    page.fill("#scan", e2e_world.tracking.tracking_number)
    page.press("#scan", "Enter")
    page.wait_for_selector("#queue-status:not([hidden])")
    assert page.inner_text("#queue-status").startswith("Offline: 1 scan queued")
    path = shoot(page, "offline-shell")
    assert path.exists()

    handheld.set_offline(False)  # the shell reloads into the scan screen, which sends the queue
    page.wait_for_selector("#parcel", timeout=15000)
    page.wait_for_function("() => !Object.keys(localStorage).some(k => k.startsWith('dockhand.scanQueue.v2.'))")
    assert not page.is_visible(".offline-banner")
    engine = create_engine(e2e_db_url)
    try:
        with Session(engine) as s:
            assert s.scalar(select(func.count()).select_from(Parcel)) == 1  # sent once
    finally:
        engine.dispose()


def test_without_anybody_signed_in_the_shell_does_not_scan(live_server, e2e_world, handheld):
    page = handheld.new_page()
    page.goto(f"{live_server}/offline")
    page.wait_for_selector(".offline-banner")
    assert page.is_visible("#offline-nobody") and page.is_disabled("#scan")
