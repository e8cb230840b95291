"""A kit inspected with a component missing is flagged on its unit and its return, in words, without
holding the refund (the deduction covers it); a re-inspection replaces the flag, a retry writes it
once (issue 18, item 4)."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from app.anomalies.models import AnomalyFlag
from app.catalog.models import Product, ProductComponent
from app.disposition.services import confirm_disposition
from app.inspection.services import record_inspection
from app.ledger.models import AuditEntry, ReturnUnit
from app.refunds.services import RefundPolicy
from tests.helpers import new_key, receive_unit, refund_of


def camera_kit(session, world) -> Product:  # type: ignore[no-untyped-def]
    """A 500.00 camera kit: a body (a product of 350.00), a charger (a product of 50.00: 10%) and a
    lens cap by name with a set 5%."""
    body = Product(sku="CAM-BODY", name="Camera body", category="electronics", unit_value=Decimal("350.00"))
    charger = Product(sku="CAM-CHG", name="Charger", category="electronics", unit_value=Decimal("50.00"))
    kit = Product(sku="CAM-KIT-1", name="Camera kit", category="electronics", unit_value=Decimal("500.00"),
                  merchant_id=world.merchant.id)
    session.add_all([body, charger, kit])
    session.flush()
    session.add_all([
        ProductComponent(kit_product_id=kit.id, position=1, component_product_id=body.id, name=body.name, quantity=1),
        ProductComponent(kit_product_id=kit.id, position=2, component_product_id=charger.id, name=charger.name, quantity=1),
        ProductComponent(kit_product_id=kit.id, position=3, name="Lens cap", quantity=1, deduction_pct=Decimal("0.05")),
    ])
    session.commit()
    world.products["kit"] = kit
    return kit


def kit_unit(session, world) -> int:  # type: ignore[no-untyped-def]
    """A kit received on the world's return RMA-5001, with its refund trigger."""
    camera_kit(session, world)
    unit = receive_unit(session, world, "kit", world.actor("worker"))
    unit.rma_id = world.rma.id
    session.commit()
    return unit.id


def inspect(session, world, unit_id: int, key: str | None = None, **answers: bool):  # type: ignore[no-untyped-def]
    return record_inspection(session, world.actor("worker"), unit_id=unit_id, grade="B", packaging="opened",
                             answers=answers, notes=None, idempotency_key=key or new_key())


def flags(session, unit_id: int) -> list[AnomalyFlag]:  # type: ignore[no-untyped-def]
    session.rollback()
    session.expire_all()
    return list(session.scalars(select(AnomalyFlag).where(AnomalyFlag.unit_id == unit_id).order_by(AnomalyFlag.id)))


def test_a_missing_component_is_flagged_on_the_return_in_words_and_a_retry_writes_it_once(session, world):
    unit_id = kit_unit(session, world)
    key = new_key()
    first = inspect(session, world, unit_id, key, part_1=True, part_2=False, part_3=True)
    again = inspect(session, world, unit_id, key, part_1=True, part_2=False, part_3=True)  # the same key: a retry
    assert again.replayed and again.inspection_id == first.inspection_id and first.grading["missing"] == ["Charger"]
    [flag] = flags(session, unit_id)
    assert (flag.kind, flag.unit_id, flag.rma_id, flag.holds, flag.cleared_at) == \
        ("missing_component", unit_id, world.rma.id, False, None)
    assert flag.explanation == "Charger missing from kit CAM-KIT-1 (10% off the refund)"
    assert flag.details["missing"] == [{"component": "Charger", "pct": "0.1000"}]
    audits = session.scalar(select(func.count()).select_from(AuditEntry)
                            .where(AuditEntry.action == "anomaly.flagged", AuditEntry.entity_id == unit_id))
    assert audits == 1
    # it holds nothing: the deduction already covers it, so the refund is not held for a fraud flag
    confirm_disposition(session, world.actor("super"), unit_id=unit_id, idempotency_key=new_key(),
                        policy=RefundPolicy(Decimal("10000.00")))
    session.expire_all()
    assert not any("fraud" in reason for reason in refund_of(session, unit_id).hold_reasons)


def test_a_reinspection_replaces_the_flag_and_a_whole_kit_clears_it(session, world):
    unit_id = kit_unit(session, world)
    inspect(session, world, unit_id, part_1=True, part_2=False, part_3=True)
    inspect(session, world, unit_id, part_1=True, part_2=False, part_3=False)  # the lens cap is missing too
    first, second = flags(session, unit_id)
    assert first.cleared_at is not None and first.cleared_by_id == world.users["worker"].id
    assert second.cleared_at is None
    assert second.explanation == "Charger and Lens cap missing from kit CAM-KIT-1 (15% off the refund)"
    inspect(session, world, unit_id, part_1=True, part_2=True, part_3=True)  # found after all: nothing open
    assert [f.cleared_at is None for f in flags(session, unit_id)] == [False, False]
    assert session.get(ReturnUnit, unit_id).grading is None


def test_a_whole_kit_and_a_plain_product_are_not_flagged(session, world):
    unit_id = kit_unit(session, world)
    inspect(session, world, unit_id, part_1=True, part_2=True, part_3=True)
    shirt = receive_unit(session, world, "shirt", world.actor("worker"))
    inspect(session, world, shirt.id)
    assert flags(session, unit_id) == [] and flags(session, shirt.id) == []
