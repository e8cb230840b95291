"""POST /api/v1/products: the catalog put in by another system, item by item, all or nothing."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from app.api.services import create_api_key
from app.auth.roles import SYSTEM
from app.catalog.models import Product, ProductBarcode
from app.ledger.models import AuditEntry



def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def catalog(session, world):  # type: ignore[no-untyped-def]
    made = create_api_key(session, SYSTEM, name="PIM", scopes=["catalog:write"], idempotency_key=key())
    return {"Authorization": f"Bearer {made.token}"}


def put(client, headers, products, k=None):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/products", json={"products": products}, headers={**headers, "Idempotency-Key": k or key()})


def item(sku="LAMP-01", **over):  # type: ignore[no-untyped-def]
    p = {"sku": sku, "name": "Desk lamp", "category": "electronics", "unit_value": "59.90", "merchant": "ACME",
         "barcodes": ["5012345678900"]}
    p.update(over)
    return p


def state(session):  # type: ignore[no-untyped-def]
    session.rollback()
    return (session.scalar(select(func.count()).select_from(Product)), session.scalar(select(func.count()).select_from(ProductBarcode)),
            session.scalar(select(func.count()).select_from(AuditEntry)))


def test_products_are_created_updated_and_left_alone_item_by_item(client, session, world, catalog):
    k = key()
    first = put(client, catalog, [item(), item("lamp-02", barcodes=["12345670"])], k)
    assert first.status_code == 200, first.data
    assert [(i["key"], i["outcome"]) for i in first.get_json()["items"]] == [("LAMP-01", "created"), ("LAMP-02", "created")]
    lamp = session.scalars(select(Product).where(Product.sku == "LAMP-01")).one()
    assert [b.code for b in lamp.barcodes] == ["05012345678900"] and str(lamp.unit_value) == "59.90"
    before = state(session)
    again = put(client, catalog, [item(), item("lamp-02", barcodes=["12345670"])], k)
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json() and state(session) == before
    # The same items under a new key: nothing changed; a new price and an extra barcode: updated.
    same = put(client, catalog, [item(), item("lamp-02", barcodes=["12345670"])])
    assert [i["outcome"] for i in same.get_json()["items"]] == ["unchanged", "unchanged"] and state(session) == before
    changed = put(client, catalog, [item(unit_value="49.90", barcodes=["5012345678900", "012345678905"])])
    assert changed.get_json()["items"][0]["outcome"] == "updated"
    session.rollback()
    lamp = session.scalars(select(Product).where(Product.sku == "LAMP-01")).one()
    assert str(lamp.unit_value) == "49.90" and sorted(b.code for b in lamp.barcodes) == ["00012345678905", "05012345678900"]


@pytest.mark.parametrize("products, field, says", [
    ([item(barcodes=["5012345678901"])], "products.0.barcodes", "valid check digit"),
    ([item(category="toys")], "products.0.category", "one of"),
    ([item(unit_value="-1")], "products.0.unit_value", "String should match pattern"),
    ([item(unit_value="1.999")], "products.0.unit_value", "String should match pattern"),
    ([item(), item()], "products.1.sku", "also item 0"),
    ([item(), item("LAMP-09")], "products.1.barcodes", "also listed for LAMP-01"),
    ([item(merchant="NOPE")], "products.0.merchant", "no merchant NOPE"),
    ([item("TEE-BLU-M", barcodes=[], merchant="GLOBEX")], "products.0.merchant", "belongs to another merchant"),
    ([item(barcodes=["036000291452"])], "products.0.barcodes", "barcode of TEE-BLU-M"),
    ([item(sku="bad sku!")], "products.0.sku", "letters, digits"),
    ([], "products", "at least 1 item"),
    ([item()] * 501, "products", "at most 500 items"),
])
def test_one_bad_item_refuses_the_call_and_names_the_item(client, session, world, catalog, products, field, says):
    before = state(session)
    # A good item at the end of the call is not written either: all or nothing.
    resp = put(client, catalog, products + [item("GOOD-1", barcodes=[])] if products else [])
    assert resp.status_code == 422 and resp.mimetype == "application/problem+json", resp.data
    errors = resp.get_json()["errors"]
    assert any(e["field"] == field and says in e["message"] for e in errors), errors
    assert "Nothing was written" in resp.get_json()["detail"] or "see errors" in resp.get_json()["detail"]
    assert state(session) == before


def test_categories_come_from_their_table_read_once_per_call(client, session, world, catalog):
    """A category added in the console takes products at once; a retired one takes no new product
    (nor a product moved into it) but keeps a product already in it; the table is read once per call."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from app.catalog.models import Category

    session.add(Category(code="toys", name="Toys", active=True))
    session.commit()
    statements: list[str] = []
    def seen(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        made = put(client, catalog, [item(category="toys", barcodes=[]),
                                     *(item(f"TOY-{n}", category="toys", barcodes=[]) for n in range(20))])
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert made.status_code == 200, made.data
    assert sum("FROM categories" in s for s in statements) == 1
    session.execute(Category.__table__.update().values(active=False))
    session.commit()
    before = state(session)
    new = put(client, catalog, [item("TOY-NEW", category="toys", barcodes=[])])
    assert new.status_code == 422 and "toys is retired" in new.get_json()["errors"][0]["message"]
    moved = put(client, catalog, [item("TEE-BLU-M", category="toys", barcodes=[], merchant="ACME")])
    assert moved.status_code == 422 and state(session) == before
    kept = put(client, catalog, [item(category="toys", barcodes=[], name="Desk lamp, brass")])
    assert kept.status_code == 200 and kept.get_json()["items"][0]["outcome"] == "updated"


def test_a_merchant_key_writes_only_its_merchants_products(client, session, world):
    made = create_api_key(session, SYSTEM, name="Globex PIM", scopes=["catalog:write"], merchant_codes=["GLOBEX"],
                          idempotency_key=key())
    headers = {"Authorization": f"Bearer {made.token}"}
    before = state(session)
    assert put(client, headers, [item()]).status_code == 422  # ACME's
    assert put(client, headers, [item(merchant=None)]).status_code == 422  # no merchant named
    assert state(session) == before
    assert put(client, headers, [item(merchant="GLOBEX")]).status_code == 200


def test_a_merchants_key_does_not_take_over_a_shared_product(client, session, world):
    from app.catalog.models import Product as P
    session.add(P(sku="SHARED-1", name="Gift box", category="apparel", unit_value="5.00", merchant_id=None))
    session.commit()
    made = create_api_key(session, SYSTEM, name="Acme PIM", scopes=["catalog:write"], merchant_codes=["ACME"],
                          idempotency_key=key())
    resp = put(client, {"Authorization": f"Bearer {made.token}"}, [item("SHARED-1", barcodes=[], name="Mine now")])
    assert resp.status_code == 422 and "shared by every merchant" in resp.get_json()["errors"][0]["message"]
    session.rollback()
    assert session.scalars(select(P).where(P.sku == "SHARED-1")).one().merchant_id is None
