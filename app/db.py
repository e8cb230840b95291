"""Database plumbing: the declarative base, portable column types and the session."""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Integer, MetaData, Numeric, Table, bindparam, create_engine, event, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import ColumnElement, Executable, Insert
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
    ping_after_idle = kwargs.pop("ping_after_idle", PING_AFTER_IDLE)
    engine = create_engine(url, **kwargs)
    _ping_when_idle(engine, float(ping_after_idle))  # type: ignore[arg-type]
    _track_writes(engine)
    _cache_long_statements()
    return engine


PING_AFTER_IDLE = 10.0  # seconds a pooled connection may sit unused before it is pinged


def _ping_when_idle(engine: Engine, after_idle: float) -> None:
    """A pooled connection that sat unused for more than `after_idle` seconds is pinged when it is
    checked out (PostgreSQL may have restarted or dropped it meanwhile) and replaced if the ping
    fails. One in steady use is not pinged: pool_pre_ping's round trip on every checkout cost
    each request about 2% of its CPU, and PostgreSQL a statement. A connection that dies while
    in steady use fails the first statement of its transaction, which is retried once on a new
    connection (_on_driver): every signed-in request begins with one (the user's row)."""
    from sqlalchemy.exc import DisconnectionError

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection, record):  # type: ignore[no-untyped-def]
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection, record, _proxy):  # type: ignore[no-untyped-def]
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since > after_idle:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except engine.dialect.loaded_dbapi.Error as exc:
                raise DisconnectionError("the pooled connection is gone") from exc  # the pool connects anew


def _cache_long_statements() -> None:
    """psycopg turns a query's %(name)s placeholders into $1.. once per query text and keeps the
    result (an LRU of 128), but only for queries of at most 50 parameters and 4 KB
    (psycopg/_queries.py; long generated INSERTs rarely repeat). execute_together's write is one
    text per row shape and repeats on every scan with 88 parameters: without this psycopg parses
    it on every scan again (0.25 ms of CPU a scan, bench/profile_scan.py). The psycopg version is
    pinned; tests/integration/test_scan_hot_path.py fails if these names go away."""
    import psycopg._queries

    psycopg._queries.MAX_CACHED_STATEMENT_PARAMS = max(psycopg._queries.MAX_CACHED_STATEMENT_PARAMS, 256)
    psycopg._queries.MAX_CACHED_STATEMENT_LENGTH = max(psycopg._queries.MAX_CACHED_STATEMENT_LENGTH, 16384)


def _remember_connection(session: Session, _transaction, connection) -> None:  # type: ignore[no-untyped-def]
    """The connection of the session's transaction, for end_transaction (which must not open one)."""
    session.info["connection"] = connection


