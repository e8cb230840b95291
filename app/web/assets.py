"""Static files at content-hashed URLs, cached for a year, compressed once; pages compressed per answer.

`make assets` (`flask --app wsgi digest compile`, Flask-Static-Digest; `make run` and `make test`
call it, a deploy runs it once per release) writes beside each file under static/ a copy named by
its MD5 (`dockhand-<md5>.css`), gzip and brotli variants, and `static/cache_manifest.json`.
Templates ask `static_url('dockhand.css')` for the hashed name.

WhiteNoise answers /static/ in front of Flask: the variant the client accepts, with
`Cache-Control: public, max-age=31536000, immutable` on hashed names (a repeat visit asks for none
of them) and a minute's cache on plain names. An earlier release's hashed files stay on disk until
`flask digest clean`, so a page still open from before a deploy keeps its assets; on a server that
never had them they are a plain 404.

A manifest older than one of its sources is not used (a warning says so): plain names are served
rather than an edited file hidden behind its old copy.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from flask import Flask, url_for
from flask_compress import Compress
from whitenoise import WhiteNoise

log = logging.getLogger(__name__)

MANIFEST = "cache_manifest.json"
HASHED_NAME = re.compile(r"-[0-9a-f]{32}\.")  # Flask-Static-Digest's MD5 suffix
ONE_YEAR = 31536000
compress = Compress()


class StaticFiles(WhiteNoise):
    """WhiteNoise, with hashed names cached for one year (its default says ten)."""

    FOREVER = ONE_YEAR


def load_manifest(static_folder: Path) -> dict[str, str]:
    """The hashed name of each static file, or {} when there is no manifest or it is stale."""
    path = static_folder / MANIFEST
    try:
        manifest = json.loads(path.read_text())
        built = path.stat().st_mtime
        stale = [name for name in manifest if (static_folder / name).stat().st_mtime > built]
    except (OSError, ValueError):
        return {}
    if stale:
        log.warning("static files changed since `make assets` (%s): serving them by their plain names",
                    ", ".join(sorted(stale)))
        return {}
    return manifest


def register_assets(app: Flask) -> None:
    """Compress pages and JSON, serve static files through WhiteNoise, give templates `static_url`."""
    app.config.setdefault("COMPRESS_MIN_SIZE", 500)  # a smaller answer is not worth the CPU
    app.config.setdefault("FLASK_STATIC_DIGEST_COMPRESSION", ["gzip", "brotli"])  # for `make assets`
    app.config.setdefault("FLASK_STATIC_DIGEST_BLACKLIST_FILTER", [])
    compress.init_app(app)

    static_folder = Path(app.static_folder or "static")
    manifest = load_manifest(static_folder)

    def static_url(filename: str) -> str:
        return url_for("static", filename=manifest.get(filename, filename))

    app.add_template_global(static_url)
    app.wsgi_app = StaticFiles(  # type: ignore[method-assign]
        app.wsgi_app, root=str(static_folder), prefix="static/", max_age=60,
        autorefresh=app.debug, immutable_file_test=lambda _path, url: bool(HASHED_NAME.search(url)))
