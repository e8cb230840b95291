"""The load driver: stdlib HTTP clients that behave like the handheld's scan box and unit screen.

One client = one worker login = one process (no GIL shared with the other clients). It keeps
its connection alive where the server allows it (gunicorn's sync worker closes after every
response; http.client reconnects by itself), keeps the session cookie, sends what
static/scan.js sends (HX-Request, the CSRF token, a fresh idempotency key per action) and
records, per request: what it was, the status, the client-side latency, the server time
(``Server-Timing``), the SQL statements (``X-SQL-Statements``), the pool checkouts and the
response bytes.
"""
from __future__ import annotations

import http.client
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
UNIT_RE = re.compile(r'/receive/units/(\d+)"')
PARCEL_ID_RE = re.compile(r'data-parcel-id="(\d+)"')
PARCEL_RE = re.compile(r'data-parcel="([0-9:]+)"')
VERSION_RE = re.compile(r'name="version" value="(\d+)"')
SERVER_TIMING_RE = re.compile(r"dur=([0-9.]+)")
CHECKLIST_KEYS = ("powers_on", "screen_ok", "accessories", "factory_reset", "no_liquid", "tags_attached", "unworn",
                  "no_stains", "size_matches", "seal_intact", "unused", "in_date", "lot_readable")

# kind, status, client ms, server ms (or -1), SQL statements (or -1), pool checkouts (or -1), bytes, end time
Record = tuple[str, int, float, float, int, int, int, float]


@dataclass
class Response:
    status: int
    body: str
    headers: http.client.HTTPMessage
    record: Record


