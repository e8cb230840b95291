"""CSV import benchmark: a file of 10 000 return (RMA) lines, previewed and applied on PostgreSQL.

    .venv/bin/python bench/csv_import.py                          # 10 000 lines, 2 per return
    .venv/bin/python bench/csv_import.py --lines-per-rma 4 --rounds 2

On one throwaway PostgreSQL (bench/run.py's, tuned as for the other benches), migrated, with
bench/seed.py's small world (5 merchants, 400 products, 4 warehouses), an admin signs in through
the app (in process, Flask's test client: the views, the services and the database; no HTTP
server) and, per round:

1. **Preview**: POST /admin/import/ with the file (multipart), then GET the preview page it
   redirects to. The file is --lines lines of returns of --lines-per-rma lines each (the merchant's
   own SKUs, known reason codes, a tracking number each), and --bad returns with a bad row (an
   unknown SKU, a quantity of 0, a formula in a cell): the preview must list them by line.
2. **Apply**: POST /admin/import/<id>/apply; every good return goes through create_rma.
3. **Again**: the same file uploaded and applied again (nothing may change: all answered as done).

Aim (issue 16): preview and apply of 10 000 lines each under 30 s. Writes bench/out/csv_import.json
(or --out) and prints a table.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("DOCKHAND_LOG_LEVEL", "WARNING")
sys.path.insert(0, str(ROOT))

from bench.run import start_postgres  # noqa: E402
from bench.seed import BENCH_PASSWORD, seed  # noqa: E402

AIM_SECONDS = 30.0
HEADER = ("number,merchant,channel,warehouse,order_number,customer_ref,customer_name,carrier,tracking_numbers,"
          "sku,quantity,reason_code,resolution,exchange_sku\n")


def make_file(app: Any, round_no: int, lines: int, per_rma: int, bad: int) -> tuple[bytes, int]:
    """A CSV of returns: `lines` lines, `per_rma` a return; `bad` returns carry a bad row."""
    from sqlalchemy import select

    from app.catalog.models import Merchant, Product, SalesChannel, Warehouse
    from app.db import db
    from app.disposition.models import ReasonCode

    with app.app_context():
        s = db.session
        merchant_id, merchant = s.execute(select(Merchant.id, Merchant.code).order_by(Merchant.id)).first()
        channel = s.scalars(select(SalesChannel.code).order_by(SalesChannel.id)).first()
        warehouse = s.scalars(select(Warehouse.code).where(Warehouse.partner_org_id.is_(None)).order_by(Warehouse.id)).first()
        skus = s.scalars(select(Product.sku).where(Product.merchant_id == merchant_id).order_by(Product.id)).all()
        reasons = s.scalars(select(ReasonCode.code).where(ReasonCode.active.is_(True))).all()
        s.rollback()
    rng = random.Random(round_no)
    rmas = lines // per_rma
    spoiled = set(rng.sample(range(rmas), min(bad, rmas)))
    out = io.StringIO()
    out.write(HEADER)
    writer = csv.writer(out, lineterminator="\n")
    for r in range(rmas):
        number = f"CSV{round_no}-{r:06d}"
        for n, sku in enumerate(rng.sample(skus, per_rma)):
            qty, cell = str(rng.randint(1, 3)), f"Customer {r}"
            if r in spoiled and n == 0:
                kind = r % 3
                sku = "NO-SUCH-SKU" if kind == 0 else sku
                qty = "0" if kind == 1 else qty
                cell = '=HYPERLINK("http://evil.example","x")' if kind == 2 else cell
            writer.writerow([number, merchant, channel, warehouse, "", f"C-{r}", cell, "UPS", f"1ZCSV{round_no}{r:08d}", sku,
                             qty, rng.choice(reasons), "refund", ""])
    return out.getvalue().encode(), rmas


STATEMENTS = [0]


def count_statements(app: Any) -> None:
    """Count every statement the app sends (all threads share the engine)."""
    from sqlalchemy import event

    from app.db import db

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *_a: STATEMENTS.__setitem__(0, STATEMENTS[0] + 1))


def run_round(app: Any, client: Any, round_no: int, lines: int, per_rma: int, bad: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from app.db import db
    from app.orders.models import Rma, RmaLine

    data, rmas = make_file(app, round_no, lines, per_rma, bad)

    def upload() -> tuple[int, float, int]:
        t0 = time.perf_counter()
        resp = client.post("/admin/import/", data={"key": uuid.uuid4().hex, "kind": "rmas",
                                                   "file": (io.BytesIO(data), f"returns-{round_no}.csv")},
                           content_type="multipart/form-data")
        assert resp.status_code == 303, resp.data[:500]
        page = client.get(resp.headers["Location"])
        assert page.status_code == 200
        return int(resp.headers["Location"].rstrip("/").split("/")[-1]), time.perf_counter() - t0, len(page.data)

    def counted() -> tuple[int, int]:
        with app.app_context():
            got = (db.session.scalar(select(func.count()).select_from(Rma)), db.session.scalar(select(func.count()).select_from(RmaLine)))
            db.session.rollback()
        return got

    run, preview_s, page_bytes = upload()
    with app.app_context():
        from app.intake.models import CsvImport

        preview = db.session.get(CsvImport, run).preview
        db.session.rollback()
    before = counted()
    statements, cpu, t0 = STATEMENTS[0], time.process_time(), time.perf_counter()
    done = client.post(f"/admin/import/{run}/apply", headers={"HX-Request": "true"})
    apply_s = time.perf_counter() - t0
    apply_cpu, apply_statements = time.process_time() - cpu, STATEMENTS[0] - statements
    assert done.status_code == 200, done.data[:500]
    after = counted()
    again_run, again_preview_s, _ = upload()
    t0 = time.perf_counter()
    again = client.post(f"/admin/import/{again_run}/apply", headers={"HX-Request": "true"})
    again_apply_s = time.perf_counter() - t0
    assert again.status_code == 200
    assert counted() == after, "applying the same file again changed something"
    row = {"round": round_no, "file_bytes": len(data), "lines": rmas * per_rma, "rmas": rmas, "lines_per_rma": per_rma,
           "bad_rows_listed": preview["bad_rows"], "preview_s": round(preview_s, 2), "preview_page_bytes": page_bytes,
           "apply_s": round(apply_s, 2), "rmas_created": after[0] - before[0], "lines_created": after[1] - before[1],
           "rmas_per_s": round((after[0] - before[0]) / apply_s, 1),
           "statements_per_rma": round(apply_statements / max(after[0] - before[0], 1), 1),
           "app_cpu_ms_per_rma": round(apply_cpu * 1000 / max(after[0] - before[0], 1), 2),
           "load_average": os.getloadavg()[0],
           "again_preview_s": round(again_preview_s, 2), "again_apply_s": round(again_apply_s, 2)}
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=int, default=10_000)
    p.add_argument("--lines-per-rma", type=int, default=2)
    p.add_argument("--bad", type=int, default=30, help="returns with a bad row")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "csv_import.json")
    args = p.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pg = start_postgres()
    result: dict[str, Any] = {"aim_seconds": AIM_SECONDS, "args": {k: str(v) for k, v in vars(args).items()}}
    try:
        from app import create_app
        from app.migrate import upgrade

        upgrade(pg.url)
        seed(pg.url, units=200, ledger=400, clients=1, parcels_per_client=5, confirm_per_client=1, products=400, verbose=False)
        app = create_app({"DATABASE_URL": pg.url, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False})
        count_statements(app)
        client = app.test_client()
        resp = client.post("/login", data={"username": "admin", "password": BENCH_PASSWORD})
        assert resp.status_code == 302, resp.data[:300]
        result["rounds"] = [run_round(app, client, n + 1, args.lines, args.lines_per_rma, args.bad) for n in range(args.rounds)]
    finally:
        pg.stop()
    args.out.write_text(json.dumps(result, indent=2))
    for r in result["rounds"]:
        print(f"round {r['round']}: {r['lines']:,} lines in {r['rmas']:,} returns ({r['file_bytes'] / 1e6:.2f} MB), "
              f"{r['bad_rows_listed']} bad rows listed: preview {r['preview_s']} s, apply {r['apply_s']} s "
              f"({r['rmas_created']:,} returns, {r['rmas_per_s']}/s, {r['statements_per_rma']} statements and "
              f"{r['app_cpu_ms_per_rma']} ms of app CPU a return; load average {r['load_average']:.1f}), the same file again: preview "
              f"{r['again_preview_s']} s, apply {r['again_apply_s']} s (aim: preview and apply each under {AIM_SECONDS:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
