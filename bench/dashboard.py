"""Dashboard benchmark: every /reports page's server time on PostgreSQL at 1 M units, 10 M ledger
rows and 1 M returns (or a fraction of that with --scale).

    .venv/bin/python bench/dashboard.py                  # 1 M units, 10 M ledger rows, 1 M returns
    .venv/bin/python bench/dashboard.py --scale 0.1      # a tenth: 100 000 / 1 M / 100 000
    .venv/bin/python bench/dashboard.py --scale 0.1 --keep
    BENCH_DATABASE_URL=<the url --keep printed> .venv/bin/python bench/dashboard.py   # time the pages again, no seeding

One throwaway PostgreSQL (bench/run.py's, tuned the same), migrated (with 0020's indexes), filled by
bench/seed.py with SQL (generate_series): units spread over 400 days with their ledger history,
refunds, exceptions, orders and returns, one return per two units; the other half of the returns
is added here (returns whose parcel never came: mostly cancelled, a few thousand still authorised
or in transit, with a tracking each, for the forecast). VACUUM ANALYZE, then a supervisor and a
partner sign in through the app (in process, Flask's test client: views, queries, database; no
HTTP server) and ask for each page --rounds times with the default filter (the last 28 days,
about 7 % of the units). The server time is the app's own (Server-Timing, DOCKHAND_BENCH's
instrumentation), the statements its count (X-SQL-Statements).

Aim (issue 20): every page at most 300 ms at full scale. Writes bench/out/dashboard.json (or --out).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("DOCKHAND_LOG_LEVEL", "WARNING")
sys.path.insert(0, str(ROOT))

from bench.run import start_postgres  # noqa: E402
from bench.seed import BENCH_PASSWORD, libpq_url, seed, vacuum  # noqa: E402

AIM_MS = 300.0
FULL = {"units": 1_000_000, "ledger": 10_000_000, "returns": 1_000_000}
METRICS = ("cycle_time", "refund_latency", "restock_latency", "recovery_rate", "quarantine_age", "exceptions",
           "units_per_hour")
PAGES = (["/reports", "/reports/reasons", "/reports/reasons?by=sku", "/reports/reasons?by=category",
          "/reports/reasons?by=channel", "/reports/reasons?by=carrier", "/reports/recovery", "/reports/flow",
          "/reports/workers", "/reports?export=kpis", "/reports/reasons?by=sku&export=pareto"]
         + [f"/reports/drill?metric={m}" for m in METRICS])
PARTNER_PAGES = ["/reports", "/reports/reasons?by=sku", "/reports/flow", "/reports/drill?metric=units_per_hour"]


def more_returns(url: str, extra: int) -> float:
    """Returns whose parcel never came, to reach the returns asked for: one line each, spread over
    the same 400 days; 2 % of them (the newest) still authorised or in transit, with a tracking."""
    import psycopg

    t0 = time.perf_counter()
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("SET LOCAL synchronous_commit = off")
        base = conn.execute("SELECT coalesce(max(id), 0) FROM rmas").fetchone()[0]
        line_base = conn.execute("SELECT coalesce(max(id), 0) FROM rma_lines").fetchone()[0]
        track_base = conn.execute("SELECT coalesce(max(id), 0) FROM carrier_trackings").fetchone()[0]
        p = {"n": extra, "base": base, "lb": line_base, "tb": track_base, "open": max(extra // 50, 1)}
        conn.execute("""
            INSERT INTO rmas (id, number, order_id, merchant_id, channel_id, warehouse_id, customer_id, status, created_at)
            SELECT %(base)s + i, 'RMX-' || lpad(i::text, 8, '0'), o.id, o.merchant_id, o.channel_id, 1 + i %% 4, o.customer_id,
                   CASE WHEN i > %(n)s - %(open)s THEN (ARRAY['authorized', 'in_transit'])[1 + i %% 2] ELSE 'cancelled' END,
                   now() - interval '400 days' + i * (interval '400 days' / %(n)s)
            FROM generate_series(1, %(n)s) i JOIN orders o ON o.id = 1 + (i * 13) %% (SELECT count(*) FROM orders)""", p)
        conn.execute("""
            INSERT INTO rma_lines (id, rma_id, product_id, order_line_id, quantity, reason_code)
            SELECT %(lb)s + i, %(base)s + i, ol.product_id, ol.id, 1,
                   (ARRAY['defective','no_longer_needed','wrong_size','damaged_in_transit','not_as_described',
                          'arrived_late','better_price'])[1 + (i * 17) %% 7]
            FROM generate_series(1, %(n)s) i JOIN order_lines ol ON ol.id = 1 + (i * 29) %% (SELECT count(*) FROM order_lines)""", p)
        conn.execute("""
            INSERT INTO carrier_trackings (id, tracking_number, carrier, rma_id, status, last_event_at)
            SELECT %(tb)s + i, '1ZOPEN' || lpad(i::text, 11, '0'), (ARRAY['UPS','USPS','FedEx'])[1 + i %% 3], %(base)s + i,
                   (ARRAY['label_created','in_transit','out_for_delivery','delivered'])[1 + i %% 4],
                   now() - (i %% 72) * interval '1 hour'
            FROM generate_series(%(n)s - %(open)s + 1, %(n)s) i""", p)
        conn.commit()
    return time.perf_counter() - t0


def time_pages(app: Any, username: str, pages: list[str], rounds: int) -> list[dict[str, Any]]:
    client = app.test_client()
    resp = client.post("/login", data={"username": username, "password": BENCH_PASSWORD})
    assert resp.status_code == 302, resp.data[:300]
    rows = []
    for page in pages:
        first = client.get(page)
        assert first.status_code == 200, (page, first.status_code, first.data[:300])
        times, statements = [], set()
        for _ in range(rounds):
            resp = client.get(page)
            assert resp.status_code == 200, (page, resp.status_code)
            times.append(float(resp.headers["Server-Timing"].split("dur=")[1]))
            statements.add(int(resp.headers["X-SQL-Statements"]))
        rows.append({"who": username, "page": page, "median_ms": round(statistics.median(times), 1),
                     "max_ms": round(max(times), 1), "first_ms": round(float(first.headers["Server-Timing"].split("dur=")[1]), 1),
                     "statements": sorted(statements), "bytes": len(first.data), "ok": statistics.median(times) <= AIM_MS})
        r = rows[-1]
        print(f"  {username:<9} {page:<46} median {r['median_ms']:8.1f} ms  max {r['max_ms']:8.1f} ms  "
              f"{'/'.join(map(str, r['statements']))} statements", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float, default=1.0, help="fraction of 1 M units / 10 M ledger rows / 1 M returns")
    p.add_argument("--rounds", type=int, default=5, help="timed requests per page (after one warm-up)")
    p.add_argument("--keep", action="store_true", help="leave the throwaway PostgreSQL running")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "dashboard.json")
    args = p.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    size = {k: max(int(v * args.scale), 2000) for k, v in FULL.items()}
    url = os.environ.get("BENCH_DATABASE_URL")  # a database --keep left running: time the pages again, no seeding
    pg = None if url else start_postgres()
    result: dict[str, Any] = {"aim_ms": AIM_MS, "scale": args.scale, "size": size}
    try:
        from app import create_app
        from app.migrate import upgrade

        if pg is not None:
            url = pg.url
            upgrade(url)
            t0 = time.perf_counter()
            world = seed(url, units=size["units"], ledger=size["ledger"], clients=1, parcels_per_client=5,
                         confirm_per_client=1, products=1000, verbose=True)
            del world
            result["seed_s"] = round(time.perf_counter() - t0, 1)
            result["more_returns_s"] = round(more_returns(url, size["returns"] - size["units"] // 2), 1)
            t0 = time.perf_counter()
            vacuum(url)
            result["vacuum_s"] = round(time.perf_counter() - t0, 1)
        else:
            upgrade(url)  # a branch's migrations on the kept data
        import psycopg

        with psycopg.connect(libpq_url(url)) as conn:
            result["rows"] = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 - our table names
                              for t in ("return_units", "ledger_entries", "rmas", "rma_lines", "refund_triggers",
                                        "return_exceptions", "orders", "order_lines")}
        print("rows:", json.dumps(result["rows"]), f"(seed {result.get('seed_s')} s, returns {result.get('more_returns_s')} s, "
              f"vacuum {result.get('vacuum_s')} s)", flush=True)
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False, "BENCH_INSTRUMENT": True})
        result["pages"] = time_pages(app, "super1", PAGES, args.rounds) + time_pages(app, "partner1", PARTNER_PAGES, args.rounds)
        result["load_average"] = os.getloadavg()[0]
    finally:
        if pg is not None and args.keep:
            pg.keep()
            print(f"kept: {pg.url}")
        elif pg is not None:
            pg.stop()
    args.out.write_text(json.dumps(result, indent=2))
    worst = max(result["pages"], key=lambda r: r["median_ms"])
    over = [r for r in result["pages"] if not r["ok"]]
    print(f"\n{len(result['pages'])} pages at {size['units']:,} units / {result['rows']['ledger_entries']:,} ledger rows / "
          f"{result['rows']['rmas']:,} returns: slowest {worst['page']} ({worst['who']}) median {worst['median_ms']} ms; "
          f"{len(over)} over {AIM_MS:.0f} ms (load average {result['load_average']:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
