"""The offline shell's three answers (app/web/offline.py): the service worker, the shell it keeps and
the web app manifest; what the worker keeps is the shell and its files, never a page of data."""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

from PIL import Image, ImageChops

from app.web.offline import ICON_SIZES, draw_icon
from tests.conftest import login

ROOT = Path(__file__).resolve().parents[3]


def _precached(resp) -> list[str]:  # type: ignore[no-untyped-def]
    return json.loads(re.search(r"URLS = (\[.*?\]);", resp.get_data(as_text=True)).group(1))


def test_the_service_worker_keeps_the_shell_and_its_hashed_files_and_nothing_else(client, world):
    resp = client.get("/sw.js")
    assert resp.status_code == 200 and resp.mimetype == "text/javascript"
    assert resp.headers["Cache-Control"] == "no-cache"  # a new release is a new worker at once
    urls = _precached(resp)
    assert urls[0] == "/offline" and len(urls) == 7
    # the content-hashed names the pages use (make assets; the tests build them)
    assert all(re.fullmatch(r"/static/[\w/.-]+-[0-9a-f]{32}\.(css|js|png)", url) for url in urls[1:]), urls
    login(client, "worker")
    page = client.get("/receive").get_data(as_text=True)
    for url in urls[1:5]:
        assert url in page  # the very files the scan screen loads
    for url in urls:
        assert client.get(url).status_code == 200
    assert not any(url.startswith(("/receive", "/desk", "/api")) for url in urls)
    again = client.get("/sw.js", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status_code == 304  # unchanged: nothing sent, the browser keeps its worker


def test_the_shell_is_the_scan_screen_with_no_ones_data(client, world):
    login(client, "worker")  # even asked by a signed-in browser, it names nobody and carries no token
    resp = client.get("/offline")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert 'id="scan-form"' in html and 'inputmode="none"' in html and "offline-banner" in html
    assert "data-offline-shell" in html and "data-user=" not in html
    assert "csrf_token" not in html and "X-CSRFToken" not in html
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


def test_every_page_names_the_manifest_and_the_worker(client, world):
    html = client.get("/login").get_data(as_text=True)
    assert '<link rel="manifest" href="/manifest.webmanifest">' in html
    assert 'data-service-worker="/sw.js"' in html


def test_the_manifest_installs_dockhand_full_screen_with_its_icons(client, world):
    resp = client.get("/manifest.webmanifest")
    assert resp.status_code == 200 and resp.mimetype == "application/manifest+json"
    manifest = resp.get_json(force=True)
    assert (manifest["name"], manifest["start_url"], manifest["display"]) == ("Dockhand", "/", "standalone")
    css = (ROOT / "static" / "dockhand.css").read_text()
    header = re.search(r"\.topbar \{[^}]*background: (#[0-9a-f]{6})", css).group(1)
    background = re.search(r"--bg: (#[0-9a-f]{6})", css).group(1)
    assert (manifest["theme_color"], manifest["background_color"]) == (header, background)
    sizes = {}
    for icon in manifest["icons"]:
        png = client.get(icon["src"])
        assert png.status_code == 200 and png.mimetype == "image/png"
        with Image.open(io.BytesIO(png.data)) as im:
            assert f"{im.width}x{im.height}" == icon["sizes"]
            sizes[icon["sizes"]] = icon["purpose"]
    assert set(sizes) == {"192x192", "512x512"}


def test_the_committed_icons_are_what_draw_icon_draws():
    """`flask --app wsgi offline icons` drew them: change draw_icon, run it again."""
    for size in ICON_SIZES:
        with Image.open(ROOT / "static" / "icons" / f"icon-{size}.png") as im:
            assert ImageChops.difference(im.convert("RGB"), draw_icon(size)).getbbox() is None
