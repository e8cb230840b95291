"""What operations see: a request id on every answer and log line, JSON logs, Prometheus metrics,
and the probes a load balancer or an orchestrator asks.

- Request id: the caller's `X-Request-ID` when it is a plain token (a proxy's), else a new one;
  sent back as `X-Request-ID`, carried by every log line of the request, and shown on error pages
  so a worker can quote it.
- Logs: one JSON object per line on stderr (python-json-logger), one `request` line per answer
  (method, route, status, milliseconds, bytes, user). DOCKHAND_LOG_FORMAT=text for a terminal.
- Metrics at /metrics, only with `Authorization: Bearer $DOCKHAND_METRICS_TOKEN` (404 while no token
  is set): latency by route, scans by status, errors by kind, database connections in use and open.
  Under gunicorn the workers' figures are summed (prometheus_client's multiprocess mode, set up in
  gunicorn.conf.py through PROMETHEUS_MULTIPROC_DIR).
- Probes: /live (the process answers; no database), /ready (the database answers and its schema is
  at the migrations' head: 503 while a deploy's migration has not run), /health (the process and a
  database round trip, as before).
"""
from __future__ import annotations

import hmac
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, abort, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pythonjsonlogger.json import JsonFormatter
from sqlalchemy import event, literal, select, text

from app.db import db
from app.extensions import csrf

log = logging.getLogger("dockhand.request")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_HEALTH = select(literal(1).label("ok"))
_MARK = "_dockhand_handler"

