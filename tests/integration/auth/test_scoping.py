"""A partner sees only its own warehouses and the merchants it serves; staff see everything."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.exceptions.queries import load_exception, scope_exceptions
from app.inspection.queries import load_photo, scope_photos
from app.ledger.queries import load_unit, scope_units
from app.orders.queries import load_rma, scope_rmas
from app.receiving.queries import load_parcel, scope_parcels
from app.catalog.models import Location, Warehouse
from app.errors import NotFound
from app.exceptions.models import ReturnException
from app.inspection.models import Photo
from app.ledger.models import ReturnUnit
from app.ledger.services import transition_unit
from app.orders.models import Rma
from app.receiving.models import Parcel
from tests.helpers import counts, new_key, receive_unit

KINDS = {
    "unit": (ReturnUnit, scope_units, load_unit),
    "rma": (Rma, scope_rmas, load_rma),
    "exception": (ReturnException, scope_exceptions, load_exception),
    "parcel": (Parcel, scope_parcels, load_parcel),
    "photo": (Photo, scope_photos, load_photo),
}


@pytest.fixture
def scene(session, world):  # type: ignore[no-untyped-def]
    """One of each kind of record per (warehouse, merchant) cell, named by who should see it."""
    # The other org serves both merchants and runs its own warehouse: serving a merchant is not enough.
    world.other_org.merchants.extend([world.merchant, world.other_merchant])
    wh_other = Warehouse(code="3PL2", name="Other 3PL Sparks", partner_org_id=world.other_org.id)
    session.add(wh_other)
    session.flush()
    session.add(Location(warehouse_id=wh_other.id, code="DOCK-01", type="dock", barcode="LOC:3PL2-DOCK-01"))
    session.commit()
    world.locations[("3PL2", "dock")] = session.scalars(select(Location).where(Location.warehouse_id == wh_other.id)).one()

    cells = {
        # name: (warehouse, merchant or None, visible to partner, visible to outsider)
        "own_wh_served": (world.wh3pl, world.merchant, True, False),
        "own_wh_blind": (world.wh3pl, None, True, False),
        "own_wh_unserved": (world.wh3pl, world.other_merchant, False, False),
        "main_wh_served": (world.wh, world.merchant, False, False),
        "main_wh_blind": (world.wh, None, False, False),
        "other_org_wh": (wh_other, world.merchant, False, True),
    }
    made: dict[str, dict[str, int]] = {k: {} for k in KINDS}
    sup = world.actor("super")
    for i, (name, (wh, merchant, _p, _o)) in enumerate(cells.items()):
        unit = receive_unit(session, world, "shirt", sup, warehouse=wh, merchant=merchant)
        made["unit"][name] = unit.id
        photo = Photo(unit_id=unit.id, storage_key=f"p/{i}.jpg", sha256=f"{i:064d}", width=10, height=10)
        exc = ReturnException(type="unidentified_parcel" if merchant is None else "wrong_item", warehouse_id=wh.id,
                              merchant_id=merchant.id if merchant else None, unit_id=unit.id)
        rma = None
        if merchant is not None:
            rma = Rma(number=f"RMA-S{i}", merchant_id=merchant.id, channel_id=world.channel.id, warehouse_id=wh.id)
            session.add(rma)
            session.flush()
        # A parcel opened against a return carries its merchant; a blind one does not (yet).
        parcel = Parcel(warehouse_id=wh.id, scanned_code=f"SCAN-{i}", rma_id=rma.id if rma else None)
        session.add_all([photo, exc, parcel])
        session.commit()
        made["photo"][name], made["exception"][name], made["parcel"][name] = photo.id, exc.id, parcel.id
        if merchant is not None:
            made["rma"][name] = rma.id
    made["rma"]["world_rma"] = world.rma.id  # RMA-5001 at the main warehouse
    visible = {
        "partner": {n for n, c in cells.items() if c[2]},
        "outsider": {n for n, c in cells.items() if c[3]},
    }
    return made, visible


def _seen(session, actor, kind):  # type: ignore[no-untyped-def]
    model, scope, _load = KINDS[kind]
    ids = set(session.scalars(scope(select(model.id), actor)))
    session.rollback()
    return ids


def _expected_ids(made, kind, names):  # type: ignore[no-untyped-def]
    wanted = set(names)
    return {i for n, i in made[kind].items() if n in wanted}


@pytest.mark.parametrize("who", ["partner", "outsider"])
def test_partner_sees_only_own_warehouses_and_merchants(session, world, scene, who):
    made, visible = scene
    actor = world.actor(who)
    for kind, (_model, _scope, load) in KINDS.items():
        expected = _expected_ids(made, kind, visible[who])
        assert _seen(session, actor, kind) == expected, kind
        for name, obj_id in made[kind].items():
            if obj_id in expected:
                assert load(session, actor, obj_id).id == obj_id
            else:
                with pytest.raises(NotFound):
                    load(session, actor, obj_id)
            session.rollback()
    if who == "partner":  # the partner does see something: the filter is not simply "nothing"
        assert _seen(session, actor, "unit") and _seen(session, actor, "rma")


def test_staff_see_everything(session, world, scene):
    made, _visible = scene
    for who in ("worker", "super", "admin"):
        for kind in KINDS:
            all_ids = set(session.scalars(select(KINDS[kind][0].id)))
            assert _seen(session, world.actor(who), kind) == all_ids, (who, kind)
            assert set(made[kind].values()) <= all_ids


def test_partner_with_no_org_sees_nothing(session, world, scene):
    from dataclasses import replace

    orphan = replace(world.actor("partner"), partner_org_id=None)
    for kind in KINDS:
        assert _seen(session, orphan, kind) == set()


def test_partner_cannot_move_out_of_scope_units(session, world, scene):
    made, visible = scene
    partner = world.actor("partner")
    for name, unit_id in made["unit"].items():
        if name in visible["partner"]:
            continue
        before = counts(session)
        with pytest.raises(NotFound, match="No such unit"):
            transition_unit(session, partner, unit_id=unit_id, to_state="available", reason="grab",
                            idempotency_key=new_key())
        assert counts(session) == before, name
        assert session.get(ReturnUnit, unit_id).state == "received"
        session.rollback()
    # In scope: the same call works.
    res = transition_unit(session, partner, unit_id=made["unit"]["own_wh_blind"], to_state="available", reason="ok",
                          idempotency_key=new_key())
    assert res.state == "available"
