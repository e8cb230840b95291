"""Response headers that keep pages safe: a Content-Security-Policy that runs only Dockhand's own
scripts, no caching of pages with customer or money data, HSTS in production, cookie flags."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import login

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"


def _csp(resp) -> dict[str, str]:  # type: ignore[no-untyped-def]
    policy = resp.headers["Content-Security-Policy"]
    return {d.split()[0]: d.partition(" ")[2] for d in (p.strip() for p in policy.split(";")) if d}


@pytest.mark.parametrize("path", ["/login", "/receive", "/desk", "/desk/queue/refunds", "/nothing-here"])
def test_pages_run_only_dockhands_own_scripts_and_are_not_cached(client, world, path):
    if path != "/login":  # signed in, /login is a redirect (no document, no policy)
        login(client, "super")
    resp = client.get(path)
    csp = _csp(resp)
    # Dockhand's own files, and WebAssembly compiled (the vendored barcode decoder): no eval, no inline
    assert csp["script-src"] == "'self' 'wasm-unsafe-eval'"
    assert csp["object-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert resp.headers["Cache-Control"] == "no-store"


def test_static_files_stay_cacheable(client, world):
    resp = client.get("/static/dockhand.js")
    assert resp.status_code == 200
    assert "no-store" not in resp.headers.get("Cache-Control", "")


def test_no_template_carries_inline_script_or_event_handlers():
    """With script-src 'self' an inline script would not run: it must live in static/."""
    offenders = []
    for path in TEMPLATES.rglob("*.html"):
        html = path.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) or re.search(r"\son[a-z]+\s*=", html) or "hx-on" in html:
            offenders.append(str(path.relative_to(TEMPLATES)))
    assert offenders == []


def test_production_sends_hsts_and_secure_cookies(app, world, monkeypatch):
    from app import create_app

    monkeypatch.setenv("DOCKHAND_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    prod = create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"], "WTF_CSRF_ENABLED": False,
                       "PHOTO_DIR": app.config["PHOTO_DIR"]})
    client = prod.test_client()
    resp = client.post("/login", data={"username": "super", "password": "password123", "remember": "y"},
                       base_url="https://dock.example")
    assert resp.status_code == 302
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    cookies = resp.headers.getlist("Set-Cookie")
    for name in ("session", "remember_token"):
        cookie = next(c for c in cookies if c.startswith(name + "="))
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie


def test_the_demo_sends_no_hsts(client, world):
    assert "Strict-Transport-Security" not in client.get("/login").headers


def test_the_document_policy_goes_with_documents_only(client, world):
    """Redirects and htmx fragments carry no document, so no CSP or frame policy: their pages' govern."""
    redirect = client.get("/")
    assert redirect.status_code == 302 and "Content-Security-Policy" not in redirect.headers
    login(client, "worker")
    fragment = client.get("/receive", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "Content-Security-Policy" not in fragment.headers
    assert fragment.headers["X-Content-Type-Options"] == "nosniff" and fragment.headers["Cache-Control"] == "no-store"
    page = client.get("/receive")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"] and page.headers["X-Frame-Options"] == "DENY"
