"""Inspection use cases: record the checklist, grade and packaging; attach photos."""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from functools import lru_cache

from sqlalchemy import Select, bindparam, case, null, select, text
from sqlalchemy.orm import Session

from app.anomalies.domain import MISSING_COMPONENT, missing_component
from app.anomalies.queries import open_unit_flag_ids
from app.anomalies.writer import clear_rows, flag_rows
from app.auth.roles import Actor
from app.ledger.queries import ensure_unit_visible
from app.catalog.models import Product
from app.db import unit_of_work
from app.rows import allocate_ids, expire, insert_row, next_id, write
from app.errors import Conflict, NotFound, NotPermitted, Unavailable, ValidationFailed
from app.inspection.models import Inspection, Photo
from app.inspection import grading
from app.inspection.queries import current_checklist_columns, current_rules_column, is_kit_column, kit_components
from app.ledger.domain import GRADES, PACKAGING_STATES
from app.inspection.photos import PhotoRejected, ProcessedPhoto, process_photo
from app.inspection.storage import PhotoStorage, StorageUnavailable
from app.ledger.idempotency import LateClaim, Result, run_idempotent
from app.ledger.models import ReturnUnit
from app.ledger.services import lock_unit
from app.ledger.writer import audit_row
from app.inspection.writer import photo_row, record_inspection as inspection_rows
from app.words import N_

log = logging.getLogger(__name__)


def form_answers(form: Mapping[str, str]) -> dict[str, bool]:
    """A checklist form's answers: `q_<key>` = "yes" is True, anything else False. Items the form
    left unanswered are not in it: pass unanswered_is_no to the use case that keeps them."""
    return {name[2:]: value == "yes" for name, value in form.items() if name.startswith("q_")}


def clean_grade(grade: str | None, packaging: str | None, *, grade_optional: bool = False) -> tuple[str, str]:
    """A condition grade and packaging state from a form, or a clear refusal; with `grade_optional`
    (the checklist's answers may set it) no grade is "" until the use case knows."""
    grade = (grade or "").strip().upper()
    packaging = (packaging or "").strip().lower()
    if grade not in GRADES and not (grade_optional and grade == ""):
        raise ValidationFailed(N_("Pick a condition grade (A, B, C or D)."))
    if packaging not in PACKAGING_STATES:
        raise ValidationFailed(N_("Pick the packaging state."))
    return grade, packaging


def guided(items: list[dict[str, Any]], rules: list[dict[str, Any]] | None, components: list[grading.Component],
           answers: Mapping[str, Any], *, unanswered_is_no: bool) -> tuple[dict[str, bool], grading.Grading]:
    """The answers kept to a checklist and a kit's components, and what they set (the grading
    rules'): skipped items' answers are not kept."""
    every = [*items, *grading.component_items(components)]
    kept = kept_answers(every, answers, unanswered_is_no=unanswered_is_no)
    set_ = grading.evaluate(items, rules, kept, components)
    return {k: v for k, v in kept.items() if k not in set_.skipped}, set_


def kept_answers(items: list[dict[str, Any]], answers: Mapping[str, Any] | None, *, unanswered_is_no: bool) -> dict[str, bool]:
    """The answers kept to a checklist's items; with `unanswered_is_no` (a submitted form, whose
    unanswered radio sends nothing) every item is answered, an unanswered one with no."""
    answers = answers or {}
    if unanswered_is_no:
        return {item["key"]: bool(answers.get(item["key"], False)) for item in items}
    known = {item["key"] for item in items}
    return {k: bool(v) for k, v in answers.items() if k in known}


@lru_cache(maxsize=2)
def _inspect_lock_statement(dialect: str) -> Select:
    """record_inspection's first statement: the unit's row lock, with its category's current checklist
    and its version (NULL: none), its key's record (LateClaim) and, for a fresh key, the new inspection's id."""
    u, p = ReturnUnit.__table__, Product.__table__
    return (select(u.c.id, u.c.lpn, u.c.state, u.c.warehouse_id, u.c.version, u.c.product_id, u.c.rma_id, p.c.sku,
                   p.c.category,
                   *current_checklist_columns(p.c.category), current_rules_column(p.c.category), is_kit_column(p.c.id),
                   *LateClaim.record_columns(),
                   case((LateClaim.fresh(), next_id(dialect, Inspection.__table__)), else_=null()).label("inspection_id"))
            .join_from(u, p, p.c.id == u.c.product_id).where(u.c.id == bindparam("unit_id")).with_for_update(of=u))


