"""Browser fixtures: the app served on a real port against PostgreSQL, Chromium via Playwright.

Screenshots go to test-artifacts/screenshots/ (not committed); look at them.
"""
from __future__ import annotations

import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from werkzeug.serving import make_server

from tests.conftest import _truncate_pg

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="session")
def playwright_instance():  # type: ignore[no-untyped-def]
    """One Playwright per process."""
    from playwright.sync_api import sync_playwright

    home = tempfile.mkdtemp(prefix="dockhand-chromium-")
    os.environ.setdefault("XDG_CONFIG_HOME", home)
    os.environ.setdefault("XDG_CACHE_HOME", home)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance):  # type: ignore[no-untyped-def]
    """Debian's Chromium, headless."""
    b = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield b
    b.close()


@pytest.fixture
def e2e_db_url(pg_url: str) -> str:
    """The browser tests run against PostgreSQL, the production database, emptied first."""
    engine = create_engine(pg_url)
    try:
        _truncate_pg(engine)
    finally:
        engine.dispose()
    return pg_url


@pytest.fixture
def live_app(e2e_db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The real app (CSRF on) for the browser."""
    from app import create_app
    from app.db import db

    from tests.fakes import PRINTER_NETWORKS

    application = create_app({"DATABASE_URL": e2e_db_url, "SECRET_KEY": "e2e", "PHOTO_DIR": str(tmp_path / "photos"),
                              "PRINTER_NETWORKS": PRINTER_NETWORKS})
    yield application
    db.dispose()


@pytest.fixture
def live_server(live_app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Serve the app on a free 127.0.0.1 port in a thread; yields the base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = make_server("127.0.0.1", port, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def e2e_world(e2e_db_url: str):  # type: ignore[no-untyped-def]
    """The factories' world, written to the browser tests' database."""
    from sqlalchemy.orm import Session

    from app.db import make_engine
    from tests.factories import build_world

    engine = make_engine(e2e_db_url)
    with Session(engine, expire_on_commit=False) as s:
        world = build_world(s)
    engine.dispose()
    return world


def _refusing_csp_violations(ctx):  # type: ignore[no-untyped-def]
    """Yield the context, then fail the test if the Content-Security-Policy blocked anything
    (an inline script or handler that would silently not run for a worker)."""
    blocked: list[str] = []
    ctx.on("console", lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield ctx
    ctx.close()
    assert blocked == [], blocked


@pytest.fixture
def handheld(browser, playwright_instance):  # type: ignore[no-untyped-def]
    """A Pixel 5 sized, touch-enabled browser context."""
    yield from _refusing_csp_violations(browser.new_context(**playwright_instance.devices["Pixel 5"]))


@pytest.fixture
def desktop(browser):  # type: ignore[no-untyped-def]
    """A desktop-sized browser context."""
    yield from _refusing_csp_violations(browser.new_context(viewport={"width": 1366, "height": 900}))


def shoot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    """Screenshot the page into test-artifacts/screenshots/NAME.png and fail on horizontal overflow."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{name}: page overflows horizontally by {overflow}px"
    return path


TAPPABLE = "a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button], label:has(input)"
# Every visible tappable element under `root` with its size (a radio or checkbox inside its label is
# tapped through the label: the label is measured).
_TARGETS = """([root, sel]) => Array.from(document.querySelectorAll(root)).flatMap(r => Array.from(r.querySelectorAll(sel)))
  .filter(el => el.getClientRects().length && getComputedStyle(el).visibility !== 'hidden')
  .filter(el => !el.closest('.visually-hidden') && !((el.type === 'radio' || el.type === 'checkbox') && el.closest('label')))
  .map(el => { const b = el.getBoundingClientRect();
               return {what: el.tagName + ' ' + (el.textContent || el.value || el.name || '').trim().replace(/\\s+/g, ' ').slice(0, 30),
                       w: Math.round(b.width * 10) / 10, h: Math.round(b.height * 10) / 10}; })"""


def tap_targets(page, root: str = "header, main") -> list[dict]:  # type: ignore[no-untyped-def]
    """Every visible tappable element under `root`, with its size in CSS pixels."""
    return page.evaluate(_TARGETS, [root, TAPPABLE])


def too_small(page, root: str = "header, main") -> list[dict]:  # type: ignore[no-untyped-def]
    """The tappable elements under `root` smaller than a gloved finger's 44x44 px."""
    return [t for t in tap_targets(page, root) if t["w"] < 44 or t["h"] < 44]


def sign_in(page, base: str, username: str, password: str = "password123") -> None:  # type: ignore[no-untyped-def]
    """Sign in through the login form."""
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def receive_one(page, tracking_number: str, item_code: str) -> None:  # type: ignore[no-untyped-def]
    """On the scan screen: open the parcel by its tracking number, scan one item, wait for its LPN."""
    page.fill("#scan", tracking_number)
    page.press("#scan", "Enter")
    page.wait_for_selector("#parcel")
    page.fill("#scan", item_code)
    page.press("#scan", "Enter")
    page.wait_for_selector(".result-ok .lpn")
