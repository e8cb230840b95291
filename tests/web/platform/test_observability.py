"""What operations see: request ids on answers, logs and error pages; JSON log lines; metrics
behind a token; liveness apart from readiness, which waits for the migrations."""
from __future__ import annotations

import io
import json
import logging
import re

import pytest

from app import create_app
from app.migrate import downgrade, upgrade
from app.observability import log_handler
from tests.conftest import login
from tests.fakes import closed_port


def test_every_answer_carries_a_request_id_and_a_proxys_is_kept(client, world):
    first, second = client.get("/login"), client.get("/login")
    assert len(first.headers["X-Request-ID"]) == 16 and first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    assert client.get("/login", headers={"X-Request-ID": "lb-7f3a-1"}).headers["X-Request-ID"] == "lb-7f3a-1"
    odd = client.get("/login", headers={"X-Request-ID": "two words\u00e9" + "x" * 80})
    assert odd.headers["X-Request-ID"] != "two words" and len(odd.headers["X-Request-ID"]) == 16


def test_a_server_error_page_shows_the_reference_its_log_lines_carry(app, world, caplog):
    def boom():  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    app.add_url_rule("/boom", view_func=boom)
    client = app.test_client()
    with caplog.at_level(logging.ERROR):
        page = client.get("/boom", headers={"X-Request-ID": "ref-123"})
        fragment = client.get("/boom", headers={"X-Request-ID": "ref-456", "HX-Request": "true"})
    assert page.status_code == 500 and b"Reference: ref-123." in page.data
    assert fragment.status_code == 500 and b"Reference: ref-456." in fragment.data
    assert [r.request_id for r in caplog.records if r.getMessage() == "unhandled error"] == ["ref-123", "ref-456"]


def test_request_lines_are_json_with_the_request_id(app, client, world):
    stream = io.StringIO()
    handler = log_handler(stream, "json")
    logger = logging.getLogger("dockhand.request")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        login(client, "worker")
        client.get("/receive", headers={"X-Request-ID": "scan-screen-1"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    screen = [line for line in lines if line["request_id"] == "scan-screen-1"]
    assert len(screen) == 1
    assert screen[0]["message"] == "request" and screen[0]["level"] == "INFO"
    assert screen[0]["route"] == "/receive" and screen[0]["status"] == 200 and screen[0]["ms"] > 0
    assert screen[0]["user_id"] == world.users["worker"].id
    assert all(line["message"] == "request" for line in lines)


def test_metrics_need_the_token(app, client, world):
    assert client.get("/metrics").status_code == 404  # no token set: no metrics
    tokened = create_app({**app.config, "METRICS_TOKEN": "s3cret-token"}).test_client()
    assert tokened.get("/metrics").status_code == 404
    assert tokened.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
    login(tokened, "worker")
    tokened.post("/receive/scan", data={"code": "NO-SUCH-CODE", "key": "k-metrics-1"}, headers={"HX-Request": "true"})
    resp = tokened.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    body = resp.get_data(as_text=True)
    assert re.search(r'dockhand_request_seconds_count\{method="POST",route="/receive/scan",status="\d+"\} [1-9]', body)
    assert re.search(r'dockhand_scans_total\{status="\d+"\} [1-9]', body)
    assert "dockhand_db_connections_in_use" in body and "dockhand_db_connections_open" in body
    assert re.search(r"^dockhand_webhook_backlog 0\.0$", body, re.M)  # no endpoint, nothing owed


def test_readiness_waits_for_the_migrations_and_liveness_does_not(app, client, world, db_url):
    assert client.get("/ready").status_code == 200
    assert client.get("/ready").json["migrations"] == "at head"
    downgrade(db_url, "-1")
    try:
        behind = client.get("/ready")
        assert behind.status_code == 503 and behind.json["migrations"] == "behind"
        assert client.get("/live").status_code == 200
    finally:
        upgrade(db_url)
    assert client.get("/ready").status_code == 200


def test_a_schema_newer_than_the_code_is_still_ready(app, client, world, db_url):
    """A release migrates before its servers restart (docs/deploy.md): the old servers keep serving."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.begin() as conn:
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        conn.execute(text("UPDATE alembic_version SET version_num = 'from-a-newer-release'"))
    try:
        resp = client.get("/ready")
        assert resp.status_code == 200 and resp.json["migrations"] == "ahead of this code"
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
        engine.dispose()


def test_without_a_database_the_process_is_live_but_not_ready(tmp_path):
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "PHOTO_DIR": str(tmp_path / "photos"),
                      "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/dockhand"})
    client = app.test_client()
    assert client.get("/live").status_code == 200
    assert client.get("/ready").status_code == 503
    assert client.get("/health").status_code == 503


def test_forwarded_addresses_count_only_behind_a_trusted_proxy(app, world):
    """Sign-in throttling counts per client address: behind one proxy it is X-Forwarded-For's
    last hop; with no proxy configured a forged header changes nothing."""
    from app.auth.models import SignInFailure

    def failures_from(client_app, forwarded: str) -> set[str]:
        client = client_app.test_client()
        client.post("/login", data={"username": "worker", "password": "wrong"},
                    headers={"X-Forwarded-For": forwarded}, environ_base={"REMOTE_ADDR": "10.0.0.2"})
        with client_app.app_context():
            from app.db import db

            return {row.key for row in db.session.query(SignInFailure).filter_by(scope="address")}

    assert failures_from(app, "203.0.113.9") == {"10.0.0.2"}  # not trusted: the proxy's own address
    behind = create_app({**app.config, "PROXY_HOPS": 1})
    assert failures_from(behind, "198.51.100.1, 203.0.113.9") == {"10.0.0.2", "203.0.113.9"}


def test_metrics_show_the_webhook_backlog(app, session, world):
    import uuid

    from app.auth.roles import SYSTEM
    from app.db import unit_of_work
    from app.ledger.writer import event_row
    from app.rows import write
    from app.webhooks.services import fan_out, register_endpoint

    register_endpoint(session, SYSTEM, url="http://127.0.0.1:9/hooks", event_types=[], idempotency_key=uuid.uuid4().hex)
    with unit_of_work(session):
        write(session, [event_row("unit.state_changed", "unit", i, {"i": i}) for i in range(3)])
    fan_out(session)
    tokened = create_app({**app.config, "METRICS_TOKEN": "s3cret-token"}).test_client()
    body = tokened.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}).get_data(as_text=True)
    assert re.search(r"^dockhand_webhook_backlog 3\.0$", body, re.M)
    assert re.search(r"^dockhand_webhook_oldest_pending_seconds \d", body, re.M)
