"""EXPLAIN (ANALYZE, BUFFERS) every statement a dashboard page runs, on a database bench/dashboard.py
--keep left running:

    BENCH_DATABASE_URL=<url> .venv/bin/python bench/dashboard_explain.py "/reports/reasons?by=sku" [super1|partner1]

Asks for the page twice (the first warms the caches), captures each statement of the second with its
parameters and wall time, and replays those over 20 ms under EXPLAIN (ANALYZE, BUFFERS), rolled back.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("DOCKHAND_LOG_LEVEL", "WARNING")
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402

from app import create_app  # noqa: E402
from app.db import db  # noqa: E402
from bench.seed import BENCH_PASSWORD  # noqa: E402

SLOW_MS = 20.0


def main(argv: list[str]) -> int:
    page, who = argv[0], (argv[1] if len(argv) > 1 else "super1")
    app = create_app({"DATABASE_URL": os.environ["BENCH_DATABASE_URL"], "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False,
                      "BENCH_INSTRUMENT": True})
    captured: list[tuple[str, Any, float]] = []
    with app.app_context():
        @event.listens_for(db.engine, "before_cursor_execute")
        def started(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
            conn.info["t0"] = time.perf_counter()

        @event.listens_for(db.engine, "after_cursor_execute")
        def finished(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
            captured.append((statement, parameters, (time.perf_counter() - conn.info["t0"]) * 1000))
    client = app.test_client()
    assert client.post("/login", data={"username": who, "password": BENCH_PASSWORD}).status_code == 302
    client.get(page)
    captured.clear()
    resp = client.get(page)
    print(page, who, resp.status_code, resp.headers.get("Server-Timing"), resp.headers.get("X-SQL-Statements"), "statements")
    statements = list(captured)
    for i, (sql, _, ms) in enumerate(statements):
        print(f"#{i} {ms:7.1f} ms  {' '.join(sql.split())[:150]}")
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            cur = raw.cursor()
            for i, (sql, params, ms) in enumerate(statements):
                if ms >= SLOW_MS:
                    cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                    print(f"\n=== #{i} {ms:.1f} ms\n{sql}\n{params}\n" + "\n".join(r[0] for r in cur.fetchall()))
        finally:
            raw.rollback()
            raw.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
