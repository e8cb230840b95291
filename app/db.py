"""Database plumbing: the declarative base, portable column types and the session."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import BigInteger, Integer, MetaData, Numeric, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a real bigint.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
Money = Numeric(12, 2, asdecimal=True)


class Base(DeclarativeBase):
    """Declarative base whose constraints get stable names (Alembic needs them)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """Timezone-aware now in UTC: every timestamp Dockhand writes."""
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; treat them as the UTC they were written as."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def to_money(value: object) -> Decimal:
    """Quantize anything numeric to cents."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def make_engine(url: str, **kwargs: object) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout, foreign keys, and BEGIN IMMEDIATE
    for write transactions (see begin_write) so writers queue instead of failing with
    'database is locked'; reads stay deferred and never block a writer."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # type: ignore[no-untyped-def]
            write = conn.get_execution_options().get("dockhand_write")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


class Database:
    """Holds the engine and a request-scoped session; bound to an app by init_app."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.session_factory: sessionmaker[Session] | None = None
        self.session: scoped_session[Session] = scoped_session(self._make_session)

    def _make_session(self) -> Session:
        if self.session_factory is None:
            raise RuntimeError("database not initialised: call init_app first")
        return self.session_factory()

    def init_app(self, app) -> None:  # type: ignore[no-untyped-def]
        """Create the engine from the app's DATABASE_URL and remove the session after each request."""
        if self.engine is not None:
            self.session.remove()
            self.engine.dispose()
        self.engine = make_engine(app.config["DATABASE_URL"], **app.config.get("ENGINE_OPTIONS", {}))
        self.session_factory = sessionmaker(bind=self.engine, expire_on_commit=False)
        app.teardown_appcontext(lambda _exc: self.session.remove())

    def dispose(self) -> None:
        """Close every pooled connection (tests, CLI)."""
        self.session.remove()
        if self.engine is not None:
            self.engine.dispose()


db = Database()


def begin_write(session: Session) -> None:
    """Start a fresh write transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: a plain BEGIN).

    Anything the session had read before is rolled back first, so a use case never acts
    on a stale snapshot.
    """
    if isinstance(session, scoped_session):
        session = session()
    if session.in_transaction():
        session.rollback()
    session.connection(execution_options={"dockhand_write": True})


@contextmanager
def unit_of_work(session: Session) -> Iterator[Session]:
    """One use case = one transaction: begin for writing, commit on success, roll back on any exception."""
    begin_write(session)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
