"""A small, complete warehouse world for tests: build_world(session) -> World."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from app.auth.models import User
from app.auth.roles import Actor
from app.catalog.models import Location, Merchant, PartnerOrg, Product, ProductBarcode, SalesChannel, Warehouse
from app.orders.models import CarrierTracking, Customer, Order, OrderLine, Rma, RmaLine, ShippedSerial

PASSWORD = "password123"
# One cheap hash for every test user: scrypt per user made each world cost seconds.
_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
LOCATION_TYPES = ("dock", "inspection", "stock", "quarantine", "refurbish", "vendor_return", "liquidation", "scrap")


@dataclass
class World:
    """Handles on everything build_world made; users by role, actors by role."""

    wh: Warehouse
    wh3pl: Warehouse
    merchant: Merchant
    other_merchant: Merchant
    channel: SalesChannel
    org: PartnerOrg
    other_org: PartnerOrg
    users: dict[str, User]
    products: dict[str, Product]
    locations: dict[tuple[str, str], Location]
    customer: Customer
    order: Order
    rma: Rma
    tracking: CarrierTracking
    extra: dict[str, object] = field(default_factory=dict)

    def actor(self, username: str) -> Actor:
        """The service-layer actor of a user."""
        return self.users[username].actor()

    def loc(self, wh: Warehouse, type_: str) -> Location:
        """The location of a type in a warehouse."""
        return self.locations[(wh.code, type_)]


def build_world(session: Session) -> World:
    """Two warehouses (one run by a 3PL), three products, one order with an RMA, a user per role."""
    merchant = Merchant(code="ACME", name="Acme Outfitters")
    other_merchant = Merchant(code="GLOBEX", name="Globex Gadgets")
    channel = SalesChannel(code="web", name="Web store")
    org = PartnerOrg(name="FastLane 3PL")
    other_org = PartnerOrg(name="Other 3PL")
    org.merchants.append(merchant)
    session.add_all([merchant, other_merchant, channel, org, other_org])
    session.flush()
    wh = Warehouse(code="WH1", name="Main DC")
    wh3pl = Warehouse(code="3PL1", name="FastLane Reno", partner_org_id=org.id)
    session.add_all([wh, wh3pl])
    session.flush()
    locations = {}
    for w in (wh, wh3pl):
        for t in LOCATION_TYPES:
            loc = Location(warehouse_id=w.id, code=f"{t.upper()}-01", type=t, barcode=f"LOC:{w.code}-{t.upper()}-01")
            session.add(loc)
            locations[(w.code, t)] = loc
    products = {
        "phone": Product(sku="PHN-X1-128", name="Phone X1 128GB", category="electronics", unit_value=Decimal("699.00"),
                         serial_tracked=True, merchant_id=merchant.id),
        "shirt": Product(sku="TEE-BLU-M", name="Tee blue M", category="apparel", unit_value=Decimal("25.00"),
                         merchant_id=merchant.id),
        "cream": Product(sku="HB-CREAM-50", name="Face cream 50ml", category="health_beauty", unit_value=Decimal("40.00"),
                         lot_tracked=True, merchant_id=merchant.id),
    }
    session.add_all(products.values())
    session.flush()
    session.add_all([
        ProductBarcode(code="00614141999996", kind="gtin", product_id=products["phone"].id),
        ProductBarcode(code="00036000291452", kind="upc", product_id=products["shirt"].id),
        ProductBarcode(code="04006381333931", kind="ean", product_id=products["cream"].id),
    ])
    users = {}
    for username, role in (("worker", "worker"), ("worker2", "worker"), ("super", "supervisor"), ("super2", "supervisor"),
                           ("admin", "admin"), ("partner", "partner"), ("outsider", "partner")):
        org_id = org.id if username == "partner" else other_org.id if username == "outsider" else None
        u = User(username=username, name=username.title(), role=role, partner_org_id=org_id, password_hash=_HASH)
        session.add(u)
        users[username] = u
    customer = Customer(external_ref="C-1", name="Dana Buyer")
    session.add(customer)
    session.flush()
    order = Order(number="SO-1001", merchant_id=merchant.id, channel_id=channel.id, customer_id=customer.id)
    session.add(order)
    session.flush()
    lines = {
        "phone": OrderLine(order_id=order.id, product_id=products["phone"].id, quantity=1, unit_price=Decimal("649.00")),
        "shirt": OrderLine(order_id=order.id, product_id=products["shirt"].id, quantity=2, unit_price=Decimal("20.00")),
        "cream": OrderLine(order_id=order.id, product_id=products["cream"].id, quantity=1, unit_price=Decimal("35.00")),
    }
    session.add_all(lines.values())
    session.flush()
    session.add(ShippedSerial(order_line_id=lines["phone"].id, serial="SN-PHONE-0001"))
    rma = Rma(number="RMA-5001", order_id=order.id, merchant_id=merchant.id, channel_id=channel.id,
              warehouse_id=wh.id, customer_id=customer.id, status="in_transit")
    session.add(rma)
    session.flush()
    session.add_all([
        RmaLine(rma_id=rma.id, product_id=products["phone"].id, order_line_id=lines["phone"].id, quantity=1, reason_code="defective"),
        RmaLine(rma_id=rma.id, product_id=products["shirt"].id, order_line_id=lines["shirt"].id, quantity=2, reason_code="wrong_size"),
    ])
    tracking = CarrierTracking(tracking_number="1Z999AA10123456784", carrier="UPS", rma_id=rma.id, status="in_transit")
    session.add(tracking)
    session.commit()
    return World(wh=wh, wh3pl=wh3pl, merchant=merchant, other_merchant=other_merchant, channel=channel, org=org,
                 other_org=other_org, users=users, products=products, locations=locations, customer=customer,
                 order=order, rma=rma, tracking=tracking, extra={"order_lines": lines})