def _track_writes(engine: Engine) -> None:
    """PostgreSQL: note on the connection whether its transaction has sent anything but a SELECT,
    so that end_transaction can tell a read-only transaction (committed) from one that wrote
    (rolled back). A statement counts as a write unless
    its text starts with SELECT: a WITH ... INSERT, a SAVEPOINT, a flush, even one that failed,
    are writes. Do not write through a SELECT (a function with side effects): it would be
    committed. On SQLite nothing is noted, and every transaction left open at the end of a
    request is rolled back."""

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        conn.info["dockhand_wrote"] = False

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(conn, _cursor, statement, *_):  # type: ignore[no-untyped-def]
        if not statement.startswith("SELECT"):
            conn.info["dockhand_wrote"] = True


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
        event.listen(self.session_factory, "after_begin", _remember_connection)
        app.teardown_appcontext(self._end_request)

    def _end_request(self, exc: BaseException | None) -> None:
        """End the request's session: its transaction ends as end_transaction says, unless the
        request raised (then remove() rolls it back). Never raises."""
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

    For a read, commit and rollback are the same. But psycopg forgets all of a connection's
    prepared statements on a rollback, so every read-only request (each page, the label block
    after each scan, each refused scan) would cost the requests after it their prepared
    statements. Rolled back: a transaction that wrote anything (see _track_writes), unflushed
    changes, a session in a failed state, and anything on SQLite. Used at the end of a request,
    by unit_of_work on failure, and by the error handlers."""
    if isinstance(session, scoped_session):
        session = session()
    conn = session.info.get("connection")
    if (conn is not None and session.is_active and session.in_transaction() and not conn.closed and not conn.invalidated
            and not (session.new or session.dirty or session.deleted) and conn.info.get("dockhand_wrote") is False):
        try:
            session.commit()
            return
        except SQLAlchemyError:
            pass
    session.rollback()


def begin_write(session: Session) -> None:
    """Start a fresh write transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: a plain BEGIN).

    SQLite: anything the session had read before is rolled back first, so the use case's reads
    and writes happen under the one write lock BEGIN IMMEDIATE takes. PostgreSQL (READ COMMITTED):
    every statement already reads what has committed before it, so a transaction that has only
    read goes on. The request then keeps one pooled connection (one checkout, one ping) and the
    objects it loaded (the signed-in user, the parcel) need no second query. Use cases take row
    locks (populate_existing) on what they change.
    """
    if isinstance(session, scoped_session):
        session = session()
    if session.in_transaction():
        if session.get_bind().dialect.name != "sqlite" and not (session.new or session.dirty or session.deleted):
            return
        session.rollback()
    session.connection(execution_options={"dockhand_write": True})


def current_transaction(session: Session) -> Any:
    """The session's transaction now (None when there is none): what a lock taken earlier in the
    request lives in, so a caller can tell that it still holds it (begin_write may have begun anew)."""
    if isinstance(session, scoped_session):
        session = session()
    return session.get_transaction()


@contextmanager
def unit_of_work(session: Session) -> Iterator[Session]:
    """One use case = one transaction: begin for writing, commit on success, roll back on any exception."""
    begin_write(session)
    try:
        yield session
        session.commit()
    except BaseException:
        end_transaction(session)
        raise


def next_id(dialect: str, table: Table) -> ColumnElement[int]:
    """The id the next row of `table` will get, allocated in a query, so that the rows of one use
    case can reference each other before any of them is inserted (see execute_together).

    PostgreSQL: nextval of the table's id sequence (safe under any concurrency). SQLite: one more
    than the largest id; only inside a write transaction, whose BEGIN IMMEDIATE makes it the only writer.
    """
    if dialect == "postgresql":
        return func.nextval(func.pg_get_serial_sequence(table.name, "id"))
    return select(func.coalesce(func.max(table.c.id), 0) + 1).scalar_subquery()


Shape = tuple[Table, tuple[str, ...], tuple[str, ...], "str | None"]


@dataclass(frozen=True)
class RowInsert:
    """One row for execute_together: its table, its columns (Python-side defaults filled in) and,
    for an upsert, the unique columns whose conflict adds `add` to the existing row instead."""

    table: Table
    values: dict[str, Any]
    conflict: tuple[str, ...] = ()
    add: str | None = None

    @property
    def shape(self) -> Shape:
        """What the INSERT's SQL depends on (its values aside): the key of its cached statement."""
        return (self.table, tuple(self.values), self.conflict, self.add)


@dataclass(frozen=True)
class RowUpdate:
    """One row's UPDATE for execute_together: the row by its `key` columns, the columns to set, the
    columns that go up by one (a version counter) and the columns a number is added to (`add`,
    column and amount). The row must be there: execute_together raises when it is not. Anything
    but an increment must be a row the caller has locked (read FOR UPDATE in this transaction)."""

    table: Table
    key: dict[str, Any]
    values: dict[str, Any]
    bump: tuple[str, ...] = ()
    add: tuple[str, int] | None = None

    @property
    def shape(self) -> tuple[Any, ...]:
        return ("update", self.table, tuple(self.key), tuple(self.values), self.bump, self.add[0] if self.add else None)


