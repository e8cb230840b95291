"""A bounded fault test (about 60 s): two gunicorn instances on one PostgreSQL, 20 simulated
handhelds that receive parcels with retries and double submits, while a worker process of each
instance is killed with -9 and PostgreSQL is restarted.

A handheld behaves as static/scan.js does: each scan has its own key, and until the server has
answered it (a connection error, a timeout or a 5xx) it is sent again with the same key after a
pause, to either instance (a load balancer). One scan in five is sent twice at once (a double
tap). What must hold afterwards: no duplicate unit, no acknowledged scan lost, balances equal to
the ledger, one refund trigger per unit, and no bare gunicorn page ever reached a handheld."""
from __future__ import annotations

import http.client
import random
import re
import threading
import time
import uuid
from urllib.parse import urlencode

import psycopg
import pytest

from bench.seed import check, libpq_url, seed
from tests.pg import ThrowawayPostgres
from tests.servers import Gunicorn, exchange

HANDHELDS = 20
RUN_SECONDS = 36
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
LPN_RE = re.compile(r'data-lpn="([^"]+)"')
PARCEL_ID_RE = re.compile(r'data-parcel-id="(\d+)"')
OURS = re.compile(r'class="msg|<html lang="en"')  # Dockhand's own answers, error pages included

pytestmark = pytest.mark.fault


class Handheld(threading.Thread):
    """One worker's device: signs in, then receives its parcels until the deadline."""

    def __init__(self, idx: int, ports: list[int], username: str, password: str, parcels, deadline: float) -> None:  # type: ignore[no-untyped-def]
        super().__init__(daemon=True)
        self.idx, self.ports, self.username, self.password = idx, ports, username, password
        self.parcels, self.deadline = parcels, deadline
        self.rng = random.Random(idx)
        self.cookies: dict[str, str] = {}
        self.csrf = ""
        self.acked: dict[str, str] = {}  # item scan key -> the LPN the server answered
        self.sent: set[str] = set()
        self.faults = 0  # answers that were not answers: connection errors, timeouts, 5xx
        self.bare: list[str] = []  # 5xx bodies that were not Dockhand's
        self.error: str | None = None

    def _once(self, method: str, path: str, fields: dict | None, htmx: bool) -> tuple[int, str]:  # type: ignore[type-arg]
        headers = {}
        body = urlencode(fields) if fields is not None else None
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if htmx:
            headers["HX-Request"] = "true"
        if self.csrf:
            headers["X-CSRFToken"] = self.csrf
        return exchange(self.rng.choice(self.ports), method, path, cookies=self.cookies, headers=headers, body=body,
                        timeout=15)

    def send(self, method: str, path: str, fields: dict | None = None, *, htmx: bool = True) -> tuple[int, str]:  # type: ignore[type-arg]
        """Until answered: a lost answer is sent again, unchanged (same key), after a pause."""
        pause = 0.2
        for _ in range(60):
            try:
                status, text = self._once(method, path, fields, htmx)
            except (OSError, http.client.HTTPException):
                self.faults += 1
            else:
                if status < 500:
                    return status, text
                self.faults += 1
                if not OURS.search(text):
                    self.bare.append(f"{status}: {text[:200]}")
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
        raise RuntimeError(f"{method} {path} was never answered")

    def scan(self, code: str) -> tuple[int, str]:
        key = uuid.uuid4().hex
        self.sent.add(key)
        fields = {"code": code, "key": key, "csrf_token": self.csrf}
        if self.rng.random() < 0.2:  # a double tap: the same scan twice at once
            other = threading.Thread(target=lambda: self.send("POST", "/receive/scan", fields))
            other.start()
            status, text = self.send("POST", "/receive/scan", fields)
            other.join()
        else:
            status, text = self.send("POST", "/receive/scan", fields)
        lpn = LPN_RE.search(text)
        if status == 200 and lpn and code not in self.opening:
            self.acked[key] = lpn.group(1)
        return status, text

    def run(self) -> None:
        try:
            status, page = self.send("GET", "/login", htmx=False)
            self.csrf = CSRF_RE.search(page).group(1)  # type: ignore[union-attr]
            status, _ = self.send("POST", "/login", {"csrf_token": self.csrf, "username": self.username,
                                                     "password": self.password}, htmx=False)
            assert status == 302, status
            status, page = self.send("GET", "/receive", htmx=False)
            self.csrf = CSRF_RE.search(page).group(1)  # type: ignore[union-attr]
            self.opening = {p.number for p in self.parcels}
            for parcel in self.parcels:
                if time.time() > self.deadline:
                    break
                _, card = self.scan(parcel.number)
                for code in parcel.items:
                    self.scan(code)
                parcel_id = PARCEL_ID_RE.search(card)
                if parcel_id:
                    self.send("POST", "/receive/close", {"parcel_id": parcel_id.group(1), "key": uuid.uuid4().hex,
                                                         "csrf_token": self.csrf})
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = repr(exc)