class Client:
    """A cookie-keeping, CSRF-aware HTTP/1.1 client over one (re)connecting http.client connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conn = http.client.HTTPConnection(host, port, timeout=60)
        self.cookies: dict[str, str] = {}
        self.csrf: str | None = None
        self.records: list[Record] = []
        self.errors: list[str] = []

    def request(self, kind: str, method: str, path: str, fields: dict[str, Any] | None = None, *,
                htmx: bool = True, record: bool = True, extra_headers: dict[str, str] | None = None) -> Response:
        body = urlencode(fields) if fields is not None else None
        headers = {"Connection": "keep-alive"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if htmx:
            headers["HX-Request"] = "true"
        if self.csrf:
            headers["X-CSRFToken"] = self.csrf
        headers.update(extra_headers or {})
        t0 = time.perf_counter()
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive connection the server closed meanwhile: retry once on a new one. A
                # retried POST carries the same idempotency key, so it cannot have a second effect.
                self.conn.close()
                if attempt == 2:
                    raise
        if resp.will_close:
            self.conn.close()
        elapsed = (time.perf_counter() - t0) * 1000
        for raw in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = raw.partition("=")
            value = rest.split(";", 1)[0]
            if value and "expires=Thu, 01 Jan 1970" not in raw:
                self.cookies[name.strip()] = value
            else:
                self.cookies.pop(name.strip(), None)
        timing = SERVER_TIMING_RE.search(resp.headers.get("Server-Timing", ""))
        rec: Record = (kind, resp.status, elapsed, float(timing.group(1)) if timing else -1.0,
                       int(resp.headers.get("X-SQL-Statements", -1)), int(resp.headers.get("X-DB-Checkouts", -1)),
                       len(data), time.time())
        text = data.decode("utf-8", "replace")
        if record:
            self.records.append(rec)
            if not 200 <= resp.status < 300 and len(self.errors) < 5:
                self.errors.append(f"{kind} {method} {path} -> {resp.status}: {squash(text)}")
        return Response(resp.status, text, resp.headers, rec)

    def login(self, username: str, password: str) -> None:
        """Sign in through the real form, then pick up the CSRF token from the handheld page."""
        page = self.request("login", "GET", "/login", htmx=False, record=False)
        token = CSRF_RE.search(page.body)
        assert token, "no CSRF token on the login page"
        r = self.request("login", "POST", "/login", {"csrf_token": token.group(1), "username": username,
                                                     "password": password}, htmx=False, record=False)
        if r.status != 302:
            raise RuntimeError(f"login as {username} failed: {r.status}")
        page = self.request("page", "GET", "/receive", htmx=False, record=False)
        token = CSRF_RE.search(page.body)
        if page.status != 200 or not token:
            raise RuntimeError(f"/receive after login: {page.status}")
        self.csrf = token.group(1)

    # ------------------------------------------------------------------ the two benchmarked actions

    def scan(self, code: str, kind: str = "scan", parcel: str | None = None) -> Response:
        """POST /receive/scan as static/scan.js does it (with the id of the parcel card on screen)."""
        return self.request(kind, "POST", "/receive/scan", {"code": code, "key": key(), "csrf_token": self.csrf},
                            extra_headers={"X-Dockhand-Parcel": parcel} if parcel else None)

    def close_parcel(self, body: str) -> Response | None:
        m = PARCEL_ID_RE.search(body)
        if not m:
            return None
        return self.request("close", "POST", "/receive/close", {"parcel_id": m.group(1), "key": key(),
                                                                "csrf_token": self.csrf})

    def inspect(self, unit_id: int, grade: str, packaging: str) -> Response:
        fields = {"csrf_token": self.csrf, "key": key(), "grade": grade, "packaging": packaging, "notes": ""}
        fields.update({f"q_{k}": "yes" for k in CHECKLIST_KEYS})
        return self.request("inspect", "POST", f"/receive/units/{unit_id}/inspect", fields)

    def confirm(self, unit_id: int, version: str) -> Response:
        return self.request("confirm", "POST", f"/receive/units/{unit_id}/dispose",
                            {"csrf_token": self.csrf, "key": key(), "version": version})


def squash(html: str) -> str:
    """A response body shortened for an error line."""
    return re.sub(r"\s+", " ", html)[:300]


def key() -> str:
    """A fresh idempotency key, as the page would render it."""
    return uuid.uuid4().hex


def receive_parcels(c: Client, parcels: list[Any], deadline: float) -> int:
    """Scan-and-match until the deadline: scan a parcel label, every item in it, close it, next parcel."""
    done = 0
    for parcel in parcels:
        if time.time() >= deadline:
            break
        r = c.scan(parcel.number, kind="open")
        opened = r.body  # the parcel card, with the parcel id the close needs (item scans answer only what changed)
        card = PARCEL_RE.search(opened)
        for code in parcel.items:
            if time.time() >= deadline:
                return done
            r = c.scan(code, parcel=card.group(1) if card else None)
            if r.status == 200:
                done += 1
            if r.status == 200 and ('data-lpn' not in r.body or "result-warn" in r.body) and len(c.errors) < 5:
                c.errors.append(f"scan {code} did not match an expected line: {squash(r.body)}")
        if time.time() < deadline:
            c.close_parcel(opened)
    return done


def confirm_units(c: Client, unit_ids: list[int], deadline: float) -> int:
    """Confirm-disposition until the deadline: inspect a unit (grade, packaging, checklist), confirm the decision."""
    done = 0
    for i, uid in enumerate(unit_ids):
        if time.time() >= deadline:
            break
        r = c.inspect(uid, "ABCD"[i % 4], ("sealed", "opened", "damaged")[(i // 4) % 3])
        v = VERSION_RE.search(r.body)
        if r.status != 200 or not v:
            continue
        if time.time() >= deadline:
            break
        r = c.confirm(uid, v.group(1))
        if r.status == 200:
            done += 1
    return done


def client_main(idx: int, host: str, port: int, username: str, password: str, parcels: list[Any],
                units: list[int], warmup: float, duration: float, barrier: Any, out: Any) -> None:
    """One client process: log in once, then the scan phase, then the confirm phase, in step with the others."""
    try:
        c = Client(host, port)
        c.login(username, password)
        result: dict[str, Any] = {"idx": idx}
        phases = (("scan", lambda dl: receive_parcels(c, parcels, dl)), ("confirm", lambda dl: confirm_units(c, units, dl)))
        for name, run in phases:
            barrier.wait()
            t0 = time.time()
            c.records = []
            run(t0 + warmup + duration)
            result[name] = {"t0": t0, "window": (t0 + warmup, t0 + warmup + duration), "records": c.records}
        result["errors"] = c.errors
        out.put(result)
    except Exception as exc:  # noqa: BLE001 - report, do not hang the other clients
        barrier.abort()
        out.put({"idx": idx, "fatal": repr(exc)})


def ceiling_main(idx: int, host: str, port: int, warmup: float, duration: float, barrier: Any, out: Any) -> None:
    """One ceiling client: GET / as fast as the server answers."""
    c = Client(host, port)
    barrier.wait()
    t0 = time.time()
    end = t0 + warmup + duration
    while time.time() < end:
        c.request("ceiling", "GET", "/", htmx=False)
    out.put({"idx": idx, "ceiling": {"t0": t0, "window": (t0 + warmup, end), "records": c.records}, "errors": c.errors})
