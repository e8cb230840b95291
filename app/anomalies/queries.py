"""Reading anomaly flags: a unit's (with its return's), a return's, and the SQL that tells whether
a unit has a flag holding its refund (the disposition's fraud flag, the desk queue's tag)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session

from app.anomalies.models import AnomalyFlag


def _of_unit(unit_id: Any, rma_id: Any) -> ColumnElement[bool]:
    """A flag of this unit, or of its whole return (`rma_id` a column or a value; NULL: no return)."""
    f = AnomalyFlag.__table__
    return or_(f.c.unit_id == unit_id, and_(f.c.unit_id.is_(None), f.c.rma_id == rma_id))


def holding_flag(unit_id: Any, rma_id: Any) -> ColumnElement[bool]:
    """SQL: the unit (`unit_id`, of the return `rma_id`; columns or values) has a flag, not cleared,
    that holds its refund."""
    f = AnomalyFlag.__table__
    return exists().where(_of_unit(unit_id, rma_id), f.c.holds.is_(True), f.c.cleared_at.is_(None))


def any_flag(unit_id: Any, rma_id: Any) -> ColumnElement[bool]:
    """SQL: the unit has a flag not cleared, holding or not (the desk queue's tag)."""
    f = AnomalyFlag.__table__
    return exists().where(_of_unit(unit_id, rma_id), f.c.cleared_at.is_(None))


def unit_flags(session: Session, unit_id: int, rma_id: int | None) -> list[AnomalyFlag]:
    """A unit's flags and its return's, oldest first. The caller checked the actor may see the unit."""
    return list(session.scalars(select(AnomalyFlag).where(_of_unit(unit_id, rma_id)).order_by(AnomalyFlag.id)))


def open_unit_flag_ids(session: Session, unit_id: int) -> list[int]:
    """The ids of the flags on the unit itself that are not cleared (a return's flags stay: they
    hold its other units' refunds too)."""
    return list(session.scalars(select(AnomalyFlag.id).where(AnomalyFlag.unit_id == unit_id,
                                                             AnomalyFlag.cleared_at.is_(None))
                                .order_by(AnomalyFlag.id)))


def return_flags(session: Session, rma_id: int) -> list[AnomalyFlag]:
    """Every flag of a return: its own and its units', oldest first. The caller checked the scope."""
    return list(session.scalars(select(AnomalyFlag).where(AnomalyFlag.rma_id == rma_id).order_by(AnomalyFlag.id)))
