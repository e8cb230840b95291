"""A parcel that comes empty or damaged in transit, reported from the handheld with photos of the
box; exceptions with owners and due times (issue 18)."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.db import as_utc
from app.errors import Conflict, NotFound, NotPermitted, StaleVersion, ValidationFailed
from app.exceptions.models import ReturnException
from app.exceptions.services import assign_exception
from app.inspection.models import Photo
from app.inspection.storage import FolderStore
from app.ledger.models import AuditEntry, OutboxEvent
from app.receiving.services import close_parcel, open_parcel, report_box_problem
from tests.helpers import counts, new_key


def photo(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), colour).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def parcel(session, world) -> int:  # type: ignore[no-untyped-def]
    return open_parcel(session, world.actor("worker"), code=world.tracking.tracking_number, warehouse_id=world.wh.id,
                       idempotency_key=new_key()).parcel_id


def report(session, world, parcel_id, store, *, who="worker", problem="empty_box", shots=None, key=None):  # type: ignore[no-untyped-def]
    return report_box_problem(session, world.actor(who), parcel_id=parcel_id, problem=problem, note="  tape cut,  resealed ",
                              photos=[photo((200, 30, 30)), photo((30, 200, 30))] if shots is None else shots,
                              store=store, max_bytes=10**7, idempotency_key=key or new_key())


def test_an_empty_box_is_reported_with_its_photos_due_in_a_day_and_once(session, world, parcel, tmp_path):
    store = FolderStore(tmp_path)
    k = new_key()
    done = report(session, world, parcel, store, key=k)
    again = report(session, world, parcel, store, key=k)  # the answer was lost; the handheld sends it again
    assert again.replayed and again.exception_id == done.exception_id and done.photos == 2
    session.rollback()
    exc = session.get(ReturnException, done.exception_id)
    assert (exc.type, exc.status, exc.parcel_id, exc.rma_id) == ("empty_box", "open", parcel, world.rma.id)
    assert exc.details["note"] == "tape cut, resealed" and exc.owner_id is None
    assert as_utc(exc.due_at) - as_utc(exc.opened_at) == timedelta(hours=24)
    shots = session.scalars(select(Photo).where(Photo.exception_id == exc.id)).all()
    assert len(shots) == 2 and all(p.unit_id is None and store.exists(p.storage_key) for p in shots)
    assert session.scalar(select(func.count()).select_from(ReturnException).where(ReturnException.type == "empty_box")) == 1
    assert session.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == "exception.opened",
                                                                                OutboxEvent.aggregate_id == exc.id)) == 1


@pytest.mark.parametrize("problem, shots, refused", [
    ("lost", None, ValidationFailed),  # not a box problem
    ("damaged_in_transit", [], ValidationFailed),  # no photo of the box
    ("damaged_in_transit", [b"not a picture"], ValidationFailed),
    ("damaged_in_transit", [photo((1, 2, 3))] * 5, ValidationFailed),  # more than four at once
])
def test_a_bad_report_is_refused_and_writes_nothing(session, world, parcel, tmp_path, problem, shots, refused):
    before = counts(session)
    with pytest.raises(refused):
        report(session, world, parcel, FolderStore(tmp_path), problem=problem, shots=shots)
    assert counts(session) == before and session.scalar(select(func.count()).select_from(Photo)) == 0
    assert list(tmp_path.rglob("*.jpg")) == []


def test_a_closed_parcel_or_one_out_of_scope_takes_no_report(session, world, parcel, tmp_path):
    store = FolderStore(tmp_path)
    with pytest.raises(NotFound):  # another organisation's partner does not learn the parcel exists
        report(session, world, parcel, store, who="outsider")
    with pytest.raises(NotPermitted):
        report(session, world, parcel, store, who="admin")
    close_parcel(session, world.actor("worker"), parcel_id=parcel, idempotency_key=new_key())
    before = counts(session)
    with pytest.raises(Conflict):
        report(session, world, parcel, store, problem="damaged_in_transit")
    assert counts(session) == before and list(tmp_path.rglob("*.jpg")) == []


def test_a_supervisor_takes_gives_and_frees_an_exception_once_each(session, world, parcel, tmp_path):
    exc_id = report(session, world, parcel, FolderStore(tmp_path)).exception_id
    sup, admin = world.actor("super"), world.users["super2"]
    k = new_key()
    taken = assign_exception(session, sup, exception_id=exc_id, owner_id=sup.id, idempotency_key=k, expected_version=1)
    again = assign_exception(session, sup, exception_id=exc_id, owner_id=sup.id, idempotency_key=k, expected_version=1)
    assert again.replayed and (taken.owner_id, taken.version) == (sup.id, 2)
    with pytest.raises(StaleVersion):  # the page was from before the take
        assign_exception(session, sup, exception_id=exc_id, owner_id=admin.id, idempotency_key=new_key(), expected_version=1)
    given = assign_exception(session, sup, exception_id=exc_id, owner_id=admin.id, idempotency_key=new_key(), expected_version=2)
    assert given.owner == admin.name
    freed = assign_exception(session, sup, exception_id=exc_id, owner_id=None, idempotency_key=new_key())
    assert freed.owner_id is None
    session.rollback()
    audits = session.scalars(select(AuditEntry.details).where(AuditEntry.action == "exception.assigned",
                                                              AuditEntry.entity_id == exc_id).order_by(AuditEntry.id)).all()
    assert [(a["before"]["owner_id"], a["after"]["owner_id"]) for a in audits] == [
        (None, sup.id), (sup.id, admin.id), (admin.id, None)]


def test_only_supervisors_assign_and_only_to_supervisors(session, world, parcel, tmp_path):
    exc_id = report(session, world, parcel, FolderStore(tmp_path)).exception_id
    before = counts(session)
    with pytest.raises(NotPermitted):
        assign_exception(session, world.actor("worker"), exception_id=exc_id, owner_id=world.users["worker"].id,
                         idempotency_key=new_key())
    with pytest.raises(ValidationFailed):  # a worker cannot own an exception: they may not resolve it
        assign_exception(session, world.actor("super"), exception_id=exc_id, owner_id=world.users["worker"].id,
                         idempotency_key=new_key())
    with pytest.raises(ValidationFailed):
        assign_exception(session, world.actor("super"), exception_id=exc_id, owner_id=10**9, idempotency_key=new_key())
    assert counts(session) == before
