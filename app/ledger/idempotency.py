"""Idempotency keys: a replayed mutation returns its first result and has no second effect."""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from functools import lru_cache
from types import UnionType
from typing import Any, Generic, TypeVar, Union, get_args, get_origin, get_type_hints

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app.auth.roles import Actor
from app.db import unit_of_work, utcnow
from app.rows import Insert, insert_row
from app.errors import Conflict, IdempotencyKeyReused, StaleVersion, ValidationFailed
from app.ledger.models import IdempotencyRecord
from app.words import N_

_KEY_RE = re.compile(r"^[A-Za-z0-9._:\-]{8,100}$")


@dataclass(frozen=True)
class Result:
    """What a use case answers: a frozen dataclass of JSON values, tuples of them and nested frozen
    dataclasses of them. Its key's record keeps it as JSON (`stored`); a retry with the same key gets
    it back as its type (`rebuilt`), with `replayed` set."""

    replayed: bool = field(default=False, kw_only=True)


R = TypeVar("R", bound=Result)


def stored(result: Result) -> dict[str, Any]:
    """The JSON a result is kept as on its key's record: its fields (dataclasses.asdict), but `replayed`."""
    data = asdict(result)
    del data["replayed"]
    return data


def rebuilt(result_type: type[R], data: Mapping[str, Any] | None) -> R:
    """The result a key's record keeps, as `result_type` again, marked replayed. A field the record
    does not have (a result stored before the field was added) takes its default."""
    return replace(_rebuilt(result_type, data or {}), replayed=True)


def _rebuilt(type_: Any, value: Any) -> Any:
    """`value` (JSON) as `type_`: a dataclass from its fields, a tuple or list of them, X | None."""
    if value is None:
        return None
    if is_dataclass(type_):
        hints = _hints(type_)
        return type_(**{f.name: _rebuilt(hints[f.name], value[f.name])
                        for f in fields(type_) if f.init and f.name in value})
    origin, args = get_origin(type_), [a for a in get_args(type_) if a is not type(None)]
    if origin in (Union, UnionType) and len(args) == 1:
        return _rebuilt(args[0], value)
    if origin in (tuple, list):
        return origin(_rebuilt(args[0], item) for item in value)
    return value


@lru_cache(maxsize=128)
def _hints(type_: type) -> dict[str, Any]:
    return get_type_hints(type_)