def insert_row(model: type[Base], values: dict[str, Any], *, conflict: tuple[str, ...] = (),
               add: str | None = None) -> RowInsert:
    """A row to insert with execute_together (conflict + add: `ON CONFLICT (conflict) DO UPDATE SET add = add + new`)."""
    table = model.__table__
    row = dict(values)
    for name, value, call in _python_defaults(table):
        if name not in row:
            row[name] = value(None) if call else value
    return RowInsert(table, row, conflict, add)


def update_row(model: type[Base], key: dict[str, Any], values: dict[str, Any], *, bump: tuple[str, ...] = (),
               add: tuple[str, int] | None = None) -> RowUpdate:
    """A row's UPDATE for execute_together (`bump`: columns set to themselves + 1; `add`: (column, n)
    sets the column to itself + n)."""
    return RowUpdate(model.__table__, key, values, bump, add)


@lru_cache(maxsize=64)
def _python_defaults(table: Table) -> tuple[tuple[str, Any, bool], ...]:
    """The table's Python-side column defaults: (column, value or function, whether to call it)."""
    out = []
    for col in table.columns:
        if getattr(col.default, "is_scalar", False):
            out.append((col.name, col.default.arg, False))
        elif getattr(col.default, "is_callable", False):
            out.append((col.name, col.default.arg, True))
    return tuple(out)


def _insert_statement(dialect: str, shape: Shape, prefixes: Sequence[str]) -> Insert:
    """The INSERT of rows of one shape, the values of row i bound as `<prefixes[i]><column>`."""
    table, columns, conflict, add = shape
    make = pg_insert if dialect == "postgresql" else sqlite_insert if dialect == "sqlite" else insert
    rows = [{k: bindparam(prefix + k, type_=table.c[k].type) for k in columns} for prefix in prefixes]
    stmt = make(table).values(rows if len(rows) > 1 else rows[0])
    if conflict and add:
        stmt = stmt.on_conflict_do_update(index_elements=list(conflict), set_={add: table.c[add] + stmt.excluded[add]})
    return stmt


def _update_statement(shape: tuple[Any, ...], prefix: str) -> Executable:
    """The UPDATE of one row shape: key columns bound as `<prefix>k_<column>`, values as
    `<prefix><column>`, the added amount as `<prefix>add`; it returns a 1 for the row it changed."""
    _, table, key, columns, bump, add = shape
    values: dict[str, Any] = {k: bindparam(prefix + k, type_=table.c[k].type) for k in columns}
    values.update({b: table.c[b] + 1 for b in bump})
    if add is not None:
        values[add] = table.c[add] + bindparam(prefix + "add", type_=table.c[add].type)
    where = (table.c[k] == bindparam(f"{prefix}k_{k}", type_=table.c[k].type) for k in key)
    return update(table).where(*where).values(values).returning(literal(1))


@lru_cache(maxsize=256)
def _together_plan(dialect: str, shapes: tuple[tuple[Any, ...], ...]) -> tuple[Executable, tuple[tuple[str, ...], ...], bool]:
    """One statement for rows of these shapes, in this order, built once (see execute_together), with
    each row's parameter names (in the order of _row_values) and whether it returns update counts.

    The inserts of one shape share one multi-row INSERT, each update is a CTE of its own, in order of
    first appearance; the statement returns how many rows each update changed, in order."""
    groups: dict[Any, list[int]] = {}
    for i, shape in enumerate(shapes):
        groups.setdefault(i if isinstance(shape[0], str) else shape, []).append(i)
    names: list[tuple[str, ...]] = [()] * len(shapes)
    ctes, updated = [], []
    for g, members in enumerate(groups.values()):
        shape = shapes[members[0]]
        if isinstance(shape[0], str):  # an update
            _, _, key, columns, _, add = shape
            names[members[0]] = (*(f"w{g}_{k}" for k in columns), *(f"w{g}_k_{k}" for k in key), *((f"w{g}_add",) if add else ()))
            cte = _update_statement(shape, f"w{g}_").cte(f"w{g}")
            updated.append(select(func.count()).select_from(cte).scalar_subquery().label(f"w{g}"))
        else:
            for j, i in enumerate(members):
                names[i] = tuple(f"w{g}_{j}_{k}" for k in shape[1])
            cte = _insert_statement(dialect, shape, [f"w{g}_{j}_" for j in range(len(members))]).cte(f"w{g}")
        ctes.append(cte)
    return select(*updated or [literal(1)]).add_cte(*ctes), tuple(names), bool(updated)