REQUEST_SECONDS = Histogram("dockhand_request_seconds", "Time to answer, by route", ["route", "method", "status"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
SCANS = Counter("dockhand_scans_total", "Handheld scans answered, by HTTP status", ["status"])
ERRORS = Counter("dockhand_errors_total", "Answers that went wrong on the server side, by kind", ["kind"])
DB_IN_USE = Gauge("dockhand_db_connections_in_use", "Database connections checked out of the pool",
                  multiprocess_mode="livesum")
DB_OPEN = Gauge("dockhand_db_connections_open", "Database connections open in the pool", multiprocess_mode="livesum")


def request_id() -> str:
    """The id of the request being answered ("-" outside one)."""
    return g.get("request_id", "-")


def _with_request_id(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    """Wrap the log record factory so every record made while a request is answered carries its id."""
    from flask import has_request_context

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return record

    make.dockhand = True  # type: ignore[attr-defined]
    return make


def log_handler(stream: Any = None, fmt: str = "json") -> logging.Handler:
    """A handler writing one JSON object (or one text line) per record."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s %(request_id)s", timestamp="time",
                                           rename_fields={"levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    setattr(handler, _MARK, True)
    return handler


def configure_logging(app: Flask) -> None:
    """Route the root logger to one handler, once per process (tests keep pytest's own)."""
    root = logging.getLogger()
    if app.testing or any(getattr(h, _MARK, False) for h in root.handlers):
        return
    root.addHandler(log_handler(fmt=os.environ.get("DOCKHAND_LOG_FORMAT", "json")))
    root.setLevel(os.environ.get("DOCKHAND_LOG_LEVEL", "INFO").upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin list at every start says nothing


def _webhook_backlog() -> bytes:
    """The delivery worker's backlog, read from the database at scrape time (any app server
    answers the same): deliveries owed and the oldest one's wait. Nothing when the database is out of reach."""
    from app.webhooks.queries import backlog

    try:
        owed, oldest = backlog(db.session)
    except Exception:  # noqa: BLE001 - metrics report what they can
        logging.getLogger(__name__).warning("webhook backlog unreadable", exc_info=True)
        return b""
    finally:
        db.session.rollback()
    registry = CollectorRegistry()
    Gauge("dockhand_webhook_backlog", "Webhook deliveries owed to switched-on endpoints", registry=registry).set(owed)
    Gauge("dockhand_webhook_oldest_pending_seconds", "How long the oldest owed delivery has waited",
          registry=registry).set(oldest)
    return generate_latest(registry)


def _watch_pool(app: Flask) -> None:
    engine = db.engine
    event.listen(engine.pool, "checkout", lambda *_: DB_IN_USE.inc())
    event.listen(engine.pool, "checkin", lambda *_: DB_IN_USE.dec())
    event.listen(engine.pool, "connect", lambda *_: DB_OPEN.inc())
    event.listen(engine.pool, "close", lambda *_: DB_OPEN.dec())


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def _migrations_head() -> tuple[str, frozenset[str]]:
    """This code's head revision, and every revision it knows."""
    from alembic.script import ScriptDirectory

    from app.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return script.get_current_head() or "", frozenset(r.revision for r in script.walk_revisions())


def register_observability(app: Flask) -> None:
    """Request ids, the request log line, metrics and the probes."""
    if not getattr(logging.getLogRecordFactory(), "dockhand", False):
        logging.setLogRecordFactory(_with_request_id(logging.getLogRecordFactory()))
    configure_logging(app)
    _watch_pool(app)
    head, known = _migrations_head()
    metrics_token = app.config.get("METRICS_TOKEN") or ""

    def start() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _REQUEST_ID.fullmatch(given) else secrets.token_hex(8)
        g.request_t0 = time.perf_counter()

    app.before_request_funcs.setdefault(None, []).insert(0, start)  # first: every later log line has the id

    @app.after_request
    def finish(resp: Response) -> Response:
        resp.headers["X-Request-ID"] = request_id()
        if "request_t0" not in g:
            return resp
        seconds = time.perf_counter() - g.request_t0
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        REQUEST_SECONDS.labels(route, request.method, str(resp.status_code)).observe(seconds)
        if request.endpoint == "receiving.scan":
            SCANS.labels(str(resp.status_code)).inc()
        if resp.status_code >= 500:
            ERRORS.labels("database_unavailable" if resp.status_code == 503 else "server_error").inc()
        user = g.get("_login_user")
        log.info("request", extra={"method": request.method, "path": request.path, "route": route,
                                   "status": resp.status_code, "ms": round(seconds * 1000, 1),
                                   "bytes": resp.calculate_content_length(),
                                   "user_id": getattr(user, "id", None) if getattr(user, "is_authenticated", False) else None})
        return resp

    @app.get("/live")
    def live() -> Response:
        """The process answers (no database): restart it when this fails."""
        return jsonify(status="alive")

    @app.get("/ready")
    def ready() -> tuple[Response, int]:
        """Send traffic here? The database answers and its schema is at this code's head, or ahead of
    it (a newer release migrated first); 503 while it is behind."""
        try:
            current = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:  # noqa: BLE001 - a probe reports, it does not raise
            db.session.rollback()
            logging.getLogger(__name__).warning("readiness: database unreachable or not migrated", exc_info=True)
            return jsonify(status="not ready", database="unreachable or not migrated", migrations_head=head), 503
        if current != head and current in known:  # an older revision of this code's: behind
            return jsonify(status="not ready", database="ok", migrations="behind", current=current,
                           migrations_head=head), 503
        if current != head:  # a newer release migrated first (docs/deploy.md): this one still serves
            logging.getLogger(__name__).warning("database at %s, newer than this code's head %s", current, head)
            return jsonify(status="ready", database="ok", migrations="ahead of this code", current=current), 200
        return jsonify(status="ready", database="ok", migrations="at head", current=current), 200

    @app.get("/health")
    def health() -> tuple[Response, int]:
        """Liveness plus a database round trip, for `make run` and simple load balancers."""
        try:
            db.session.execute(_HEALTH)
            return jsonify(status="ok", database="ok"), 200
        except Exception:  # noqa: BLE001 - a health check reports, it does not raise
            logging.getLogger(__name__).exception("health check failed")
            return jsonify(status="degraded", database="unreachable"), 503

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus text format, to a scraper holding the token."""
        given = request.headers.get("Authorization", "")
        if not metrics_token or not hmac.compare_digest(given.encode(), f"Bearer {metrics_token}".encode()):
            abort(404)
        return Response(generate_latest(_registry()) + _webhook_backlog(), content_type=CONTENT_TYPE_LATEST)

    for view in (live, ready, health, metrics):
        csrf.exempt(view)
