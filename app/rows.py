"""The rows a use case writes, sent to the database together.

Every writer of a concept (a unit move, a refund step, an inspection, an exception, an audit
entry) returns the rows it writes, as `Insert` and `Update` values; the use case sends all of its
rows at once with `write`. On PostgreSQL that is one statement built with SQLAlchemy Core, a chain
of data-modifying CTEs (`WITH w0 AS (INSERT ...), w1 AS (UPDATE ...) SELECT ...`), so that the
scan on the dock costs one round trip for its writes (CHAIN_ROWS rows per statement at most). Elsewhere the rows go
one statement after the other. Ids that rows refer to are allocated beforehand (`next_id`,
`allocate_ids`). See docs/decisions/0003-batched-writes.md.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, literal, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Executable

from app.db import Base


@dataclass(frozen=True)
class Insert:
    """One row to insert; with `conflict` and `add`, an upsert that adds `add` to the existing row."""

    table: Table
    values: dict[str, Any]
    conflict: tuple[str, ...] = ()
    add: str | None = None

    @property
    def shape(self) -> tuple[Any, ...]:
        """What the statement's SQL depends on (not the values): the key of its cached statement."""
        return ("insert", self.table, tuple(self.values), self.conflict, self.add)


@dataclass(frozen=True)
class Update:
    """One row's UPDATE: the row by `key`, the columns to set, the columns stepped by one (`bump`)
    and a column a number is added to (`add`). The row must exist: `write` raises otherwise. Set
    columns only of a row the use case has locked; an increment needs no lock."""

    table: Table
    key: dict[str, Any]
    values: dict[str, Any]
    bump: tuple[str, ...] = ()
    add: tuple[str, int] | None = None

    @property
    def shape(self) -> tuple[Any, ...]:
        return ("update", self.table, tuple(self.key), tuple(self.values), self.bump, self.add[0] if self.add else None)


Row = Insert | Update


def insert_row(model: type[Base], values: dict[str, Any], *, conflict: tuple[str, ...] = (),
               add: str | None = None) -> Insert:
    """A row of `model` to insert, its Python-side column defaults filled in."""
    row = dict(values)
    for name, value, call in _python_defaults(model.__table__):
        if name not in row:
            row[name] = value(None) if call else value
    return Insert(model.__table__, row, conflict, add)


def update_row(model: type[Base], key: dict[str, Any], values: dict[str, Any], *, bump: tuple[str, ...] = (),
               add: tuple[str, int] | None = None) -> Update:
    """An UPDATE of the one row of `model` with this key."""
    return Update(model.__table__, key, values, bump, add)


@lru_cache(maxsize=64)
def _python_defaults(table: Table) -> tuple[tuple[str, Any, bool], ...]:
    out = []
    for col in table.columns:  # by key, as rows name their columns (a column's key may differ from its name)
        if getattr(col.default, "is_scalar", False):
            out.append((col.key, col.default.arg, False))
        elif getattr(col.default, "is_callable", False):
            out.append((col.key, col.default.arg, True))
    return tuple(out)


def next_id(dialect: str, table: Table) -> ColumnElement[int]:
    """The id the next row of `table` gets, as a column of a read, so that rows written together can
    refer to each other. PostgreSQL: the id sequence's nextval. SQLite: one more than the largest
    id, which holds because a write transaction there is the only writer (BEGIN IMMEDIATE)."""
    if dialect == "postgresql":
        return func.nextval(func.pg_get_serial_sequence(table.name, "id"))
    return select(func.coalesce(func.max(table.c.id), 0) + 1).scalar_subquery()


def allocate_ids(session: Session, model: type[Base], count: int) -> list[int]:
    """`count` ids for new rows of `model`, in one statement (see next_id)."""
    if count <= 0:
        return []
    table = model.__table__
    if session.get_bind().dialect.name == "postgresql":
        series = func.generate_series(1, count).table_valued("n")
        return list(session.scalars(select(next_id("postgresql", table)).select_from(series)))
    first = session.scalar(select(next_id("sqlite", table)))
    return list(range(int(first), int(first) + count))


def _insert(dialect: str, shape: tuple[Any, ...], prefix: str, after: Any = None) -> Any:
    """The INSERT of one row of this shape, its values bound as `<prefix><column>`; `after`: a CTE
    the row is selected from (so that it is inserted after that CTE's row)."""
    _, table, columns, conflict, add = shape
    make = pg_insert if dialect == "postgresql" else sqlite_insert if dialect == "sqlite" else insert
    binds = [bindparam(prefix + k, type_=table.c[k].type) for k in columns]
    if after is None:
        stmt = make(table).values(dict(zip(columns, binds)))
    else:
        stmt = make(table).from_select(list(columns), select(*binds).select_from(after))
    if conflict and add:
        stmt = stmt.on_conflict_do_update(index_elements=list(conflict), set_={add: table.c[add] + stmt.excluded[add]})
    return stmt


def _update(shape: tuple[Any, ...], prefix: str) -> Executable:
    """The UPDATE of one row shape; it returns a 1 for the row it changed."""
    _, table, key, columns, bump, add = shape
    values: dict[str, Any] = {k: bindparam(prefix + k, type_=table.c[k].type) for k in columns}
    values.update({b: table.c[b] + 1 for b in bump})
    if add is not None:
        values[add] = table.c[add] + bindparam(prefix + "add", type_=table.c[add].type)
    where = (table.c[k] == bindparam(f"{prefix}k_{k}", type_=table.c[k].type) for k in key)
    return update(table).where(*where).values(values).returning(literal_column("1"))