@dataclass(frozen=True)
class InspectionRecorded(Result):
    """record_inspection's answer: the inspection, as kept (the answers to the unit's checklist), and
    the unit's version after it."""

    unit_id: int
    inspection_id: int
    grade: str
    packaging: str
    answers: dict[str, bool]
    notes: str | None
    version: int
    grading: dict[str, Any] | None = None  # what the answers set (grading.Grading.as_json)


@dataclass(frozen=True)
class PhotoAdded(Result):
    """add_photo's answer: the photo, and whether the unit had that picture already (`duplicate`)."""

    photo_id: int
    unit_id: int
    duplicate: bool


def record_inspection(session: Session, actor: Actor, *, unit_id: int, grade: str, packaging: str,
                      answers: Mapping[str, Any], notes: str | None, idempotency_key: str | None,
                      unanswered_is_no: bool = False) -> InspectionRecorded:
    """Use case: the inspector's answers, grade and packaging state; the unit stays `received` until disposed.

    Two statements, like the scan: the unit's lock with its checklist and its key's record, then the
    inspection, the unit's grade, the audit entry and the key's record in one write. The record is
    read in the lock's own statement, whose snapshot is taken before any wait for the lock: a
    same-key attempt that waited misses the winner's record, writes, fails on the record's key and
    is replayed by run_idempotent (tests/integration/disposition/test_inspect_and_confirm.py). Nothing the
    inspection checks changes under it (a second inspection is allowed), so that costs only the
    loser's round trips; confirm, whose checks would refuse the loser first, reads the record in a
    statement after the lock. `unanswered_is_no`: the answers
    come from the handheld's form, where an item left unanswered is recorded as a no.

    The category's grading rules (saved with its checklist) and, for a kit, one check a component
    apply to the answers (app/inspection/grading.py): a grade they set replaces the one picked (none
    need be picked), skipped items are not kept, and what they set is kept on the unit for the
    disposition (its explanation and refund). A kit's components cost a third statement, and a
    fourth: the unit's open `missing_component` flag, which the inspection replaces (app.anomalies:
    the components it found missing, else none)."""
    if not actor.can("inspect"):
        raise NotPermitted(N_("You may not inspect units."))
    grade, packaging = clean_grade(grade, packaging, grade_optional=True)
    notes = (notes or "").strip() or None
    if notes and len(notes) > 2000:
        raise ValidationFailed(N_("Keep the notes under 2000 characters."))

    def work(claim: LateClaim[InspectionRecorded]) -> InspectionRecorded:
        dialect = session.get_bind().dialect.name
        rows = session.execute(_inspect_lock_statement(dialect), {**claim.params, "unit_id": unit_id}).all()
        if not rows:
            raise NotFound(N_("No such unit."))
        unit = rows[0]
        if (replay := claim.replayed(unit)) is not None:
            return replay
        ensure_unit_visible(session, actor, unit)
        if unit.state != "received":
            raise Conflict(N_("Unit %(lpn)s was already disposed (%(state)s): a supervisor re-grades it from the desk, "
                              "with a reason."),
                           lpn=unit.lpn, state=unit.state.replace('_', ' '))
        components = kit_components(session, unit.product_id) if unit.is_kit else []
        clean, set_ = guided(unit.checklist or [], unit.checklist_rules, components, answers, unanswered_is_no=unanswered_is_no)
        graded = set_.grade or grade
        if not graded:
            raise ValidationFailed(N_("Pick a condition grade (A, B, C or D)."))
        kept = set_.as_json()
        result = InspectionRecorded(unit.id, unit.inspection_id, graded, packaging, clean, notes, unit.version + 1, kept)
        write(session, [*inspection_rows(actor, unit, unit.inspection_id, grade=graded, packaging=packaging,
                                         answers=clean, notes=notes, checklist_version=unit.checklist_version, grading=kept),
                        *(_missing_component_rows(session, actor, unit, components, set_) if components else ()),
                        claim.record(result)])
        expire(session, (ReturnUnit, unit.id))
        return result

    params = {"unit_id": unit_id, "grade": grade, "packaging": packaging, "answers": dict(answers or {}), "notes": notes}
    return run_idempotent(session, actor, idempotency_key, "record_inspection", params, work,
                          result_type=InspectionRecorded, late_claim=True)


