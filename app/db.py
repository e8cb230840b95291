"""Database plumbing: the declarative base, portable column types, the engine, the request's
session and the unit of work. Nothing here knows a table of Dockhand's."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import BigInteger, Integer, MetaData, Numeric, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker

from app.connections import connect_with_backoff

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


# How far the clock of this context runs behind the wall clock: zero, except inside `clock_at`.
_CLOCK_BEHIND: ContextVar[timedelta | None] = ContextVar("dockhand_clock_behind", default=None)


def utcnow() -> datetime:
    """Timezone-aware now in UTC: every timestamp Dockhand writes."""
    behind = _CLOCK_BEHIND.get()
    now = datetime.now(timezone.utc)
    return now if behind is None else now - behind


@contextmanager
def clock_at(moment: datetime) -> Iterator[None]:
    """Run the use cases inside as if it were `moment` (the clock then ticks on from there): the demo
    seed works its 90 days of returns through the real services, each at its own time, so every
    timestamp of a use case (ledger row, audit entry, refund, exception) tells one consistent story."""
    token = _CLOCK_BEHIND.set(datetime.now(timezone.utc) - moment)
    try:
        yield
    finally:
        _CLOCK_BEHIND.reset(token)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; treat them as the UTC they were written as."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def to_money(value: object) -> Decimal:
    """Quantize anything numeric to cents."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def make_engine(url: str, **kwargs: object) -> Engine:
    """An engine for `url`.

    SQLite: WAL, a busy timeout, foreign keys, and BEGIN IMMEDIATE for write transactions (see
    begin_write), so that writers queue instead of failing with 'database is locked'.
    PostgreSQL: pool_pre_ping, so that a connection PostgreSQL dropped (a restart) is replaced at
    checkout instead of failing the request; a refused connection is retried with a bounded
    backoff (CONNECT_BACKOFF); and each transaction notes whether it wrote (see end_transaction)."""
    if not url.startswith("sqlite"):
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "do_connect", connect_with_backoff)
        event.listen(engine, "begin", _begin_unwritten)
        event.listen(engine, "before_cursor_execute", _note_write)
        return engine
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


def _begin_unwritten(conn) -> None:  # type: ignore[no-untyped-def]
    conn.info["dockhand_wrote"] = False


def _note_write(conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
    """Anything but a SELECT counts as a write (a WITH ... INSERT, a SAVEPOINT, a failed flush)."""
    if not statement.startswith("SELECT"):
        conn.info["dockhand_wrote"] = True


def _remember_connection(session: Session, _transaction, connection) -> None:  # type: ignore[no-untyped-def]
    session.info["connection"] = connection


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
        """Create the engine from the app's DATABASE_URL and end the session after each request."""
        if self.engine is not None:
            self.session.remove()
            self.engine.dispose()
        self.engine = make_engine(app.config["DATABASE_URL"], **app.config.get("ENGINE_OPTIONS", {}))
        self.session_factory = sessionmaker(bind=self.engine, expire_on_commit=False)
        event.listen(self.session_factory, "after_begin", _remember_connection)
        app.teardown_appcontext(self._end_request)

    def _end_request(self, exc: BaseException | None) -> None:
        """End the request's session (see end_transaction); a request that raised is rolled back."""
        try:
            if exc is None and self.session.registry.has():
                end_transaction(self.session())
        except SQLAlchemyError:  # remove() below rolls back and cleans up
            pass
        finally:
            self.session.remove()

    def dispose(self) -> None:
        """Close every pooled connection (tests, CLI)."""
        self.session.remove()
        if self.engine is not None:
            self.engine.dispose()


db = Database()


def end_transaction(session: Session) -> None:
    """End the session's transaction: commit it when it has only read, else roll it back.

    For a read, commit and rollback are the same, but psycopg forgets a connection's prepared
    statements on a rollback: rolling back every page and refused scan would cost the requests
    after it their prepared statements. A transaction that wrote anything, a session with unflushed
    changes or in a failed state, and anything on SQLite, is rolled back."""
    if isinstance(session, scoped_session):
        session = session()
    conn = session.info.get("connection")
    if (conn is not None and session.is_active and session.in_transaction() and not conn.closed
            and not conn.invalidated and not (session.new or session.dirty or session.deleted)
            and conn.info.get("dockhand_wrote") is False):
        try:
            session.commit()
            return
        except SQLAlchemyError:
            pass
    session.rollback()


def begin_write(session: Session) -> None:
    """Start the use case's write transaction.

    SQLite: what the session read before is rolled back, and BEGIN IMMEDIATE takes the database's
    write lock first, so that the use case's reads and writes happen under it. PostgreSQL (READ
    COMMITTED): a transaction that has only read goes on, keeping its connection; use cases take
    row locks on what they change, and each statement sees what committed before it. A write
    transaction already open (a use case that calls another) goes on."""
    if isinstance(session, scoped_session):
        session = session()
    if session.in_transaction():
        if session.connection().get_execution_options().get("dockhand_write"):
            return  # a unit of work is open already (a use case calling another): it goes on
        if session.get_bind().dialect.name != "sqlite" and not (session.new or session.dirty or session.deleted):
            return
        session.rollback()
    session.connection(execution_options={"dockhand_write": True})


@contextmanager
def unit_of_work(session: Session) -> Iterator[Session]:
    """One use case = one transaction: begin for writing, commit on success, roll back on any
    exception. Nested in another (a use case that calls another), it joins the open transaction
    and its commit ends it."""
    begin_write(session)
    try:
        yield session
        session.commit()
    except BaseException:
        end_transaction(session)
        raise
