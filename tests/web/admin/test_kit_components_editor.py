"""The console's kit components editor (issue 18, item 4): admins only; the components replace the
old ones whole, audited with before and after, once however often the form is sent; every problem
of bad input named at once, nothing changed, never a 500; the handheld's inspection checks each."""
from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.catalog.models import Product, ProductComponent
from app.inspection.queries import kit_components
from app.ledger.models import AuditEntry, IdempotencyRecord
from tests.conftest import login

HX = {"HX-Request": "true"}
TEXT = "CAM-BODY | 1\nCAM-CHG | 1 | 10%\nLens cap | 2"


def key() -> str:
    return uuid.uuid4().hex


def counts(session) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
    session.rollback()
    return tuple(session.scalar(select(func.count()).select_from(m)) for m in (ProductComponent, AuditEntry, IdempotencyRecord))


@pytest.fixture
def kit(session, world) -> Product:  # type: ignore[no-untyped-def]
    """A 500.00 camera kit with no components yet, and its parts in the catalog: a body of 350.00, a charger."""
    session.add_all([Product(sku="CAM-BODY", name="Camera body", category="electronics", unit_value=Decimal("350.00")),
                     Product(sku="CAM-CHG", name="Charger", category="electronics", unit_value=Decimal("50.00"))])
    product = Product(sku="CAM-KIT-1", name="Camera kit", category="electronics", unit_value=Decimal("500.00"))
    session.add(product)
    session.commit()
    return product


def rows(session, product_id: int) -> list[tuple]:  # type: ignore[no-untyped-def]
    session.rollback()
    part = Product.__table__.alias("part")
    return [tuple(r) for r in session.execute(
        select(ProductComponent.position, ProductComponent.name, part.c.sku, ProductComponent.quantity,
               ProductComponent.deduction_pct).outerjoin(part, part.c.id == ProductComponent.component_product_id)
        .where(ProductComponent.kit_product_id == product_id).order_by(ProductComponent.position)).all()]


def save(client, product_id: int, text: str, k: str | None = None):  # type: ignore[no-untyped-def]
    return client.post(f"/admin/products/{product_id}/components", headers=HX, data={"key": k or key(), "components": text})


def test_an_admin_makes_a_kit_and_the_inspection_checks_each_component(client, world, session, kit):
    login(client, "admin")
    listing = client.get("/admin/products?q=cam-kit").get_data(as_text=True)
    assert "CAM-KIT-1" in listing and "CAM-BODY" not in listing and f"/admin/products/{kit.id}" in listing
    k = key()
    saved = save(client, kit.id, TEXT, k)
    body = saved.get_data(as_text=True)
    assert saved.status_code == 200 and "CAM-KIT-1 has 3 components" in body, body[:500]
    before = counts(session)
    again = save(client, kit.id, TEXT, k)  # the same form sent twice: one effect
    assert again.status_code == 200 and "already done" in again.get_data(as_text=True) and counts(session) == before
    assert rows(session, kit.id) == [(1, "Camera body", "CAM-BODY", 1, None), (2, "Charger", "CAM-CHG", 1, Decimal("0.1000")),
                                     (3, "Lens cap", None, 2, None)]
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "product.components_saved")).one()
    assert (audit.entity_type, audit.entity_id, audit.details["before"], audit.details["after"]) == \
        ("product", kit.id, None, {"sku": "CAM-KIT-1", "name": "Camera kit",
                                   "components": "CAM-BODY | 1\nCAM-CHG | 1 | 10%\nLens cap | 2"})
    log = client.get("/admin/audit?kind=product").get_data(as_text=True)  # the admin audit log shows it
    assert "product components saved · <strong>Camera kit</strong>" in log and "components: CAM-BODY | 1" in log
    # the page shows the text back and what a missing one deducts: its value's share, its own, the default
    page = client.get(f"/admin/products/{kit.id}").get_data(as_text=True)
    assert "CAM-BODY | 1\nCAM-CHG | 1 | 10%\nLens cap | 2</textarea>" in page
    assert "70%" in page and "10%" in page
    assert [(c.label, c.pct) for c in kit_components(session, kit.id)] == [
        ("Camera body", Decimal("0.7000")), ("Charger", Decimal("0.1000")), ("Lens cap × 2", Decimal("0.10"))]
    assert "kit" in client.get("/admin/products?kits=1").get_data(as_text=True)
    # replaced whole, audited before and after; then emptied: a plain product again
    assert save(client, kit.id, "CAM-BODY\nStrap | 1 | 5%").status_code == 200
    assert rows(session, kit.id) == [(1, "Camera body", "CAM-BODY", 1, None), (2, "Strap", None, 1, Decimal("0.0500"))]
    emptied = save(client, kit.id, "")
    assert emptied.status_code == 200 and "no components now" in emptied.get_data(as_text=True)
    assert rows(session, kit.id) == []
    last = session.scalars(select(AuditEntry).where(AuditEntry.action == "product.components_saved")
                           .order_by(AuditEntry.id.desc())).first()
    assert (last.details["before"]["components"], last.details["after"]["components"]) == ("CAM-BODY | 1\nStrap | 1 | 5%", "")


