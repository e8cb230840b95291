"""Small answers on the wire: pages and JSON compressed, static files at content-hashed URLs that
a browser keeps for a year, and what an old hash gets after a deploy."""
from __future__ import annotations

import contextlib
import gzip
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from flask_static_digest.digester import compile as digest

from tests.conftest import login

STATIC = Path(__file__).resolve().parents[3] / "static"
SOURCES = ["dockhand.css", "dockhand.js", "scan.js", "vendor/htmx.min.js"]


def _build(folder: Path) -> dict[str, str]:
    with contextlib.redirect_stdout(io.StringIO()):
        digest(str(folder), str(folder), [], True, True)
    return json.loads((folder / "cache_manifest.json").read_text())


@pytest.fixture
def static_copy(tmp_path: Path) -> Path:
    """The sources of static/, built in a folder of the test's own."""
    folder = tmp_path / "static"
    for name in SOURCES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(STATIC / name, folder / name)
    return folder


def _app(app, folder: Path):  # type: ignore[no-untyped-def]
    from app import create_app

    return create_app({**app.config, "STATIC_FOLDER": str(folder)})


def _asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', html)


def test_pages_and_scripts_are_gzipped_for_a_client_that_accepts_it(client, world):
    page = client.get("/login", headers={"Accept-Encoding": "gzip"})
    assert page.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in page.headers["Vary"]
    html = gzip.decompress(page.data).decode()
    assert "<form" in html
    urls = _asset_urls(html)
    assert len(urls) == 4
    for url in urls:
        asset = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert asset.status_code == 200
        assert asset.headers["Content-Encoding"] == "gzip", url
        source = re.sub(r"-[0-9a-f]{32}\.", ".", url.removeprefix("/static/"))
        assert gzip.decompress(asset.data) == (STATIC / source).read_bytes()


def test_a_client_without_gzip_gets_plain_bytes(client, world):
    page = client.get("/login")
    assert "Content-Encoding" not in page.headers
    assert b"<form" in page.data


def test_hashed_static_urls_are_cached_for_a_year_and_plain_names_for_a_minute(client, world):
    html = client.get("/login").get_data(as_text=True)
    hashed = [u for u in _asset_urls(html) if re.search(r"-[0-9a-f]{32}\.", u)]
    assert len(hashed) == 4, "every page asset is asked for by its content hash"
    for url in hashed:
        cache = client.get(url).headers["Cache-Control"]
        assert "immutable" in cache and "max-age=31536000" in cache and "public" in cache
    assert client.get("/static/dockhand.js").headers["Cache-Control"] == "max-age=60, public"


def test_a_small_answer_is_not_compressed(client, world):
    """Compressing /health's 40 bytes would only cost CPU (COMPRESS_MIN_SIZE)."""
    resp = client.get("/health", headers={"Accept-Encoding": "gzip"})
    assert resp.status_code == 200 and resp.json["status"] == "ok"
    assert "Content-Encoding" not in resp.headers


def test_an_old_hash_still_answers_after_a_deploy_and_an_unknown_one_is_a_clean_404(app, static_copy):
    first = _build(static_copy)
    (static_copy / "dockhand.css").write_text((static_copy / "dockhand.css").read_text() + "\n.new{}\n")
    second = _build(static_copy)
    assert first["dockhand.css"] != second["dockhand.css"]
    client = _app(app, static_copy).test_client()

    html = client.get("/login").get_data(as_text=True)
    assert f"/static/{second['dockhand.css']}" in html
    old = client.get(f"/static/{first['dockhand.css']}")
    assert old.status_code == 200 and b".new{}" not in old.data
    assert "immutable" in old.headers["Cache-Control"]
    new = client.get(f"/static/{second['dockhand.css']}")
    assert b".new{}" in new.data
    gone = client.get("/static/dockhand-" + "0" * 32 + ".css")
    assert gone.status_code == 404
    assert "Nothing here" in gone.get_data(as_text=True)


def test_a_stale_build_is_not_used(app, static_copy, caplog):
    built = _build(static_copy)
    js = static_copy / "scan.js"
    js.write_text(js.read_text() + "\n// edited after the build\n")
    client = _app(app, static_copy).test_client()
    html = client.get("/login").get_data(as_text=True)
    assert built["scan.js"] not in html and built["dockhand.css"] not in html
    assert 'src="/static/scan.js"' in html
    assert "changed since `make assets`" in caplog.text
