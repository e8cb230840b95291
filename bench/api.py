"""API benchmark: the event feed at size, webhook deliveries per second, RMA creation, and scans
while the delivery worker is busy (A/B in one run).

    .venv/bin/python bench/api.py                       # 10 M events, as the aims ask
    .venv/bin/python bench/api.py --events 1000000 --rounds 2

On one throwaway PostgreSQL (bench/run.py's, tuned for a bulk load), migrated:

1. **Feed**: --events events bulk-written in transactions of 100 000 (generate_series), then
   200 pages of 500 read at random places, through the app's own feed_page and the same response
   model the API serves, in process: server time per page (p50, p95, max). Aim: p95 <= 50 ms.
2. **Webhooks**: an endpoint on a local keep-alive receiver (answers 204, does not verify: the
   receiver must not be what is measured), 5 000 events, one worker (16 threads) delivering until
   none is owed: deliveries per second. Aim: >= 500/s.
3. **RMA creation**: 500 POST /api/v1/rmas (2 lines, a tracking number each), one client, in
   process: per second and p95 ms.
4. **Scans while the worker is busy**: the seeded world (bench/seed.py, small) served by gunicorn
   as `make run` serves it; one worker scans parcels for --window seconds with no delivery worker
   (A), then with one delivering a 20 000-event backlog to the receiver (B), A/B alternating for
   --rounds: scan p50 and p95 of each.

Writes bench/out/api.json (or --out) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("DOCKHAND_LOG_LEVEL", "WARNING")  # no request log line per call
sys.path.insert(0, str(ROOT))

from bench.client import Client, receive_parcels  # noqa: E402
from bench.run import pct, start_postgres  # noqa: E402
from bench.seed import libpq_url, seed  # noqa: E402

AIMS = {"feed_page_p95_ms": 50.0, "deliveries_per_s": 500.0}
CHUNK = 100_000


class Receiver:
    """A local keep-alive endpoint that answers 204 and counts."""

    def __init__(self) -> None:
        self.count = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with lock:
                    outer.count += 1

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def bulk_events(url: str, n: int) -> float:
    import psycopg

    t0 = time.perf_counter()
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for start in range(0, n, CHUNK):
            size = min(CHUNK, n - start)
            conn.execute("""INSERT INTO outbox_events (at, type, aggregate_type, aggregate_id, payload)
                            SELECT now(), 'unit.state_changed', 'unit', g,
                                   json_build_object('unit_id', g, 'lpn', 'LP' || lpad(g::text, 8, '0'),
                                                     'from_state', 'received', 'to_state', 'available')
                            FROM generate_series(%s::bigint, %s::bigint) g""", (start + 1, start + size))
        conn.execute("ANALYZE outbox_events")
    return time.perf_counter() - t0


def feed_pages(app: Any, pages: int = 200) -> dict[str, Any]:
    from sqlalchemy import func, select

    from app.api.schemas import Event, EventPage
    from app.db import as_utc, db
    from app.ledger.domain import FeedCursor
    from app.ledger.models import OutboxEvent
    from app.ledger.queries import feed_page

    times = []
    with app.app_context():
        s = db.session
        lo, hi = s.execute(select(func.min(OutboxEvent.id), func.max(OutboxEvent.id))).one()
        txs = sorted({t for (t,) in s.execute(select(OutboxEvent.tx).distinct())})
        s.rollback()
        rng = random.Random(7)
        for _ in range(pages):
            cursor = FeedCursor(rng.choice(txs), rng.randint(lo, hi))
            t0 = time.perf_counter()
            page = feed_page(s, cursor, 500)
            body = EventPage(events=[Event(id=f"evt_{e.id}", cursor=str(c), type=e.type, at=as_utc(e.at),
                                           aggregate_type=e.aggregate_type, aggregate_id=e.aggregate_id, data=e.payload)
                                     for c, e in page], next=str(page[-1][0]) if page else str(cursor),
                             has_more=len(page) == 500).model_dump_json()
            times.append((time.perf_counter() - t0) * 1000)
            s.rollback()
            assert body
    times.sort()
    return {"feed_pages": pages, "feed_page_p50_ms": round(pct(times, 50), 1), "feed_page_p95_ms": round(pct(times, 95), 1),
            "feed_page_max_ms": round(times[-1], 1)}


def deliveries(app: Any, url: str, n: int = 5000) -> dict[str, Any]:
    from sqlalchemy import func, select, text

    from app.auth.roles import SYSTEM
    from app.db import db, unit_of_work
    from app.ledger.writer import event_row
    from app.rows import write
    from app.webhooks.models import WebhookDelivery
    from app.webhooks.services import register_endpoint
    from app.webhooks.worker import Sender, run_round

    receiver = Receiver()
    with app.app_context():
        s = db.session
        # The fan-out's place: past the bulk events, as migration 0012 places it on an install with history.
        s.execute(text("INSERT INTO feed_positions (name, tx, event_id) SELECT 'webhooks', tx, id FROM outbox_events "
                       "ORDER BY tx DESC, id DESC LIMIT 1 ON CONFLICT (name) DO UPDATE SET tx = excluded.tx, "
                       "event_id = excluded.event_id"))
        s.commit()
        register_endpoint(s, SYSTEM, url=receiver.url, event_types=[], idempotency_key=uuid.uuid4().hex)
        for start in range(0, n, 1000):
            with unit_of_work(s):
                write(s, [event_row("unit.state_changed", "unit", i, {"i": i}) for i in range(start, min(start + 1000, n))])
        assert db.session_factory is not None
        sender = Sender(16)
        t0 = time.perf_counter()
        while run_round(db.session_factory, sender):
            pass
        seconds = time.perf_counter() - t0
        sender.close()
        delivered = s.scalar(select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == "delivered"))
    receiver.server.shutdown()
    return {"deliveries": delivered, "delivery_seconds": round(seconds, 2), "deliveries_per_s": round(delivered / seconds, 1),
            "receiver_count": receiver.count}


def rma_creation(app: Any, n: int = 500) -> dict[str, Any]:
    from sqlalchemy import select

    from app.api.services import create_api_key
    from app.auth.roles import SYSTEM
    from app.catalog.models import Merchant, Product, SalesChannel, Warehouse
    from app.db import db
    from app.disposition.models import ReasonCode

    with app.app_context():
        s = db.session
        token = create_api_key(s, SYSTEM, name="bench", scopes=["rmas:write"], idempotency_key=uuid.uuid4().hex).token
        merchant_id, merchant = s.execute(select(Merchant.id, Merchant.code)).first()
        channel = s.scalars(select(SalesChannel.code)).first()
        warehouse = s.scalars(select(Warehouse.code).where(Warehouse.partner_org_id.is_(None))).first()
        skus = s.scalars(select(Product.sku).where(Product.merchant_id == merchant_id).limit(2)).all()
        reason = s.scalars(select(ReasonCode.code)).first()
        s.rollback()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    times = []
    t0 = time.perf_counter()
    for i in range(n):
        body = {"number": f"BENCH-{uuid.uuid4().hex[:12]}", "merchant": merchant, "channel": channel,
                "warehouse": warehouse, "tracking_numbers": [f"1ZB{uuid.uuid4().hex[:14].upper()}"],
                "lines": [{"sku": sku, "quantity": 1, "reason_code": reason} for sku in skus]}
        t1 = time.perf_counter()
        resp = client.post("/api/v1/rmas", json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
        times.append((time.perf_counter() - t1) * 1000)
        assert resp.status_code == 201, resp.data[:300]
    seconds = time.perf_counter() - t0
    times.sort()
    return {"rmas": n, "rmas_per_s": round(n / seconds, 1), "rma_p95_ms": round(pct(times, 95), 1)}


def scans_while_delivering(url: str, world: Any, rounds: int, window: float, log_dir: Path) -> list[dict[str, Any]]:
    import subprocess

    from bench.serving import Server
    from app import create_app
    from app.auth.roles import SYSTEM
    from app.db import db, unit_of_work
    from app.ledger.writer import event_row
    from app.rows import write
    from app.webhooks.services import register_endpoint

    receiver = Receiver()
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    with app.app_context():
        register_endpoint(db.session, SYSTEM, url=receiver.url, event_types=[], idempotency_key=uuid.uuid4().hex)
    server = Server(ROOT, url, log_dir / "api-gunicorn.log")
    rows = []
    try:
        client_no = 0
        for rnd in range(rounds):
            for busy in (False, True):
                worker = None
                if busy:
                    with app.app_context():
                        for start in range(0, 20_000, 1000):
                            with unit_of_work(db.session):
                                write(db.session, [event_row("unit.state_changed", "unit", i, {"i": i})
                                                   for i in range(start, start + 1000)])
                    env = dict(os.environ, DATABASE_URL=url, SECRET_KEY="bench")
                    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "webhooks", "deliver"],
                                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(1.0)
                before = receiver.count
                c = Client("127.0.0.1", server.port)
                c.login(world.users[client_no], world.password)
                scans = receive_parcels(c, world.parcels[client_no], time.time() + window)
                client_no += 1
                delivered = receiver.count - before
                if worker is not None:
                    worker.terminate()
                    worker.wait(timeout=30)
                lat = sorted(r[2] for r in c.records)
                rows.append({"round": rnd + 1, "worker": "delivering" if busy else "none", "scans": scans,
                             "scan_p50_ms": round(pct(lat, 50), 1), "scan_p95_ms": round(pct(lat, 95), 1),
                             "delivered_meanwhile": delivered})
                print(json.dumps(rows[-1]), flush=True)
    finally:
        server.stop()
        receiver.server.shutdown()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--window", type=float, default=10.0)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "api.json")
    args = p.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pg = start_postgres()
    result: dict[str, Any] = {"aims": AIMS, "events": args.events}
    try:
        from app import create_app
        from app.migrate import upgrade

        upgrade(pg.url)
        world = seed(pg.url, units=2000, ledger=4000, clients=2 * args.rounds, parcels_per_client=400,
                     confirm_per_client=5, products=400, verbose=False)
        app = create_app({"DATABASE_URL": pg.url, "SECRET_KEY": "bench"})
        if args.events:
            result["bulk_seconds"] = round(bulk_events(pg.url, args.events), 1)
            print(f"{args.events} events written in {result['bulk_seconds']} s", flush=True)
            result.update(feed_pages(app))
            print(json.dumps({k: result[k] for k in result if k.startswith("feed")}), flush=True)
        result.update(deliveries(app, pg.url))
        print(json.dumps({k: result[k] for k in ("deliveries", "delivery_seconds", "deliveries_per_s")}), flush=True)
        result.update(rma_creation(app))
        print(json.dumps({k: result[k] for k in ("rmas", "rmas_per_s", "rma_p95_ms")}), flush=True)
        result["scans"] = scans_while_delivering(pg.url, world, args.rounds, args.window, args.out.parent)
    finally:
        pg.stop()
    args.out.write_text(json.dumps(result, indent=2, default=str))
    if args.events:
        print(f"\nfeed page of 500 over {args.events:,} events: p50 {result['feed_page_p50_ms']} ms, "
              f"p95 {result['feed_page_p95_ms']} ms, max {result['feed_page_max_ms']} ms (aim p95 <= 50 ms)")
    print(f"webhook deliveries: {result['deliveries_per_s']}/s, one worker (aim >= 500/s)")
    print(f"RMA creation: {result['rmas_per_s']}/s, p95 {result['rma_p95_ms']} ms")
    for worker in ("none", "delivering"):
        rows = [r for r in result["scans"] if r["worker"] == worker]
        print(f"scans with delivery worker {worker:<10}: p50 {statistics.median(r['scan_p50_ms'] for r in rows):.1f} ms, "
              f"p95 {statistics.median(r['scan_p95_ms'] for r in rows):.1f} ms "
              f"({sum(r['delivered_meanwhile'] for r in rows)} delivered meanwhile)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