def _missing_component_rows(session: Session, actor: Actor, unit: Any, components: Sequence[grading.Component],
                            set_: grading.Grading) -> list[Any]:
    """The rows that flag a kit's missing components on the unit and its return, replacing the
    unit's open `missing_component` flag (a re-inspection flags what it found, once)."""
    pct = {c.label: c.pct for c in components}
    flag = missing_component(unit.sku, [(label, pct[label]) for label in set_.missing if label in pct])
    return [*clear_rows(actor, open_unit_flag_ids(session, unit.id, MISSING_COMPONENT)),
            *flag_rows(actor, [flag] if flag else [], unit_id=unit.id, rma_id=unit.rma_id, warehouse_id=unit.warehouse_id)]


def add_photo(session: Session, actor: Actor, *, unit_id: int, data: bytes, store: PhotoStorage,
              max_bytes: int, idempotency_key: str | None) -> PhotoAdded:
    """Use case: attach a photo. Decoded, re-encoded without EXIF, thumbnailed and stored outside
    the database (content-addressed: the same picture twice is one file); a unit's same picture
    twice is one photo.

    The file and its row stand or fall together. The file is stored inside the transaction, under
    a lock on its key (so no other upload of the same picture decides meanwhile whether it exists);
    storage out of reach refuses the photo (503) before any row is written. When the transaction
    fails after this upload created the file, the file is deleted again unless a row refers to it."""
    if not actor.can("inspect"):
        raise NotPermitted(N_("You may not add photos."))
    try:
        processed = process_photo(data, max_bytes=max_bytes)
    except PhotoRejected as exc:
        raise ValidationFailed(exc.message) from exc
    key = store.key_for(processed.sha256)
    created: list[str] = []

    def work() -> PhotoAdded:
        unit = lock_unit(session, unit_id)
        ensure_unit_visible(session, actor, unit)
        existing = session.scalars(select(Photo.id).where(Photo.unit_id == unit.id, Photo.sha256 == processed.sha256)).first()
        if existing is not None:
            return PhotoAdded(existing, unit.id, duplicate=True)
        keep_photo_files(session, store, [processed], created)
        (photo_id,) = allocate_ids(session, Photo, 1)
        write(session, [
            photo_row(actor, photo_id, processed, key, unit_id=unit.id),
            audit_row(actor, "unit.photo_added", "unit", unit.id, warehouse_id=unit.warehouse_id,
                      details={"photo_id": photo_id, "sha256": processed.sha256})])
        return PhotoAdded(photo_id, unit.id, duplicate=False)

    try:
        return run_idempotent(session, actor, idempotency_key, "add_photo",
                              {"unit_id": unit_id, "sha256": processed.sha256}, work, result_type=PhotoAdded)
    except BaseException:
        discard_photo_files(session, store, created)
        raise


def processed_photos(photos: Sequence[bytes], *, max_bytes: int) -> list[ProcessedPhoto]:
    """The photos of one upload decoded and re-encoded, the same picture once; refused whole (a
    ValidationFailed) when there are none, more than MAX_PHOTOS_PER_UPLOAD, or one is not a photo."""
    if not photos:
        raise ValidationFailed(N_("Take or choose a photo first."))
    if len(photos) > MAX_PHOTOS_PER_UPLOAD:
        raise ValidationFailed(N_("Send at most %(max_photos_per_upload)s photos at once. Nothing was added."),
                               max_photos_per_upload=MAX_PHOTOS_PER_UPLOAD)
    try:
        done = [process_photo(data, max_bytes=max_bytes) for data in photos]
    except PhotoRejected as exc:
        raise ValidationFailed(exc.message) from exc
    return list({p.sha256: p for p in done}.values())


