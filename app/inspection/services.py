"""Inspection use cases: record the checklist, grade and packaging; attach photos."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.auth.scoping import ensure_unit_visible
from app.db import utcnow
from app.errors import Conflict, NotPermitted, ValidationFailed
from app.inspection.models import PACKAGING_STATES, ChecklistTemplate, Inspection, Photo
from app.inspection.photos import PhotoRejected, PhotoStore, process_photo
from app.ledger.idempotency import run_idempotent
from app.ledger.models import GRADES, ReturnUnit
from app.ledger.services import audit, lock_unit

DEFAULT_CHECKLISTS: dict[str, list[dict[str, Any]]] = {
    "electronics": [
        {"key": "powers_on", "label": "Powers on"},
        {"key": "screen_ok", "label": "Screen free of cracks and dead pixels"},
        {"key": "accessories", "label": "Charger and accessories present"},
        {"key": "factory_reset", "label": "Account removed / factory reset"},
        {"key": "no_liquid", "label": "No liquid damage indicator"},
    ],
    "apparel": [
        {"key": "tags_attached", "label": "Original tags attached"},
        {"key": "unworn", "label": "Unworn, unwashed, no odour"},
        {"key": "no_stains", "label": "No stains, tears or pulls"},
        {"key": "size_matches", "label": "Size label matches the SKU"},
    ],
    "health_beauty": [
        {"key": "seal_intact", "label": "Safety seal intact"},
        {"key": "unused", "label": "Product unused"},
        {"key": "in_date", "label": "Within expiry date"},
        {"key": "lot_readable", "label": "Lot number readable"},
    ],
}


def checklist_for(session: Session, category: str) -> list[dict[str, Any]]:
    """The configured checklist of a category (seeded defaults when none is stored)."""
    template = session.get(ChecklistTemplate, category)
    if template is not None:
        return list(template.items)
    return DEFAULT_CHECKLISTS.get(category, [])


def checklist_answers(session: Session, unit: ReturnUnit, form: Mapping[str, str],
                      items: list[dict[str, Any]] | None = None) -> dict[str, bool]:
    """The unit's checklist (`items`, else its category's) answered from a form: `q_<key>` = "yes" is True, anything else False."""
    items = checklist_for(session, unit.product.category) if items is None else items
    return {item["key"]: form.get(f"q_{item['key']}") == "yes" for item in items}


def clean_grade(grade: str | None, packaging: str | None) -> tuple[str, str]:
    """A condition grade and packaging state from a form, or a clear refusal."""
    grade = (grade or "").strip().upper()
    packaging = (packaging or "").strip().lower()
    if grade not in GRADES:
        raise ValidationFailed("Pick a condition grade (A, B, C or D).")
    if packaging not in PACKAGING_STATES:
        raise ValidationFailed("Pick the packaging state.")
    return grade, packaging


def write_inspection(session: Session, actor: Actor, unit: ReturnUnit, *, grade: str, packaging: str,
                     answers: Mapping[str, Any] | None, notes: str | None) -> Inspection:
    """A new inspection of a locked unit, in the caller's transaction: the answers kept to its
    category's checklist, and the unit's grade, packaging and inspector set (flushed: the id is known).
    The handheld's inspection and the desk's re-grade both write it."""
    known = {item["key"] for item in checklist_for(session, unit.product.category)}
    clean = {k: bool(v) for k, v in (answers or {}).items() if k in known}
    inspection = Inspection(unit_id=unit.id, inspector_id=actor.id, grade=grade, packaging=packaging, answers=clean,
                            notes=notes)
    session.add(inspection)
    unit.grade, unit.packaging = grade, packaging
    unit.inspected_at, unit.inspected_by_id = utcnow(), actor.id
    session.flush()
    return inspection


def record_inspection(session: Session, actor: Actor, *, unit_id: int, grade: str, packaging: str,
                      answers: dict[str, Any], notes: str | None, idempotency_key: str | None) -> dict[str, Any]:
    """Use case: the inspector's answers, grade and packaging state; the unit stays `received` until disposed."""
    if not actor.can("inspect"):
        raise NotPermitted("You may not inspect units.")
    grade, packaging = clean_grade(grade, packaging)
    notes = (notes or "").strip() or None
    if notes and len(notes) > 2000:
        raise ValidationFailed("Keep the notes under 2000 characters.")

    def work() -> dict[str, Any]:
        unit = lock_unit(session, unit_id)
        ensure_unit_visible(session, actor, unit)
        if unit.state != "received":
            raise Conflict(f"Unit {unit.lpn} was already disposed ({unit.state.replace('_', ' ')}): "
                           "a supervisor re-grades it from the desk, with a reason.")
        inspection = write_inspection(session, actor, unit, grade=grade, packaging=packaging, answers=answers,
                                      notes=notes)
        clean = inspection.answers
        audit(session, actor, "unit.inspected", "unit", unit.id, warehouse_id=unit.warehouse_id,
              details={"grade": grade, "packaging": packaging, "answers": clean, "inspection_id": inspection.id})
        return {"unit_id": unit.id, "inspection_id": inspection.id, "grade": grade, "packaging": packaging,
                "answers": clean, "notes": notes, "version": unit.version}

    params = {"unit_id": unit_id, "grade": grade, "packaging": packaging, "answers": answers, "notes": notes}
    return run_idempotent(session, actor, idempotency_key, "record_inspection", params, work)


def add_photo(session: Session, actor: Actor, *, unit_id: int, data: bytes, store_root: str | Path,
              max_bytes: int, idempotency_key: str | None) -> dict[str, Any]:
    """Use case: attach a photo. Decoded, re-encoded without EXIF, thumbnailed and stored outside
    the database; the same picture twice is one photo."""
    if not actor.can("inspect"):
        raise NotPermitted("You may not add photos.")
    try:
        processed = process_photo(data, max_bytes=max_bytes)
    except PhotoRejected as exc:
        raise ValidationFailed(exc.message) from exc

    def work() -> dict[str, Any]:
        unit = lock_unit(session, unit_id)
        ensure_unit_visible(session, actor, unit)
        existing = session.scalars(select(Photo).where(Photo.unit_id == unit.id, Photo.sha256 == processed.sha256)).first()
        if existing is not None:
            return {"photo_id": existing.id, "unit_id": unit.id, "duplicate": True}
        key = PhotoStore(Path(store_root)).save(processed)
        photo = Photo(unit_id=unit.id, storage_key=key, sha256=processed.sha256, width=processed.width,
                      height=processed.height, uploaded_by_id=actor.id)
        session.add(photo)
        session.flush()
        audit(session, actor, "unit.photo_added", "unit", unit.id, warehouse_id=unit.warehouse_id,
              details={"photo_id": photo.id, "sha256": processed.sha256})
        return {"photo_id": photo.id, "unit_id": unit.id, "duplicate": False}

    return run_idempotent(session, actor, idempotency_key, "add_photo",
                          {"unit_id": unit_id, "sha256": processed.sha256}, work)
