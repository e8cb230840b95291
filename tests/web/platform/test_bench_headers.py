"""The benchmark's per-request headers (DOCKHAND_BENCH=1, app._instrument): bench/run.py reports
statements per request and server time from them, so they must count this request's work only."""
from __future__ import annotations

import re

from app import create_app
from app.db import db
from tests.conftest import login
from tests.helpers import statements_sent

HX = {"HX-Request": "true"}


def test_the_headers_count_each_requests_own_statements(db_url, tmp_path, world):
    bench = create_app({"TESTING": True, "DATABASE_URL": db_url, "WTF_CSRF_ENABLED": False, "SECRET_KEY": "test",
                        "PHOTO_DIR": str(tmp_path / "photos"), "BENCH_INSTRUMENT": True})
    try:
        client = bench.test_client()
        login(client, "worker")
        for path in ("/receive", "/receive/units/999999", "/receive"):
            responses = []
            with bench.app_context():
                sent = statements_sent(db.session, lambda: responses.append(client.get(path, headers=HX)))
            resp = responses[0]
            assert sent, path
            assert resp.headers["X-SQL-Statements"] == str(len(sent)), (path, sent)
            assert resp.headers["X-DB-Checkouts"] == "1"
            assert re.fullmatch(r"app;dur=\d+\.\d\d", resp.headers["Server-Timing"])
    finally:
        db.dispose()