def _row_values(r: RowInsert | RowUpdate) -> tuple[Any, ...]:
    if isinstance(r, RowInsert):
        return tuple(r.values.values())
    return (*r.values.values(), *r.key.values(), *((r.add[1],) if r.add else ()))


@lru_cache(maxsize=256)
def _single_statement(dialect: str, shape: tuple[Any, ...]) -> Executable:
    return _update_statement(shape, "") if isinstance(shape[0], str) else _insert_statement(dialect, shape, [""])


def _single_params(r: RowInsert | RowUpdate) -> dict[str, Any]:
    if isinstance(r, RowInsert):
        return r.values
    params = {**r.values, **{f"k_{k}": v for k, v in r.key.items()}}
    if r.add is not None:
        params["add"] = r.add[1]
    return params


def _check_updated(rows: Sequence[RowInsert | RowUpdate], counts: Sequence[int]) -> None:
    updates = [r for r in rows if isinstance(r, RowUpdate)]
    for r, n in zip(updates, counts):
        if n != 1:
            raise RuntimeError(f"{r.table.name} row {r.key} is missing: an UPDATE that must change one row changed {n}")


def execute_together(session: Session, rows: Sequence[RowInsert | RowUpdate]) -> None:
    """Write rows whose values are all known, in the caller's transaction: inserts, and updates of
    rows the caller has locked (or increments); each update must change its one row, else RuntimeError.

    PostgreSQL: one round trip, a chain of data-modifying CTEs (`WITH w0 AS (INSERT ...), w1 AS
    (UPDATE ...) SELECT ...`); foreign keys are checked at the end of the statement, so the rows may
    reference each other. PostgreSQL runs sibling CTEs in no documented order (the updates, which
    the final SELECT counts, run first; the inserts nobody reads run last first), so the inserts of
    one table and shape share one multi-row INSERT: they get their ids in the order given (an
    outbox's readers see a refund approved before it is released). Two updates of one row in one
    call do not both apply on PostgreSQL (the second sees the row as it was): do not send them. It goes
    straight to the driver, like read_rows. Elsewhere (SQLite, in-process), one statement after
    the other, in the order given. The statement for a given sequence of row shapes is built once
    and reused with new values.
    """
    _autoflush(session)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and len(rows) > 1:
        stmt, names, updates = _together_plan(dialect, tuple(r.shape for r in rows))
        params: dict[str, Any] = {}
        for r, row_names in zip(rows, names):
            params.update(zip(row_names, _row_values(r)))
        result = _on_driver(session, stmt, params, fetch=updates)
        _check_updated(rows, result[0] if updates else ())
        return
    counts = []
    for r in rows:
        done = session.execute(_single_statement(dialect, r.shape), _single_params(r))
        if isinstance(r, RowUpdate):
            counts.append(len(done.all()))  # its RETURNING rows: SQLite's rowcount is not set before they are read
    _check_updated(rows, counts)


# ---------------------------------------------------------------------------------------------- the hot path