def keep_photo_files(session: Session, store: PhotoStorage, photos: Sequence[ProcessedPhoto], created: list[str]) -> None:
    """Inside a use case's transaction: store each photo's file (content-addressed: a picture kept
    before is not stored again) under a lock on its key, noting in `created` the keys this call
    stored, for discard_photo_files when the transaction fails. Storage out of reach: Unavailable."""
    for processed in photos:
        key = store.key_for(processed.sha256)
        _lock_photo_key(session, key)
        try:
            if not store.exists(key):
                created.append(key)
                store.save(processed)
        except (StorageUnavailable, OSError) as exc:
            raise Unavailable(PHOTO_STORAGE_DOWN) from exc


def discard_photo_files(session: Session, store: PhotoStorage, keys: Sequence[str]) -> None:
    """After a failed upload: the files it stored that no committed row refers to, deleted."""
    for key in keys:
        _discard_unreferenced(session, store, key)


def sweep_photo_files(session: Session, store: PhotoStorage, *, older_than_seconds: float = 3600) -> list[str]:
    """Use case (a timer's): delete photo files that no photo row refers to, left by uploads whose
    transaction failed while the storage could not be reached to take the file back. Only files
    older than `older_than_seconds`, so an upload under way keeps its file. The keys are checked a
    thousand at a time (photos.storage_key is indexed); only a key with no row is locked, checked
    again and deleted. Returns the keys deleted."""
    deleted = []
    keys = list(store.keys_older_than(older_than_seconds))
    for start in range(0, len(keys), SWEEP_BATCH):
        batch = keys[start:start + SWEEP_BATCH]
        with unit_of_work(session):
            kept = set(session.scalars(select(Photo.storage_key).where(Photo.storage_key.in_(batch))))
        for key in (k for k in batch if k not in kept):
            with unit_of_work(session):
                _lock_photo_key(session, key)
                if session.scalars(select(Photo.id).where(Photo.storage_key == key).limit(1)).first() is None:
                    store.delete(key)
                    deleted.append(key)
    return deleted


SWEEP_BATCH = 1000
PHOTO_STORAGE_DOWN = ("Photo storage cannot be reached just now, so the photo was not saved. It is sent again "
                      "by itself; if it keeps failing, take it again in a few minutes.")


def _lock_photo_key(session: Session, key: str) -> None:
    """Hold the photo file's key until the transaction ends (PostgreSQL: an advisory lock; SQLite
    serialises writing transactions already)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": "photo:" + key})


def _discard_unreferenced(session: Session, store: PhotoStorage, key: str) -> None:
    """After a failed upload: delete the file it created, unless a committed row refers to it
    (another upload of the same picture, under the same lock). Best effort: when the database or
    the storage cannot be reached, the file stays and the log says which."""
    try:
        with unit_of_work(session):
            _lock_photo_key(session, key)
            if session.scalars(select(Photo.id).where(Photo.storage_key == key).limit(1)).first() is None:
                store.delete(key)
    except Exception:  # noqa: BLE001 - the upload's own error is the one to report
        log.warning("photo file %s was stored but its upload failed; it could not be removed", key, exc_info=True)


MAX_PHOTOS_PER_UPLOAD = 4  # with each photo's decoding bounded, one request costs at most four photos' work


def add_photos(session: Session, actor: Actor, *, unit_id: int, photos: Sequence[bytes], store: PhotoStorage,
               max_bytes: int, idempotency_key: str | None) -> list[PhotoAdded]:
    """Use case: attach the photos of one upload, each under its own key (`<key>-<n>`), so that a
    retried upload adds none twice. Refused whole, before any is decoded, when there are none or
    more than MAX_PHOTOS_PER_UPLOAD."""
    if not photos:
        raise ValidationFailed(N_("Take or choose a photo first."))
    if len(photos) > MAX_PHOTOS_PER_UPLOAD:
        raise ValidationFailed(N_("Send at most %(max_photos_per_upload)s photos at once. Nothing was added."),
                               max_photos_per_upload=MAX_PHOTOS_PER_UPLOAD)
    base_key = (idempotency_key or "")[:80]
    if not base_key:
        raise ValidationFailed(N_("This upload needs its request key. Reload the page and try again."))
    return [add_photo(session, actor, unit_id=unit_id, data=data, store=store, max_bytes=max_bytes,
                      idempotency_key=f"{base_key}-{i}") for i, data in enumerate(photos)]