def test_no_duplicate_or_lost_scan_when_workers_die_and_postgresql_restarts(tmp_path):
    pg = ThrowawayPostgres().start()
    servers: list[Gunicorn] = []
    try:
        from app.migrate import upgrade

        upgrade(pg.url)
        world = seed(pg.url, units=400, ledger=400, clients=HANDHELDS, parcels_per_client=30, confirm_per_client=1,
                     products=200 + 20 * HANDHELDS, verbose=False)
        with psycopg.connect(libpq_url(pg.url)) as conn:
            before = conn.execute("SELECT coalesce(max(id), 0) FROM ledger_entries").fetchone()[0]
            started = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
        servers = [Gunicorn(pg.url, tmp_path / f"gunicorn-{i}.log") for i in range(2)]
        deadline = time.time() + RUN_SECONDS
        handhelds = [Handheld(i, [s.port for s in servers], world.users[i], world.password, world.parcels[i], deadline)
                     for i in range(HANDHELDS)]
        for h in handhelds:
            h.start()
        time.sleep(8)
        killed = [servers[0].kill_a_worker()]
        time.sleep(6)
        pg.restart()
        time.sleep(6)
        killed.append(servers[1].kill_a_worker())
        for h in handhelds:
            h.join(RUN_SECONDS + 120)
        assert not any(h.is_alive() for h in handhelds), "a handheld never finished"
        assert [h.error for h in handhelds if h.error] == []

        acked = {k: lpn for h in handhelds for k, lpn in h.acked.items()}
        sent = set().union(*(h.sent for h in handhelds))
        with psycopg.connect(libpq_url(pg.url)) as conn:
            assert conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0] > started  # it did restart
            received = conn.execute(
                "SELECT l.idempotency_key, u.lpn FROM ledger_entries l JOIN return_units u ON u.id = l.unit_id "
                "WHERE l.id > %s AND l.to_state = 'received'", (before,)).fetchall()
            twice = conn.execute("SELECT count(*) FROM (SELECT unit_id FROM refund_triggers GROUP BY unit_id "
                                 "HAVING count(*) > 1) x").fetchone()[0]
        keys = [k for k, _ in received]
        assert len(acked) > 200, f"only {len(acked)} scans were acknowledged: the load did not run"
        assert len(keys) == len(set(keys)), "a scan made two units"
        assert set(keys) <= sent, "a unit came from no scan a handheld sent"
        assert {k: lpn for k, lpn in received if k in acked} == acked, "an acknowledged scan is not in the ledger"
        assert len(received) == len(acked), "a scan was received that no handheld saw acknowledged"
        assert twice == 0
        assert check(pg.url) == {"balance_mismatches": 0, "state_mismatches": 0, "units_without_refund": 0,
                                 "orphan_ledger_rows": 0}
        assert [b for h in handhelds for b in h.bare] == [], "a bare server page reached a handheld"
        faults = sum(h.faults for h in handhelds)
        assert faults > 0, "no request failed: the faults did not happen"
        assert all(pid not in s.workers() for s, pid in zip(servers, killed))
        print(f"\nfault test: {len(acked)} scans acknowledged, {faults} answers lost and sent again, "
              f"{len(received)} units received, workers {killed} killed, PostgreSQL restarted")
    finally:
        for s in servers:
            s.stop()
        pg.stop()
