"""The one writer of inspections: the inspection row, the unit's grade, packaging and inspector,
and the audit entry."""
from __future__ import annotations

from typing import Any

from app.auth.roles import Actor
from app.db import utcnow
from app.inspection.models import Inspection, Photo
from app.ledger.models import ReturnUnit
from app.ledger.writer import audit_row
from app.rows import Insert, Row, insert_row, update_row


_KEEP = object()  # record_inspection's `grading` when the caller leaves the unit's grading as it is


def record_inspection(actor: Actor, unit: Any, inspection_id: int, *, grade: str, packaging: str,
                      answers: dict[str, bool], notes: str | None, checklist_version: int | None = None, action: str = "unit.inspected",
                      reason: str | None = None, details: dict[str, Any] | None = None,
                      grading: dict[str, Any] | None | object = _KEEP) -> list[Row]:
    """The rows of one inspection of a unit the caller has locked (`unit`: id, warehouse_id), its
    id allocated by the caller (`checklist_version`: the version of the category's checklist the
    answers were kept to, None when it has none): the inspection, the unit's new grade (its version stepped) and the
    audit entry (`action`, with `reason` and `details` beside the grade). `grading` (what the answers
    set: app.inspection.grading.Grading.as_json, None for nothing) replaces the unit's; left out, the
    unit keeps its own (a supervisor's re-grade). Missing kit components are named in the audit entry."""
    now = utcnow()
    unit_values: dict[str, Any] = {"grade": grade, "packaging": packaging, "inspected_at": now, "inspected_by_id": actor.id}
    kept = None
    if grading is not _KEEP:
        kept = grading if isinstance(grading, dict) else None
        unit_values["grading"] = kept
    extra = {"grading": kept} if kept else {}
    if kept and kept.get("missing"):
        extra["missing_components"] = kept["missing"]
    return [update_row(ReturnUnit, {"id": unit.id}, unit_values, bump=("version",)),
            insert_row(Inspection, {"id": inspection_id, "unit_id": unit.id, "inspector_id": actor.id, "grade": grade,
                                    "packaging": packaging, "answers": answers, "notes": notes, "checklist_version": checklist_version,
                                    "grading": kept, "created_at": now}),
            audit_row(actor, action, "unit", unit.id, warehouse_id=unit.warehouse_id, reason=reason,
                      details={"grade": grade, "packaging": packaging, "answers": answers,
                               "inspection_id": inspection_id, **extra, **(details or {})})]


def photo_row(actor: Actor, photo_id: int, photo: Any, storage_key: str, *, unit_id: int | None = None,
              exception_id: int | None = None) -> Insert:
    """A photo's row (its file stored under `storage_key`): of a unit, or of the box an exception is about."""
    return insert_row(Photo, {"id": photo_id, "unit_id": unit_id, "exception_id": exception_id, "storage_key": storage_key,
                              "sha256": photo.sha256, "width": photo.width, "height": photo.height,
                              "uploaded_by_id": actor.id})