@lru_cache(maxsize=128)
def _driver_statement(stmt: Executable, dialect: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A statement compiled once for the driver: its SQL, the values of its literal binds (LIMIT 1
    and the like) and the type conversions of its binds (a dict becomes psycopg's Json, ...)."""
    compiled = stmt.compile(dialect=dialect)
    processors = {}
    for name, bind in compiled.binds.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[name] = process
    return str(compiled), {k: v for k, v in compiled.params.items() if v is not None}, processors


def _on_driver(session: Session, stmt: Executable, params: dict[str, Any], fetch: bool, retry: bool = True) -> list[Any]:
    """Run `stmt` (built once) straight on psycopg, in the session's transaction (see read_rows).

    When it is the first statement of its transaction and finds the connection gone (PostgreSQL
    restarted, the connection was dropped), nothing of the transaction has happened: the pool's
    connections are replaced and the statement runs once more on a new one (see _ping_when_idle)."""
    from psycopg import Error as DriverError
    from psycopg.rows import namedtuple_row
    from sqlalchemy.exc import DBAPIError

    if isinstance(session, scoped_session):
        session = session()
    conn = session.info.get("connection") if session.in_transaction() else None  # the transaction's (after_begin)
    first = conn is None or conn.closed
    if first or conn.invalidated:
        conn = session.connection()
    sql, defaults, processors = _driver_statement(stmt, conn.dialect)
    args = {**defaults, **params}
    for name, process in processors.items():
        if name in args:
            args[name] = process(args[name])
    driver = conn.connection.driver_connection
    cursor = driver.cursor(row_factory=namedtuple_row)
    try:
        for before in conn.dispatch.before_cursor_execute:
            sql, args = before(conn, cursor, sql, args, None, False)
        cursor.execute(sql, args)
        rows = cursor.fetchall() if fetch else []
        for after in conn.dispatch.after_cursor_execute:
            after(conn, cursor, sql, args, None, False)
        return rows
    except DriverError as exc:
        lost = conn.dialect.is_disconnect(exc, driver, cursor)
        if lost:
            conn.invalidate(exc)
            if first and retry:
                session.rollback()
                conn.engine.dispose()  # its other pooled connections went with it
                return _on_driver(session, stmt, params, fetch, retry=False)
        raise DBAPIError.instance(sql, args, exc, DriverError, connection_invalidated=lost, dialect=conn.dialect) from exc
    finally:
        cursor.close()


def expire_rows(session: Session, *entities: tuple[type, Any]) -> None:
    """Expire the session's copies of rows just changed by plain UPDATEs (write_rows, execute_together),
    so that nothing reads them stale: (entity class, primary key) each, None keys skipped."""
    from sqlalchemy.orm.util import identity_key

    for cls, ident in entities:
        if ident is not None and (obj := session.identity_map.get(identity_key(cls, ident))) is not None:
            session.expire(obj)


def _autoflush(session: Session) -> None:
    """Send the use case's pending ORM changes first, so that the statement sees them (a statement on
    plain tables gets no autoflush from session.execute either)."""
    if session.autoflush:
        session.flush()  # returns at once when nothing is pending (its own check is cheaper than .new/.dirty)


def write_rows(session: Session, stmt: Executable, params: dict[str, Any]) -> None:
    """A write on a hot path that returns nothing (an UPDATE, an INSERT), the way read_rows runs a read."""
    _autoflush(session)
    if session.get_bind().dialect.name != "postgresql":
        session.execute(stmt, params)
        return
    _on_driver(session, stmt, params, fetch=False)


def read_rows(session: Session, stmt: Executable, params: dict[str, Any]) -> list[Any]:
    """The rows of a read on the request's hot path (a scan happens up to ten times a second), as
    named tuples: `row.column`.

    `stmt` must be built once (an lru_cache'd factory) and select plain columns, each with a
    unique name. On PostgreSQL it is compiled once and then goes straight to psycopg on the
    session's connection, in its transaction: SQLAlchemy's per-execution work (the cache key,
    the ORM's loading, the result's setup) costs two to three times the driver's own (measured:
    bench/README.md). Bind values get their types' conversions, the engine's
    before/after_cursor_execute listeners still see the statement (statement counts, write
    tracking) and driver errors come back as SQLAlchemy's (a lost connection is invalidated), as
    for any other statement (the engine's handle_error hooks are not called). Pending ORM changes
    are flushed first, on every database. Elsewhere (SQLite) it is a plain session.execute."""
    _autoflush(session)
    if session.get_bind().dialect.name != "postgresql":
        return list(session.execute(stmt, params))
    return _on_driver(session, stmt, params, fetch=True)
