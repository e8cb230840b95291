"""Dockhand: returns receiving and inspection for ecommerce warehouses."""
from __future__ import annotations

import os
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from flask import Flask, g
from sqlalchemy import event
from werkzeug.routing import IntegerConverter

from app.db import db
from app.extensions import csrf, htmx, login_manager

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the application: config from the environment (or tests), extensions, blueprints."""
    app = Flask(__name__, instance_path=str(ROOT / "instance"), template_folder=str(ROOT / "templates"),
                static_folder=str(ROOT / "static"))
    from app.config import load_config

    app.config.update(load_config(Path(app.instance_path)))
    if test_config:
        app.config.update(test_config)
    if app.config.get("STATIC_FOLDER"):  # tests build hashed assets in a folder of their own
        app.static_folder = app.config["STATIC_FOLDER"]
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    from app.web.templating import TemplateEnvironment

    app.jinja_environment = TemplateEnvironment  # type: ignore[misc]
    app.jinja_env.trim_blocks = True  # no blank lines from template tags: handheld answers stay small
    app.jinja_env.lstrip_blocks = True
    # Ids in URLs are bounded to the tables' integer keys: 2**31 is a 404, never an overflow (a 500).
    app.url_map.converters["int"] = BoundedInt
    db.init_app(app)
    from app.inspection.storage import store_from_config

    app.extensions["dockhand.photos"] = store_from_config(app.config)
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)

    from app.web import register_web

    register_web(app)
    from app.web.assets import register_assets

    register_assets(app)  # WhiteNoise answers /static/ in front of Flask
    if hops := app.config.get("PROXY_HOPS"):  # outermost: everything behind sees the client, not the proxy
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    from app.signin.views import bp as signin_bp
    from app.home.views import bp as home_bp
    from app.web.offline import bp as offline_bp

    app.register_blueprint(signin_bp)
    app.register_blueprint(home_bp)
    app.register_blueprint(offline_bp)  # /sw.js, /offline, /manifest.webmanifest
    for module in ("app.receiving.views", "app.labels.views", "app.desk.views", "app.admin.views", "app.intake.views", "app.api.views",
                   "app.reconciliation.views", "app.reports.views"):
        _register_optional(app, module)

    from app.observability import register_observability

    register_observability(app)

    if app.config.get("BENCH_INSTRUMENT", os.environ.get("DOCKHAND_BENCH") == "1"):
        _instrument(app)

    from app.cli import register_cli

    register_cli(app)
    return app


class BoundedInt(IntegerConverter):
    """`<int:id>` that matches only 1..MAX_ID."""

    def __init__(self, map, *args, **kwargs):  # type: ignore[no-untyped-def]  # noqa: A002 - werkzeug's name
        from app.web import MAX_ID

        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def _register_optional(app: Flask, module: str) -> None:
    """Register a feature blueprint when its package is present."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return
    app.register_blueprint(mod.bp)


def _instrument(app: Flask) -> None:
    """Benchmark only (DOCKHAND_BENCH=1): per-request server time, SQL statements and pool checkouts as headers.

    The counts live in a context variable set when the request starts: a listener that looked up
    Flask's `g` on every statement cost the measured scan 3% of its CPU (bench/profile_scan.py)."""
    counts: ContextVar[list[int] | None] = ContextVar("dockhand_bench_counts", default=None)

    def counter(index: int):  # type: ignore[no-untyped-def]
        def bump(*_args: Any) -> None:
            mine = counts.get()
            if mine is not None:
                mine[index] += 1
        return bump

    event.listen(db.engine, "before_cursor_execute", counter(0))
    event.listen(db.engine.pool, "checkout", counter(1))

    def start() -> None:
        g.bench_t0 = time.perf_counter()
        counts.set([0, 0])

    app.before_request_funcs.setdefault(None, []).insert(0, start)  # first, before CSRF and login

    @app.after_request
    def _bench_headers(resp):  # type: ignore[no-untyped-def]
        if "bench_t0" in g:
            resp.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - g.bench_t0) * 1000:.2f}"
        statements, checkouts = counts.get() or (0, 0)
        resp.headers["X-SQL-Statements"] = str(statements)
        resp.headers["X-DB-Checkouts"] = str(checkouts)
        return resp
