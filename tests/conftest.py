"""Shared fixtures: a real PostgreSQL and SQLite, migrated by Alembic, an app and clients.

Every test that asks for `engine` (or anything built on it) runs on both SQLite and
PostgreSQL. PostgreSQL comes from TEST_DATABASE_URL, or a throwaway server is started.
A PostgreSQL that cannot be had is an error, never a skip.
"""
from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

import app.models  # noqa: F401  - every table, for truncation
from app.db import Base, make_engine
from app.migrate import upgrade
from tests.pg import MIGRATED_ROWS, ThrowawayPostgres

BACKENDS = [b for b in os.environ.get("DOCKHAND_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # once, before any xdist worker starts an app
        _build_assets()
    config.addinivalue_line("markers", "pg_only: needs PostgreSQL (row locks, real concurrency)")
    config.addinivalue_line("markers", "e2e: drives Chromium")
    config.addinivalue_line("markers", "fault: kills app workers and restarts PostgreSQL (its own servers)")


def _build_assets() -> None:
    """Hashed static files, as `make assets` builds them, so the pages under test use them."""
    import contextlib
    import io

    from flask_static_digest.digester import compile as digest

    static = str(Path(__file__).resolve().parents[1] / "static")
    with contextlib.redirect_stdout(io.StringIO()):
        digest(static, static, [], True, True)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A migrated PostgreSQL database for the whole run."""
    url = os.environ.get("TEST_DATABASE_URL")
    server = None
    if not url:
        server = ThrowawayPostgres().start()
        url = server.url
    upgrade(url)
    _keep_migrated_rows(url)
    yield url
    if server is not None:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def _keep_migrated_rows(url: str) -> None:
    """Remember the rows a freshly migrated database holds, so that emptying it gives it them back:
    an emptied PostgreSQL then equals a copy of the migrated SQLite template."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                rows = [dict(r._mapping) for r in conn.execute(table.select())]
                if rows:
                    MIGRATED_ROWS[table.name] = rows
    finally:
        engine.dispose()


def _truncate_pg(engine: Engine) -> None:
    """Empty the database back to what the migrations left in it."""
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(text("ALTER SEQUENCE lpn_seq RESTART"))
        conn.execute(text("ALTER SEQUENCE blind_seq RESTART"))
        for table in Base.metadata.sorted_tables:  # parents first
            if table.name in MIGRATED_ROWS:
                conn.execute(table.insert(), MIGRATED_ROWS[table.name])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every database test runs on each backend; a pg_only test gets no SQLite variant at all
    (rather than a skipped one: nothing in this suite is skipped)."""
    if "db_url" in metafunc.fixturenames:
        pg_only = metafunc.definition.get_closest_marker("pg_only") is not None
        backends = [b for b in BACKENDS if b == "postgresql"] if pg_only else BACKENDS
        metafunc.parametrize("db_url", backends, indirect=True)


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database: SQLite and PostgreSQL in turn."""
    if request.param == "sqlite":
        target = tmp_path / "test.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    url = request.getfixturevalue("pg_url")
    engine = create_engine(url)
    try:
        _truncate_pg(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, unmigrated database of its own, SQLite and PostgreSQL in turn (a migration test
    must not disturb the shared test database)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    base = make_url(request.getfixturevalue("pg_url"))
    name = f"mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the test database, disposed afterwards."""
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions as the services use them."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """One session for a test."""
    s = session_factory()
    yield s
    s.close()


@pytest.fixture
def fake_printer():  # type: ignore[no-untyped-def]
    """A raw-TCP 'Zebra' on this machine's own address for one test (tests/fakes.py)."""
    from tests.fakes import FakePrinter

    printer = FakePrinter()
    yield printer
    printer.close()


@pytest.fixture
def world(session: Session):  # type: ignore[no-untyped-def]
    """A small warehouse world: see tests/factories.py."""
    from tests.factories import build_world

    return build_world(session)


@pytest.fixture
def app(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The Flask app on the test database (CSRF off for the test client; see test_csrf)."""
    from app import create_app
    from app.db import db

    from tests.fakes import PRINTER_NETWORKS

    application = create_app({"TESTING": True, "DATABASE_URL": db_url, "WTF_CSRF_ENABLED": False,
                              "SECRET_KEY": "test", "PHOTO_DIR": str(tmp_path / "photos"),
                              "PRINTER_NETWORKS": PRINTER_NETWORKS})
    yield application
    db.dispose()


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    """A Flask test client."""
    return app.test_client()


def login(client, username: str, password: str = "password123"):  # type: ignore[no-untyped-def]
    """Sign a test client in."""
    resp = client.post("/login", data={"username": username, "password": password})
    assert resp.status_code == 302, resp.data[:500]
    return client


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: PostgreSQL and Chromium must really have run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped and exitstatus == 0:
        reporter.write_line(f"CI: {skipped} test(s) were skipped; in CI every test must run.", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
