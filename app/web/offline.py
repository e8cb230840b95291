"""The handheld's offline shell and the web app manifest.

- `/sw.js`: the service worker, served from the site's root so that its scope covers `/receive`
  and `/` (where the installed app starts). It keeps the scan screen's shell (`/offline`) with its
  script, styles and icons at their content-hashed URLs, and answers a navigation to `/` or
  `/receive…` with that shell when the network fails. It keeps nothing else: no POST answer, no page
  of data (every page stays `no-store`). Its text names the hashed URLs and the shell's digest, so a
  release that changes either is a new worker, which replaces the old one and its cache.
- `/offline`: the shell: the scan screen with no data in it (no user, no parcel, no CSRF token) and
  an "Offline" banner. Scans made there wait in the device's queue (static/scan.js) under the last
  person signed in on it, and are sent by the real scan screen once the connection is back.
- `/manifest.webmanifest`: name, icons (drawn with Pillow: `flask --app wsgi offline icons`), start
  URL `/`, standalone display, the header's colour.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import click
from flask import Blueprint, Response, current_app, render_template, request, url_for

bp = Blueprint("offline", __name__)

THEME_COLOUR = "#1f2937"  # static/dockhand.css: the header (.topbar)
BACKGROUND_COLOUR = "#f4f5f7"  # static/dockhand.css: --bg
ACCENT = "#0b57d0"  # static/dockhand.css: --accent
ICON_SIZES = (192, 512)
# What the shell needs, by their names under static/ (served at content-hashed URLs).
SHELL_ASSETS = ("dockhand.css", "vendor/htmx.min.js", "dockhand.js", "scan.js",
                *(f"icons/icon-{size}.png" for size in ICON_SIZES))


def _static_url(name: str) -> str:
    return current_app.jinja_env.globals["static_url"](name)  # type: ignore[no-any-return,operator]


def _shell_html() -> str:
    return render_template("receiving/offline.html", shell=True)


@bp.get("/offline")
def shell() -> Response:
    """The scan screen's shell, as the service worker keeps it."""
    return Response(_shell_html(), mimetype="text/html")


@bp.get("/sw.js")
def service_worker() -> Response:
    """The service worker: its precache list and version are this release's."""
    urls = [url_for("offline.shell"), *(_static_url(name) for name in SHELL_ASSETS)]
    # A hashed URL names its content; a plain one (no `make assets`) is told by its file's stamp.
    static = Path(current_app.static_folder or "static")
    stamps = [f"{st.st_mtime_ns}:{st.st_size}" for st in (static.joinpath(name).stat() for name in SHELL_ASSETS)]
    version = hashlib.sha256("\n".join([*urls, *stamps, _shell_html()]).encode()).hexdigest()[:16]
    body = render_template("offline/sw.js", urls=urls, shell=urls[0], version=version)
    resp = Response(body, mimetype="text/javascript")
    resp.headers["Cache-Control"] = "no-cache"  # the browser asks again each time; a 304 when unchanged
    resp.add_etag()
    return resp.make_conditional(request)


@bp.get("/manifest.webmanifest")
def manifest() -> Response:
    """The web app manifest: a phone can add Dockhand to its home screen and open it full screen."""
    icons = [{"src": _static_url(f"icons/icon-{size}.png"), "sizes": f"{size}x{size}", "type": "image/png",
              "purpose": purpose} for size in ICON_SIZES for purpose in ("any", "maskable")]
    body = {"name": "Dockhand", "short_name": "Dockhand", "description": "Returns receiving at the dock",
            "start_url": "/", "scope": "/", "display": "standalone", "theme_color": THEME_COLOUR,
            "background_color": BACKGROUND_COLOUR, "icons": icons}
    resp = Response(json.dumps(body, indent=1), mimetype="application/manifest+json")
    resp.headers["Cache-Control"] = "no-cache"
    return resp


def draw_icon(size: int):  # type: ignore[no-untyped-def]
    """Dockhand's icon: a barcode on a parcel label, on the header's colour; everything inside the
    middle 60%, so that a round or squircle mask (a "maskable" icon) cuts none of it."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (size, size), THEME_COLOUR)
    draw = ImageDraw.Draw(im)
    unit = size / 100
    draw.rounded_rectangle((22 * unit, 26 * unit, 78 * unit, 74 * unit), radius=6 * unit, fill="#ffffff")
    x = 29.0
    for width in (3, 1.5, 1.5, 4, 1.5, 3, 1.5, 1.5, 4, 1.5, 3, 1.5, 3):
        draw.rectangle((x * unit, 33 * unit, (x + width) * unit - 1, 58 * unit), fill="#111111")
        x += width + 0.95  # thirteen bars from 29 to 71, as wide as the blue line under them
    draw.rectangle((29 * unit, 63 * unit, 71 * unit, 67 * unit), fill=ACCENT)
    return im


@bp.cli.command("icons")
def icons_cmd() -> None:
    """Draw the manifest's icons into static/icons/ (committed; run again after changing draw_icon)."""
    folder = Path(current_app.static_folder or "static") / "icons"
    folder.mkdir(parents=True, exist_ok=True)
    for size in ICON_SIZES:
        draw_icon(size).save(folder / f"icon-{size}.png", optimize=True)
        click.echo(f"static/icons/icon-{size}.png")