def _params(row: Row, prefix: str) -> dict[str, Any]:
    if isinstance(row, Insert):
        return {prefix + k: v for k, v in row.values.items()}
    params = {prefix + k: v for k, v in row.values.items()}
    params.update({f"{prefix}k_{k}": v for k, v in row.key.items()})
    if row.add is not None:
        params[prefix + "add"] = row.add[1]
    return params


# Rows per statement. A scan writes about ten: one statement. A parcel closed with hundreds of
# lines missing writes thousands: as one chain of CTEs it took SQLAlchemy and PostgreSQL over 30 s
# (a gunicorn worker timeout on a 500-line return); in chains of this size it is a few statements,
# each compiled once and cached.
CHAIN_ROWS = 32
# psycopg converts a statement's placeholders once and caches the result only for statements of at
# most this many parameters and bytes (psycopg/_queries.py); a chain is kept within both.
CACHED_PARAMS, CACHED_SQL_BYTES = 50, 4096


@lru_cache(maxsize=256)
def _chain(dialect: str, shapes: tuple[tuple[Any, ...], ...]) -> Executable:
    """The one statement for rows of these shapes, in this order: each row a data-modifying CTE,
    row i's values bound as `w<i>_<column>`; it returns how many rows each update changed.

    PostgreSQL runs sibling CTEs in no documented order, so a row inserted into a table that an
    earlier row of the chain was inserted into is selected from that row's CTE: it is inserted
    after it, and ids follow the order given (the outbox's readers see a refund approved before it
    is released). Each CTE is a single-row statement, so SQLAlchemy caches the compiled chain."""
    ctes, counts, last_insert = [], [], {}
    for i, shape in enumerate(shapes):
        if shape[0] == "update":
            cte = _update(shape, f"w{i}_").cte(f"w{i}")
            counts.append(select(func.count()).select_from(cte).scalar_subquery().label(f"w{i}"))
        else:
            table = shape[1]
            cte = _insert(dialect, shape, f"w{i}_", after=last_insert.get(table)).returning(literal_column("1")).cte(f"w{i}")
            last_insert[table] = cte
        ctes.append(cte)
    return select(*counts or [literal(1)]).add_cte(*ctes)


def _chunks(dialect: str, rows: Sequence[Row]) -> list[Sequence[Row]]:
    """`rows` cut, in order, into chains psycopg keeps converted between executions (at most 50
    parameters and 4 KB of SQL, its cache's limits: a larger statement's placeholders are parsed
    again on every execution, which cost a scan 12 % of its instructions) of at most CHAIN_ROWS."""
    out, start = [], 0
    while start < len(rows):
        end = start + 1
        while end < len(rows) and end - start < CHAIN_ROWS and _fits(dialect, tuple(r.shape for r in rows[start:end + 1])):
            end += 1
        out.append(rows[start:end])
        start = end
    return out


@lru_cache(maxsize=1024)
def _fits(dialect: str, shapes: tuple[tuple[Any, ...], ...]) -> bool:
    """Whether one chain of rows of these shapes stays within psycopg's conversion cache."""
    from sqlalchemy.dialects import postgresql

    compiled = _chain(dialect, shapes).compile(dialect=postgresql.psycopg.dialect())
    return len(compiled.params) <= CACHED_PARAMS and len(str(compiled)) <= CACHED_SQL_BYTES


@lru_cache(maxsize=256)
def _single(dialect: str, shape: tuple[Any, ...]) -> Executable:
    return _update(shape, "") if shape[0] == "update" else _insert(dialect, shape, "")


def write(session: Session, rows: Sequence[Row]) -> None:
    """Write `rows` in the session's transaction, in order; raise when an Update finds no row.

    Two updates of one row in one call do not both apply on PostgreSQL (the second sees the row as
    it was): merge them first."""
    if not rows:
        return
    session.flush()  # the use case's pending ORM changes first, so that the rows see them
    dialect = session.get_bind().dialect.name
    updates = [r for r in rows if isinstance(r, Update)]
    if dialect == "postgresql" and len(rows) > 1:
        counts = []
        for chunk in _chunks(dialect, rows):
            params: dict[str, Any] = {}
            for i, row in enumerate(chunk):
                params.update(_params(row, f"w{i}_"))
            changed = session.execute(_chain(dialect, tuple(r.shape for r in chunk)), params).one()
            counts += list(changed)[:sum(isinstance(r, Update) for r in chunk)]
    else:
        counts = []
        for row in rows:
            result = session.execute(_single(dialect, row.shape), _params(row, ""))
            if isinstance(row, Update):
                counts.append(len(result.all()))  # SQLite sets no rowcount before RETURNING is read
    for row, n in zip(updates, counts):
        if n != 1:
            raise RuntimeError(f"{row.table.name} row {row.key} is missing: an UPDATE that must change one row changed {n}")


def expire(session: Session, *entities: tuple[type, Any]) -> None:
    """Expire the session's copies of rows that `write` just changed, (class, primary key) each
    (None keys skipped), so that nothing later in the request reads them stale."""
    from sqlalchemy.orm.util import identity_key

    for cls, ident in entities:
        if ident is not None and (obj := session.identity_map.get(identity_key(cls, ident))) is not None:
            session.expire(obj)


def write_many(session: Session, rows: Sequence[Insert]) -> None:
    """Write many new rows of a few shapes (a batch of returns): the rows of each shape in one
    executemany, which SQLAlchemy sends as multi-row INSERTs (its "insertmanyvalues"), shape after
    shape in the order each first appears, so give the rows that others refer to first."""
    if not rows:
        return
    session.flush()
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row.shape, []).append(row.values)
    for shape, values in groups.items():
        session.execute(insert(shape[1]), values)
