"""The one writer of anomaly flags: raising them (with an audit entry each) and clearing them."""
from __future__ import annotations

from collections.abc import Sequence

from app.anomalies.domain import KINDS, Flag
from app.anomalies.models import AnomalyFlag
from app.auth.roles import Actor
from app.db import utcnow
from app.errors import ValidationFailed
from app.ledger.writer import audit_row
from app.rows import Row, insert_row, update_row


def flag_rows(actor: Actor, flags: Sequence[Flag], *, unit_id: int | None, rma_id: int | None,
              warehouse_id: int | None) -> list[Row]:
    """The rows of new flags on a unit (`unit_id`) or on a whole return (`unit_id` None), each with
    its audit entry on the unit (or the return)."""
    if unit_id is None and rma_id is None:
        raise ValidationFailed("A flag is on a unit or a return.")
    rows: list[Row] = []
    for flag in flags:
        if flag.kind not in KINDS:
            raise ValidationFailed(f"Unknown anomaly '{flag.kind}'.")
        rows += [insert_row(AnomalyFlag, {"kind": flag.kind, "unit_id": unit_id, "rma_id": rma_id, "holds": flag.holds,
                                          "explanation": flag.explanation, "details": flag.details,
                                          "created_at": utcnow(), "created_by_id": actor.id}),
                 audit_row(actor, "anomaly.flagged", "unit" if unit_id is not None else "rma",
                           unit_id if unit_id is not None else rma_id,  # type: ignore[arg-type]
                           warehouse_id=warehouse_id, reason=flag.explanation,
                           details={"kind": flag.kind, "holds": flag.holds, **flag.details})]
    return rows


def clear_rows(actor: Actor, flag_ids: Sequence[int]) -> list[Row]:
    """The rows that mark flags cleared by `actor` now (a supervisor decided the refund they held)."""
    now = utcnow()
    return [update_row(AnomalyFlag, {"id": fid}, {"cleared_at": now, "cleared_by_id": actor.id}) for fid in flag_ids]