def fingerprint(operation: str, params: dict[str, Any]) -> str:
    """A stable hash of what was asked, to tell a true replay from a reused key."""
    blob = json.dumps({"op": operation, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def check_key(key: str | None) -> str:
    """Refuse a missing or malformed idempotency key with a clear message."""
    if not key or not _KEY_RE.match(key):
        raise ValidationFailed(N_("This action needs an idempotency key (8-100 letters, digits, '.', '_', ':' or '-'). Reload the page and try again."))
    return key


def _replay(record: IdempotencyRecord, actor: Actor, operation: str, fp: str, result_type: type[R]) -> R:
    if record.operation != operation or record.fingerprint != fp or record.actor_id != actor.id:
        raise IdempotencyKeyReused(N_("This request key was already used for a different action. Reload the page and try again."))
    return rebuilt(result_type, record.result)


def _claim(session: Session, actor: Actor, key: str, operation: str, fp: str) -> bool:
    """Insert the claim row unless the key is taken, in one statement; True when the key is ours now.

    `INSERT ... ON CONFLICT DO NOTHING` waits for a concurrent claimer of the same key to finish,
    like a plain INSERT would, and then inserts nothing when that one committed.
    """
    values = {"key": key, "operation": operation, "actor_id": actor.id, "fingerprint": fp}
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        return bool(session.execute(_claim_statement(dialect), dict(values, created_at=utcnow())).all())
    if session.get(IdempotencyRecord, key) is not None:
        return False
    session.add(IdempotencyRecord(**values))
    session.flush()
    return True


@lru_cache(maxsize=2)
def _claim_statement(dialect: str) -> Any:
    """_claim's INSERT ... ON CONFLICT DO NOTHING RETURNING key, built once."""
    records = IdempotencyRecord.__table__
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    values = {name: bindparam(name, type_=records.c[name].type) for name in ("key", "operation", "actor_id", "fingerprint", "created_at")}
    return insert(records).values(values).on_conflict_do_nothing(index_elements=[records.c.key]).returning(records.c.key)


@lru_cache(maxsize=1)
def _record_result_statement() -> Any:
    """The UPDATE that stores a use case's result on its key's record, built once."""
    records = IdempotencyRecord.__table__
    return update(records).where(records.c.key == bindparam("claimed_key")).values(
        result=bindparam("result", type_=records.c.result.type))


@lru_cache(maxsize=1)
def _record_statement() -> Any:
    """LateClaim.replayed_alone's read: the key's record, alone."""
    return select(*LateClaim.record_columns())


@dataclass(frozen=True)
class LateClaim(Generic[R]):
    """For a hot use case that reads its key's record in one of its own reads (`recorded`, a scalar
    subquery) and writes the record, result included, with its own rows (`record`): two statements
    fewer than claim-then-update. A concurrent attempt with the same key that got past the lookup
    fails on the record's primary key, and run_idempotent replays the winner. Read the record in a
    statement after the one that takes the lock when the use case's checks would refuse a loser that
    missed the winner's record (a statement's snapshot predates its wait for a lock)."""

    key: str
    operation: str
    fingerprint: str
    actor: Actor
    result_type: type[R]

    @staticmethod
    def recorded(column: Any) -> Any:
        """A scalar subquery of one column of the key's record (NULL when there is none); the key is
        the bound parameter `claim_key` (see params)."""
        records = IdempotencyRecord.__table__  # table columns: the reads that carry it stay plain reads
        return select(records.c[column.key]).where(records.c.key == bindparam("claim_key")).scalar_subquery()

    @staticmethod
    def record_columns() -> list[Any]:
        """The key's record as four columns of a read (rec_operation, rec_fingerprint, rec_actor_id,
        rec_result), all NULL when there is none: see `replayed`."""
        return [LateClaim.recorded(IdempotencyRecord.operation).label("rec_operation"),
                LateClaim.recorded(IdempotencyRecord.fingerprint).label("rec_fingerprint"),
                LateClaim.recorded(IdempotencyRecord.actor_id).label("rec_actor_id"),
                LateClaim.recorded(IdempotencyRecord.result).label("rec_result")]

    @staticmethod
    def fresh() -> Any:
        """A condition of a read: the key has no record yet (a retry that replays takes no new ids)."""
        return LateClaim.recorded(IdempotencyRecord.operation).is_(None)

    def replayed_alone(self, session: Session) -> R | None:
        """`replayed`, for a use case with no read of its own to carry the record: one statement."""
        return self.replayed(session.execute(_record_statement(), self.params).all()[0])

    def replayed(self, row: Any) -> R | None:
        """The stored result when `row` (a read with record_columns) found this key's record, or
        IdempotencyKeyReused; None when the key is fresh."""
        if row.rec_operation is None:
            return None
        return self.replay(row.rec_operation, row.rec_fingerprint, row.rec_actor_id, row.rec_result)

    @property
    def params(self) -> dict[str, str]:
        """The parameters `recorded` needs."""
        return {"claim_key": self.key}

    def replay(self, operation: str, fp: str, actor_id: int | None, result: dict[str, Any] | None) -> R:
        """The stored result of this key's record, or IdempotencyKeyReused."""
        return _replay(IdempotencyRecord(key=self.key, operation=operation, fingerprint=fp, actor_id=actor_id,
                                         result=result), self.actor, self.operation, self.fingerprint, self.result_type)

    def record(self, result: R) -> Insert:
        """This key's record with its result, a row for write."""
        return insert_row(IdempotencyRecord, {"key": self.key, "operation": self.operation, "actor_id": self.actor.id,
                                              "fingerprint": self.fingerprint, "result": stored(result)})


def run_idempotent(session: Session, actor: Actor, key: str | None, operation: str, params: dict[str, Any],
                   work: Callable[..., R], *, result_type: type[R], late_claim: bool = False) -> R:
    """Run `work` in one transaction, claimed by `key`; replays get the stored result.

    `work` returns a `result_type` (a Result), stored on the key's record and rebuilt for a replay.
    The claim row is inserted before the work, in the same transaction. Concurrent
    attempts with the same key block on the primary key (PostgreSQL) or the database
    lock (SQLite) until the first commits, then replay its result. A failed attempt
    rolls back its claim, so a retry after a refusal is tried afresh.
    With `late_claim`, `work(claim)` gets a LateClaim and does the lookup and the record itself.
    """
    key = check_key(key)
    fp = fingerprint(operation, params)
    try:
        with unit_of_work(session):
            if late_claim:
                return _checked(work(LateClaim(key, operation, fp, actor, result_type)), result_type)
            if not _claim(session, actor, key, operation, fp):
                existing = session.get(IdempotencyRecord, key, populate_existing=True)
                if existing is None:  # the key's row vanished between the two statements
                    raise Conflict(N_("Somebody else did this at the same moment. Nothing was changed: look again."))
                return _replay(existing, actor, operation, fp, result_type)
            result = _checked(work(), result_type)
            session.execute(_record_result_statement(), {"claimed_key": key, "result": stored(result)})
    except StaleDataError as exc:
        raise StaleVersion(N_("Somebody else changed this at the same moment. Nothing was changed: look again.")) from exc
    except IntegrityError as exc:
        # Somebody raced us with the same key and committed first: replay theirs.
        winner = session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.key == key)).first()
        if winner is None:
            # A uniqueness rule of the schema refused a duplicate (e.g. a second refund trigger).
            raise Conflict(N_("Somebody else did this at the same moment. Nothing was changed: look again.")) from exc
        replayed = _replay(winner, actor, operation, fp, result_type)
        session.rollback()
        return replayed
    return result


def _checked(result: Any, result_type: type[R]) -> R:
    """The use case's answer, refused when it is not the type its replays are rebuilt as."""
    if not isinstance(result, result_type):
        raise TypeError(f"a use case answered {type(result).__name__}, not its {result_type.__name__}")
    return result