@pytest.mark.parametrize("text, says", [
    ("Charger | 0", ["Line 1: a quantity is a whole number from 1 to 999."]),
    ("Charger | two\nStrap | 1 | 150%", ["Line 1: a quantity", "Line 2: a deduction is a percentage above 0 and at most 100"]),
    ("Charger\n\ncharger | 2", ["Line 3: charger is on line 1 already"]),
    ("a | 1 | 2 | 3", ["Line 1: write it as SKU or name | quantity | deduction"]),
    ("A | 1 | 60%\nB | 1 | 50%", ["The deductions set add up to 110%"]),
    ("CAM-KIT-1 | 1\nx" * 1 + "\n" + "y" * 300, ["Line 1: a kit is not a component of itself.", "Line 3: a SKU or name is 1-200"]),
    ("\n".join(f"part {i}" for i in range(31)), ["A kit has at most 30 components."]),
    ("z" * 20_000, ["Keep the components under 10000 characters."]),
    ("Charger | 1 | 1e9%", ["Line 1: a deduction"]),
])
def test_bad_components_get_every_problem_and_change_nothing(client, world, session, kit, text, says):
    login(client, "admin")
    before = counts(session)
    resp = save(client, kit.id, text)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422, (resp.status_code, body[:300])
    for said in says:
        assert said in body, body[:800]
    assert counts(session) == before


def test_a_kit_is_not_a_component_and_a_component_is_not_a_kit(client, world, session, kit):
    login(client, "admin")
    assert save(client, kit.id, TEXT).status_code == 200
    other = Product(sku="CAM-KIT-2", name="Camera kit deluxe", category="electronics", unit_value=Decimal("700.00"))
    session.add(other)
    session.commit()
    before = counts(session)
    nested = save(client, other.id, "CAM-KIT-1 | 1\nTripod")
    assert nested.status_code == 422 and "Line 1: CAM-KIT-1 is a kit itself" in nested.get_data(as_text=True)
    body_id = session.scalars(select(Product.id).where(Product.sku == "CAM-BODY")).one()
    inside = save(client, body_id, "Battery | 1")
    assert inside.status_code == 422 and "CAM-BODY is a component of CAM-KIT-1" in inside.get_data(as_text=True)
    same = save(client, kit.id, TEXT)
    assert same.status_code == 422 and "nothing to save" in same.get_data(as_text=True)
    assert counts(session) == before
    assert client.post("/admin/products/999999/components", headers=HX, data={"key": key(), "components": "x"}).status_code == 404
    assert client.get("/admin/products/999999").status_code == 404
    assert client.get("/admin/products/99999999999999999999").status_code == 404  # past an integer: no 500
    assert save(client, 99999999999999999999, "x").status_code == 404
    assert client.get("/admin/products?page=99999999999999999999&q=%25_").status_code == 200


def test_refusals_are_said_in_spanish(client, world, session, kit):
    login(client, "admin")
    resp = client.post(f"/admin/products/{kit.id}/components", data={"key": key(), "components": "Charger | 0"},
                       headers={**HX, "Accept-Language": "es"})
    assert resp.status_code == 422 and "Línea 1" in resp.get_data(as_text=True)


@pytest.mark.parametrize("username", ["worker", "super", "partner"])
def test_only_admins_edit_components(client, world, session, kit, username):
    login(client, username)
    before = counts(session)
    assert client.get("/admin/products").status_code == 403
    assert client.get(f"/admin/products/{kit.id}").status_code == 403
    assert save(client, kit.id, TEXT).status_code == 403
    assert counts(session) == before
