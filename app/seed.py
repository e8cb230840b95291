"""The demo: `flask --app wsgi seed-demo [--if-empty]` fills an empty database with a believable warehouse.

Reference data, the catalogue, orders and RMAs are written in two big transactions (what the
storefront and the ERP would have sent us). Everything that happens on the dock afterwards goes
through the real services (open_parcel, scan_item, close_parcel, record_inspection,
confirm_disposition, approve / reject / acknowledge refund, transition_unit), so the ledger,
balances, refund triggers, exceptions, outbox and audit trail agree exactly as they would after
a real shift. The data is deterministic (random.Random(42)); the demo passwords are not.
"""
from __future__ import annotations

import os
import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from random import Random
from typing import Any

import click
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.models import User
from app.auth.roles import SYSTEM, Actor
from app.catalog.models import LOCATION_TYPES, Location, Merchant, PartnerOrg, Product, ProductBarcode, SalesChannel, Warehouse
from app.db import as_utc, clock_at, unit_of_work, utcnow
from app.disposition import domain as rules_domain
from app.disposition.models import DispositionRule, ReasonCode, RuleSetVersion
from app.disposition.services import confirm_disposition, preview
from app.admin.services import save_checklist, save_components
from app.api.services import create_api_key
from app.labels.services import save_printer
from app.webhooks.services import register_endpoint, set_endpoint_enabled
from app.inspection.domain import items_text
from app.inspection.queries import checklist_for
from app.inspection.services import record_inspection
from app.ledger.models import ReturnUnit
from app.ledger.services import transition_unit
from app.ledger.writer import audit_row
from app.orders.models import CarrierTracking, Customer, Order, OrderLine, Rma, RmaLine, ShippedSerial
from app.catalog.domain import normalize_gtin
from app.receiving.services import close_parcel, open_parcel, scan_item
from app.refunds.models import RefundTrigger
from app.settings.models import RefundThreshold
from app.refunds.services import RefundPolicy, acknowledge_refund, approve_refund, reject_refund
from app.rows import write

LOGINS_FILE = "demo-logins.txt"
FINANCE = Actor(id=None, role="integration", name="Finance ERP")
CENTS = Decimal("0.01")

Login = tuple[str, str, str]


class SeedError(click.ClickException):
    """A refusal the CLI shows as a one-line message (no traceback)."""


# --------------------------------------------------------------------------- check digits


def gs1_check_digit(body: str) -> str:
    """The GS1 mod-10 check digit of a GTIN body (weights 3, 1, 3, ... from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def with_check(body: str) -> str:
    """A GTIN / UPC / EAN body with its check digit appended."""
    return body + gs1_check_digit(body)


def ups_tracking(rng: Random, shipper: str) -> str:
    """A UPS '1Z' number (returns service 90) with a correct check digit."""
    body = shipper + "90" + "".join(rng.choices(string.digits, k=7))
    total = 0
    for i, ch in enumerate(body, start=1):
        v = int(ch) if ch.isdigit() else (ord(ch) - ord("A") + 2) % 10
        total += v * (2 if i % 2 == 0 else 1)
    return "1Z" + body + str((10 - total % 10) % 10)


def usps_tracking(rng: Random) -> str:
    """A 22-digit USPS IMpb number (94001...) with its mod-10 check digit."""
    return with_check("94001" + "".join(rng.choices(string.digits, k=16)))


def fedex_tracking(rng: Random) -> str:
    """A 12-digit FedEx Express number with its 1-3-7 check digit."""
    body = "".join(rng.choices(string.digits, k=11))
    weights = (1, 3, 7)
    total = sum(int(d) * weights[i % 3] for i, d in enumerate(reversed(body)))
    return body + str(total % 11 % 10)


# --------------------------------------------------------------------------- the catalogue

MERCHANTS = (("VOLT", "Voltline Electronics"), ("NWO", "Northwind Outfitters"), ("GLOW", "Glow Lab"))
CHANNELS = (("web", "Web store"), ("amazon", "Amazon Marketplace"), ("retail", "Retail stores"))
PARTNER_ORG = "FastLane Logistics"
PARTNER_MERCHANT = "NWO"  # FastLane receives Northwind Outfitters' returns in Dallas
WAREHOUSES = (("RNO1", "Reno Returns Center", False), ("3PL-DAL", "FastLane Dallas (3PL)", True))
# code, label, avoidable, party responsible (the reason analytics' split)
REASON_CODES = (
    ("defective", "Defective / does not work", True, "supplier"),
    ("no_longer_needed", "No longer needed", False, "customer"),
    ("wrong_size", "Wrong size or fit", True, "product_content"),
    ("damaged_in_transit", "Arrived damaged", True, "carrier"),
    ("not_as_described", "Not as described", True, "product_content"),
    ("arrived_late", "Arrived too late", True, "warehouse"),
    ("better_price", "Found a better price", False, "customer"),
)
# A merchant whose refunds wait for approval above a lower amount than the rest.
REFUND_THRESHOLDS = (("VOLT", "150.00"),)


@dataclass
class ProdSpec:
    """A catalogue entry as planned."""

    sku: str
    name: str
    category: str
    value: Decimal
    merchant: str
    serial: bool = False
    lot: bool = False
    serial_prefix: str = ""
    barcodes: list[tuple[str, str]] = field(default_factory=list)  # (code as printed, kind)
    open_box_of: str | None = None
    id: int = 0


def _catalogue() -> list[ProdSpec]:
    """About fifty SKUs: Voltline electronics, Northwind apparel in sizes, Glow Lab health & beauty."""
    d = Decimal
    out: list[ProdSpec] = []
    volt = [  # sku, name, value, serial-tracked, serial prefix, also has an EAN alias
        ("VL-PULSE6-128-BLK", "Voltline Pulse 6 phone, 128 GB, black", "799.00", True, "VP6", True),
        ("VL-PULSE6-128-SLV", "Voltline Pulse 6 phone, 128 GB, silver", "799.00", True, "VP6", True),
        ("VL-PULSE6-256-BLK", "Voltline Pulse 6 phone, 256 GB, black", "899.00", True, "VP6", True),
        ("VL-PULSE6P-512-TTN", "Voltline Pulse 6 Pro phone, 512 GB, titanium", "1199.00", True, "VP6P", False),
        ("VL-AURA5-64-BLU", "Voltline Aura A5 phone, 64 GB, blue", "249.00", True, "VA5", False),
        ("VL-SLATE11-128-GRY", "Voltline Slate 11 tablet, 128 GB, graphite", "549.00", True, "VS11", False),
        ("VL-SLATE8-64-GRY", "Voltline Slate 8 tablet, 64 GB, graphite", "229.00", True, "VS8", False),
        ("VL-HUSH-ANC-BLK", "Voltline Hush ANC over-ear headphones, black", "279.00", True, "VHA", True),
        ("VL-HUSH-ANC-WHT", "Voltline Hush ANC over-ear headphones, white", "279.00", True, "VHA", True),
        ("VL-BUDS2-BLK", "Voltline Buds 2 wireless earbuds, black", "129.00", True, "VB2", False),
        ("VL-BUDS2-WHT", "Voltline Buds 2 wireless earbuds, white", "129.00", True, "VB2", False),
        ("VL-SPORTBUDS-RED", "Voltline SportBuds, red", "79.00", True, "VSB", False),
        ("VL-WATCH-44-BLK", "Voltline Pulse Watch 44 mm, black", "349.00", True, "VW44", False),
        ("VL-BOOMMINI-BLU", "Voltline Boom Mini speaker, blue", "99.00", True, "VBM", False),
        ("VL-CHG-65W-GAN", "Voltline 65 W GaN charger, 3 ports", "59.00", True, "VC65", False),
        ("VL-CHG-30W-USBC", "Voltline 30 W USB-C charger", "35.00", True, "VC30", False),
        ("VL-PWRBANK-20K", "Voltline power bank 20,000 mAh", "89.00", False, "", False),
        ("VL-CBL-USBC-2M", "Voltline USB-C cable, braided, 2 m", "30.00", False, "", False),
    ]
    for i, (sku, name, value, serial, prefix, alias) in enumerate(volt, start=1):
        codes = [(with_check(f"084512{i:05d}"), "upc")]
        if alias:
            codes.append((with_check(f"4061234{i:05d}"), "ean"))
        out.append(ProdSpec(sku, name, "electronics", d(value), "VOLT", serial=serial, serial_prefix=prefix, barcodes=codes))
    open_box = [("VL-PULSE6-128-BLK", "679.00"), ("VL-PULSE6P-512-TTN", "1019.00"), ("VL-SLATE11-128-GRY", "469.00"),
                ("VL-HUSH-ANC-BLK", "229.00")]
    by_sku = {p.sku: p for p in out}
    for i, (sku, value) in enumerate(open_box, start=51):
        base = by_sku[sku]
        out.append(ProdSpec(f"{sku}-OB", f"{base.name} (open box)", "electronics", d(value), "VOLT", serial=True,
                            serial_prefix=base.serial_prefix, barcodes=[(with_check(f"084512{i:05d}"), "upc")],
                            open_box_of=sku))
    styles = [("TRAILTEE-GRY", "Trail Tee, heather grey", "28.00"), ("RIDGEHOOD-NVY", "Ridge Fleece Hoodie, navy", "64.00"),
              ("STORMSHELL-OLV", "Storm Rain Shell, olive", "129.00"), ("SUMMITVEST-BLK", "Summit Down Vest, black", "99.00")]
    n = 0
    for style, name, value in styles:
        for size in ("S", "M", "L", "XL"):
            n += 1
            out.append(ProdSpec(f"NW-{style}-{size}", f"Northwind {name}, size {size}", "apparel", d(value), "NWO",
                                barcodes=[(with_check(f"0736211{n:04d}"), "upc")]))
    glow = [
        ("GL-SERUM-VITC-30", "Glow Lab Vitamin C serum 30 ml", "38.00", True),
        ("GL-GELCREAM-50", "Glow Lab Hydra gel moisturiser 50 ml", "32.00", False),
        ("GL-SPF50-FLUID-50", "Glow Lab Daily SPF 50 fluid 50 ml", "26.00", True),
        ("GL-RETINOL-NIGHT-30", "Glow Lab Retinol night cream 30 ml", "45.00", False),
        ("GL-CLEANSER-150", "Glow Lab Gentle foam cleanser 150 ml", "18.00", False),
        ("GL-LIPOIL-ROSE", "Glow Lab Lip oil, rose", "16.00", False),
        ("GL-HAIROIL-100", "Glow Lab Argan hair oil 100 ml", "29.00", False),
        ("GL-TONER-200", "Glow Lab Rosewater toner 200 ml", "22.00", False),
        ("GL-EYECREAM-15", "Glow Lab Caffeine eye cream 15 ml", "36.00", False),
        ("GL-CLAYMASK-75", "Glow Lab Kaolin clay mask 75 ml", "24.00", False),
        ("GL-SHAMPOO-BAR", "Glow Lab Solid shampoo bar", "14.00", False),
        ("GL-BODYLOTION-250", "Glow Lab Body lotion 250 ml", "19.00", False),
    ]
    for i, (sku, name, value, alias) in enumerate(glow, start=1):
        codes = [(with_check(f"5060412{i:05d}"), "ean")]
        if alias:
            codes.append((with_check(f"0850012{i:04d}"), "upc"))
        out.append(ProdSpec(sku, name, "health_beauty", d(value), "GLOW", lot=True, barcodes=codes))
    return out


FIRST = ("Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Sophia", "Elijah", "Isabella", "Lucas", "Mia", "Ethan", "Amelia",
         "Mason", "Harper", "Logan", "Evelyn", "James", "Aria", "Benjamin", "Chloe", "Daniel", "Layla", "Henry", "Nora",
         "Jackson", "Zoe", "Samuel", "Riley", "Owen", "Hannah", "Caleb", "Grace", "Wyatt", "Leah", "Isaac", "Priya",
         "Diego", "Mei", "Omar", "Fatima", "Kenji", "Ana", "Tomasz", "Ingrid", "Kwame")
LAST = ("Johnson", "Garcia", "Nguyen", "Patel", "Kim", "Martinez", "Brown", "Lee", "Walker", "Hernandez", "Lopez", "Clark",
        "Lewis", "Young", "Allen", "Wright", "Scott", "Torres", "Hill", "Green", "Adams", "Baker", "Nelson", "Carter",
        "Mitchell", "Perez", "Roberts", "Turner", "Phillips", "Campbell", "Parker", "Evans", "Edwards", "Collins",
        "Stewart", "Okafor", "Novak", "Schmidt", "Rossi", "Tanaka", "Haddad", "Silva", "Kowalski", "Andersen")

STAFF = (  # username, role, display name, home warehouse
    ("worker", "worker", "Jamie Ortiz", "RNO1"),
    ("supervisor", "supervisor", "Priya Shah", "RNO1"),
    ("supervisor2", "supervisor", "Marcus Lee", "RNO1"),
    ("admin", "admin", "Alex Morgan", None),
    ("partner", "partner", "Dee Carter (FastLane)", "3PL-DAL"),
)

REASON_WEIGHTS = {
    "electronics": {"defective": 30, "no_longer_needed": 22, "not_as_described": 16, "better_price": 14,
                    "arrived_late": 8, "damaged_in_transit": 6},
    "apparel": {"wrong_size": 45, "no_longer_needed": 18, "not_as_described": 15, "defective": 8, "arrived_late": 7,
                "better_price": 4, "damaged_in_transit": 3},
    "health_beauty": {"no_longer_needed": 32, "not_as_described": 22, "defective": 14, "damaged_in_transit": 6,
                      "arrived_late": 13, "better_price": 13},
}


# --------------------------------------------------------------------------- plans (plain Python, no ORM)


@dataclass
class OLine:
    """An order line as planned."""

    product: ProdSpec
    qty: int
    price: Decimal
    serials: list[str]
    obj: OrderLine | None = None


@dataclass
class OSpec:
    """An order as planned."""

    number: str
    merchant: str
    channel: str
    customer: int
    placed_at: datetime
    lines: list[OLine]
    obj: Order | None = None
    has_rma: bool = False


@dataclass
class RLine:
    """An RMA line as planned."""

    oline: OLine
    qty: int
    reason: str


@dataclass
class RmaPlan:
    """An RMA and what will happen to it on the dock."""

    number: str
    status: str
    order: OSpec
    warehouse: str
    lines: list[RLine]
    scenario: str = "normal"  # normal, missing, wrong_item, extra_item, over_return, serial_mismatch, sizing_spike
    created_at: datetime | None = None
    arrives_at: datetime | None = None  # when its parcel is opened on the dock
    tracking: tuple[str, str, str] | None = None  # (number, carrier, status)
    backlog: bool = False  # closed, but its units still wait for inspection
    obj: Rma | None = None
    id: int = 0


@dataclass
class Item:
    """One thing taken out of a parcel."""

    product: ProdSpec
    serial: str | None = None
    lot: str | None = None
    reason: str = "no_longer_needed"


@dataclass
class Seeder:
    """Builds the demo step by step; keeps only plain ids between service calls (they roll the session back)."""

    session: Session
    rng: Random
    policy: RefundPolicy
    scale: float = 1.0
    now: datetime = field(default_factory=utcnow)
    n: int = 0
    products: list[ProdSpec] = field(default_factory=list)
    actors: dict[str, Actor] = field(default_factory=dict)
    warehouse_ids: dict[str, int] = field(default_factory=dict)
    location_ids: dict[tuple[str, str], int] = field(default_factory=dict)
    serials_used: set[str] = field(default_factory=set)
    overrides_left: int = 3
    over_returned: set[int] = field(default_factory=set)
    merchant_ids: dict[str, int] = field(default_factory=dict)
    channel_ids: dict[str, int] = field(default_factory=dict)

    # ----------------------------------------------------------------- helpers

    def key(self) -> str:
        """A deterministic idempotency key: seed-000001, seed-000002, ..."""
        self.n += 1
        return f"seed-{self.n:06d}"

    def count(self, full: int, minimum: int = 1) -> int:
        """A full-size count scaled down for quick runs."""
        return max(minimum, round(full * self.scale))

    def serial(self, prefix: str) -> str:
        """A fresh, upper-case serial number of a product family (unique across the demo)."""
        while True:
            s = prefix + "".join(self.rng.choices(string.ascii_uppercase + string.digits, k=10 - len(prefix) + 2))
            if s not in self.serials_used:
                self.serials_used.add(s)
                return s

    def lot(self) -> str:
        """A Glow Lab lot code: year, month of production and a batch."""
        day = self.now - timedelta(days=self.rng.randint(60, 400))
        return f"GL{day:%y%m}{self.rng.choice('ABCD')}{self.rng.randint(1, 9)}"

    # ----------------------------------------------------------------- 1. reference data and catalogue

    def reference_data(self, passwords: dict[str, str]) -> None:
        """One transaction: partner, merchants, channels, warehouses, locations, catalogue, rules, reason codes
        and the demo users (the categories and their first checklists are the migration's)."""
        s = self.session
        with unit_of_work(s):
            merchants = {code: Merchant(code=code, name=name) for code, name in MERCHANTS}
            channels = {code: SalesChannel(code=code, name=name) for code, name in CHANNELS}
            org = PartnerOrg(name=PARTNER_ORG, merchants=[merchants[PARTNER_MERCHANT]])
            warehouses = {code: Warehouse(code=code, name=name, partner_org=org if third else None)
                          for code, name, third in WAREHOUSES}
            s.add_all([*merchants.values(), *channels.values(), org, *warehouses.values()])
            locations = []
            for wcode, wh in warehouses.items():
                for type_ in LOCATION_TYPES:
                    short = {"inspection": "INSP", "quarantine": "QUAR", "refurbish": "REFURB", "vendor_return": "RTV",
                             "liquidation": "LIQ"}.get(type_, type_.upper())
                    many = 2 if type_ in ("dock", "inspection", "stock") else 1
                    for k in range(1, many + 1):
                        code = f"{short}-{k:02d}"
                        locations.append(Location(warehouse=wh, code=code, type=type_, barcode=f"LOC:{wcode}-{code}"))
            s.add_all(locations)
            self.products = _catalogue()
            rows: dict[str, Product] = {}
            for p in self.products:
                row = Product(sku=p.sku, name=p.name, category=p.category, unit_value=p.value, serial_tracked=p.serial,
                              lot_tracked=p.lot, merchant_id=None)
                row.barcodes = [ProductBarcode(code=_gtin14(code), kind=kind) for code, kind in p.barcodes]
                rows[p.sku] = row
            s.add_all(rows.values())
            s.flush()
            for p in self.products:
                rows[p.sku].merchant_id = merchants[p.merchant].id
                if p.open_box_of:
                    rows[p.open_box_of].open_box_product_id = rows[p.sku].id
            s.add_all([ReasonCode(code=c, label=label, avoidable=avoidable, responsible_party=party)
                       for c, label, avoidable, party in REASON_CODES])
            s.add_all([RefundThreshold(scope=f"merchant:{merchants[code].id}", merchant_id=merchants[code].id,
                                       amount=Decimal(amount)) for code, amount in REFUND_THRESHOLDS])
            s.add_all([DispositionRule(position=r.position, name=r.name, conditions=_conditions_json(r.conditions),
                                       disposition=r.disposition, refund_action=r.refund_action,
                                       restocking_fee_pct=r.restocking_fee_pct, enabled=r.enabled)
                       for r in rules_domain.DEFAULT_RULES])
            users = {}
            for username, role, name, home in STAFF:
                user = User(username=username, role=role, name=name,
                            partner_org=org if role == "partner" else None,
                            home_warehouse=warehouses[home] if home else None)
                user.set_password(passwords[username])
                users[username] = user
            s.add_all(users.values())
            s.flush()
            version = RuleSetVersion(rules=[_rule_json(r) for r in rules_domain.DEFAULT_RULES], note="seeded defaults",
                                     created_by_id=None)
            s.add(version)
            s.flush()
            write(s, [audit_row(SYSTEM, "rules.saved", "rule_set", version.id, reason="seeded defaults",
                                details={"rules": len(rules_domain.DEFAULT_RULES)})])
            self.merchant_ids = {c: m.id for c, m in merchants.items()}
            self.channel_ids = {c: ch.id for c, ch in channels.items()}
            self.warehouse_ids = {c: w.id for c, w in warehouses.items()}
            self.location_ids = {(loc.warehouse.code, loc.type): loc.id for loc in reversed(locations)}
            for p in self.products:
                p.id = rows[p.sku].id
            self.checklists = {c: [i["key"] for i in checklist_for(s, c).items] for c in {p.category for p in self.products}}
            self.actors = {u: users[u].actor() for u in users}

    def checklist_history(self) -> None:
        """The admin adds a check to the electronics checklist (its version 2), so the console shows a history."""
        items = checklist_for(self.session, "electronics").items
        self.session.rollback()
        text = items_text([*items, {"key": "imei_clean", "label": "IMEI / serial not reported lost or stolen"}])
        save_checklist(self.session, self.actors["admin"], category="electronics", text=text,
                       note="Check the IMEI before grading: two stolen phones came back this quarter.",
                       idempotency_key=self.key())
        self.checklists["electronics"] = [*self.checklists["electronics"], "imei_clean"]

    def grading_rules(self) -> None:
        """The admin makes the electronics checklist guide the inspection (its version 3, after the 90
        days of history): a unit still sealed in its box is grade A and needs no other check; missing
        accessories take 10% off the refund. The units waiting for inspection show it."""
        items = checklist_for(self.session, "electronics").items
        self.session.rollback()
        text = items_text([{"key": "seal_intact", "label": "Factory seal intact (never opened)"}, *items])
        save_checklist(self.session, self.actors["admin"], category="electronics", text=text,
                       note="Sealed units need no further checks; missing accessories come off the refund.",
                       idempotency_key=self.key(),
                       grading_text="seal_intact = yes -> grade A, skip the rest\naccessories = no -> deduct 10%")

    def integrations(self) -> None:
        """What the console's integration pages show, made by the admin as a person would: API keys
        for the storefront and finance (their tokens are not kept: an admin makes a new key to use
        one), a webhook endpoint (an example address, switched off until pointed at a receiver)
        and a label printer at the Reno dock (on the LAN; a handheld that picks it prints there)."""
        admin = self.actors["admin"]
        create_api_key(self.session, admin, name="Storefront (demo)", idempotency_key=self.key(),
                       scopes=["catalog:write", "orders:write", "rmas:write", "carrier:write", "events:read"])
        create_api_key(self.session, admin, name="Finance ERP (demo)", idempotency_key=self.key(),
                       scopes=["refunds:read", "refunds:ack", "units:read", "events:read"])
        hook = register_endpoint(self.session, admin, url="https://erp.example.com/dockhand/webhooks",
                                 event_types=["refund.released", "refund.rejected", "unit.state_changed"],
                                 description="Finance ERP (example address: switch on once it points at your receiver)",
                                 idempotency_key=self.key())
        set_endpoint_enabled(self.session, admin, endpoint_id=hook.id, enabled=False, idempotency_key=self.key())
        save_printer(self.session, admin, printer_id=None, name="Reno dock 1 Zebra", warehouse_id=self.warehouse_ids["RNO1"],
                     host="192.168.10.21", port=9100, stock="4x6", active=True, idempotency_key=self.key())

    # ----------------------------------------------------------------- 2. customers, orders, RMAs

    def orders_and_rmas(self) -> list[RmaPlan]:
        """Customers and a few hundred shipped orders, then the RMAs the storefronts sent (one transaction)."""
        rng = self.rng
        names = sorted({f"{f} {l}" for f in FIRST for l in LAST})
        rng.shuffle(names)
        n_customers = self.count(150, 12)
        customers = [Customer(external_ref=f"C-{10001 + i}", name=names[i]) for i in range(n_customers)]
        returner, frequent = 0, 1  # customer 0 sends most of what they buy back; customer 1 returns a lot
        sellable = [p for p in self.products if not p.open_box_of]
        by_merchant = {m: [p for p in sellable if p.merchant == m] for m, _ in MERCHANTS}
        orders: list[OSpec] = []
        n_orders = self.count(320, 40)
        for i in range(n_orders):
            if i < 9:
                cust = returner
            elif i < 15:
                cust = frequent
            else:
                cust = rng.randrange(2, n_customers)
            merchant = rng.choices(("VOLT", "NWO", "GLOW"), weights=(40, 35, 25))[0]
            channel = rng.choices(("web", "amazon", "retail"), weights=(55, 30, 15))[0]
            n_lines = rng.choices((1, 2, 3), weights=(55, 33, 12))[0]
            picked = rng.sample(by_merchant[merchant], n_lines)
            lines = []
            for p in picked:
                qty = 1
                if p.category == "apparel":
                    qty = rng.choices((1, 2), weights=(65, 35))[0]
                elif p.category == "health_beauty":
                    qty = rng.choices((1, 2, 3), weights=(65, 25, 10))[0]
                elif not p.serial or p.value < 60:
                    qty = rng.choices((1, 2), weights=(75, 25))[0]
                discount = rng.choices((Decimal("1"), Decimal("0.9"), Decimal("0.85"), Decimal("0.8")), weights=(60, 20, 12, 8))[0]
                if channel == "amazon":
                    discount = min(discount, Decimal("0.95"))
                price = (p.value * discount).quantize(CENTS, rounding=ROUND_HALF_UP)
                serials = [self.serial(p.serial_prefix) for _ in range(qty)] if p.serial else []
                lines.append(OLine(p, qty, price, serials))
            placed = self.now - timedelta(days=rng.uniform(4, 95), minutes=rng.randint(0, 1440))
            if channel == "amazon":
                number = f"112-{rng.randint(1000000, 9999999)}-{rng.randint(1000000, 9999999)}"
            elif channel == "retail":
                number = f"POS-{rng.choice(('SEA', 'PDX', 'SFO', 'DEN'))}-{200000 + i}"
            else:
                number = f"SO-{100000 + i * 7 + rng.randint(0, 6)}"
            orders.append(OSpec(number, merchant, channel, cust, placed, lines))
        orders.sort(key=lambda o: o.placed_at)
        plans = self._plan_rmas(orders, returner, frequent)
        self._write_orders(customers, orders, plans)
        return plans

    def _plan_rmas(self, orders: list[OSpec], returner: int, frequent: int) -> list[RmaPlan]:
        """About sixty RMAs in every stage, each exception scenario at least once, two heavy returners."""
        rng = self.rng
        closed_scenarios = (["serial_mismatch"] * self.count(4) + ["missing"] * self.count(3)
                            + ["wrong_item"] * self.count(3) + ["extra_item"] * self.count(2)
                            + ["over_return"] * self.count(2))
        wanted: list[tuple[str, str, int | None]] = [("closed", sc, None) for sc in closed_scenarios]
        normal = max(2, self.count(36) - len(closed_scenarios) - 7)
        spike = min(normal - 1, self.count(8))  # this week, apparel comes back too small or too big: the sizing spike
        wanted += [("closed", "sizing_spike", None)] * spike + [("closed", "normal", None)] * (normal - spike)
        wanted += [("receiving", "serial_mismatch", None)] + [("receiving", "normal", None)] * (self.count(5) - 1)
        wanted += [("in_transit", "normal", None)] * self.count(8)
        wanted += [("authorized", "normal", None)] * self.count(6)
        wanted += [("cancelled", "normal", None)] * self.count(2)
        rng.shuffle(wanted)
        # The serial returner sends back 7 of 9 orders (rule 2 quarantines their units and holds the refunds);
        # the frequent one 3 of 6 (a high rate, but under the rule's count).
        wanted = ([("closed", "normal", returner)] * 5 + [("in_transit", "normal", returner), ("authorized", "normal", returner)]
                  + [("closed", "normal", frequent)] * 2 + [("in_transit", "normal", frequent)] + wanted)
        plans: list[RmaPlan] = []
        for status, scenario, customer in wanted:
            pool = [o for o in orders if not o.has_rma and self._fits(o, scenario)
                    and (o.customer == customer if customer is not None else o.customer not in (returner, frequent))]
            merchant = rng.choices(("VOLT", "NWO", "GLOW"), weights=(40, 35, 25))[0]
            pool = [o for o in pool if o.merchant == merchant] or pool
            if not pool:
                continue
            order = rng.choices(pool, weights=[1 + sum(ln.qty for ln in o.lines) for o in pool])[0]
            order.has_rma = True
            plans.append(self._rma_for(order, status, scenario))
        plans.sort(key=lambda p: p.created_at or self.now)
        for i, plan in enumerate(plans):
            plan.number = f"RMA-{240100 + i * 3 + rng.randint(0, 2)}"
        closed = [p for p in plans if p.status == "closed" and p.scenario == "normal"
                  and p.order.customer not in (returner, frequent)]
        for p in closed[-max(1, self.count(4)):]:
            p.backlog = True  # the freshest parcels: closed on the dock, not inspected yet
        return plans

    def _wrong_items(self, order: OSpec) -> list[ProdSpec]:
        """What could turn up in this order's parcel by mistake: the merchant's other non-serial SKUs."""
        on_order = {ln.product.sku for ln in order.lines}
        return [p for p in self.products if p.merchant == order.merchant and not p.serial and not p.open_box_of
                and p.sku not in on_order]

    def _fits(self, order: OSpec, scenario: str) -> bool:
        """Whether an order can stage this exception scenario."""
        lines = order.lines
        if scenario == "serial_mismatch":
            return any(ln.product.serial for ln in lines)
        if scenario == "over_return":
            return any(not ln.product.serial for ln in lines)
        if scenario == "extra_item":
            return len(lines) >= 2
        if scenario == "wrong_item":
            return bool(self._wrong_items(order))
        if scenario == "missing":
            return sum(ln.qty for ln in lines) >= 2
        if scenario == "sizing_spike":
            return any(ln.product.category == "apparel" for ln in lines) and order.placed_at < self.now - timedelta(days=8)
        return True

    def _rma_for(self, order: OSpec, status: str, scenario: str) -> RmaPlan:
        """The RMA a customer opened on an order: lines, reasons, routing, dates and the return label."""
        rng = self.rng
        lines = list(order.lines)
        if scenario == "extra_item":
            extra = sorted(lines, key=lambda ln: ln.product.serial)[0]  # arrives without being authorised
            lines = [ln for ln in lines if ln is not extra]
        elif scenario == "over_return":
            lines = [rng.choice([ln for ln in lines if not ln.product.serial])]
        elif scenario == "serial_mismatch":
            serial_lines = [ln for ln in lines if ln.product.serial]
            lines = [serial_lines[0]] + [ln for ln in lines if ln is not serial_lines[0] and rng.random() < 0.3]
        elif scenario == "missing":
            pass  # everything on the order is authorised; the parcel comes short
        elif scenario == "sizing_spike":
            lines = [ln for ln in lines if ln.product.category == "apparel"]
        else:
            k = rng.choices(range(1, len(lines) + 1), weights=[45, 35, 20][: len(lines)])[0]
            lines = rng.sample(lines, k)
        rlines = []
        for ln in lines:
            qty = ln.qty if scenario in ("over_return", "missing") else rng.randint(1, ln.qty)
            reason = "wrong_size" if scenario == "sizing_spike" else _weighted(rng, REASON_WEIGHTS[ln.product.category])
            rlines.append(RLine(ln, qty, reason))
        if order.merchant == PARTNER_MERCHANT and rng.random() < 0.75:
            warehouse = "3PL-DAL"
        else:
            warehouse = "RNO1"
        age = (self.now - order.placed_at).total_seconds() / 86400
        created = order.placed_at + timedelta(days=rng.uniform(2, max(2.5, min(age - 1, 25))))
        if status in ("authorized", "in_transit"):
            created = max(created, self.now - timedelta(days=rng.uniform(0.2, 6)))
        if scenario == "sizing_spike":
            created = self.now - timedelta(days=rng.uniform(3, 6.5))
        created = min(created, self.now - timedelta(hours=2))
        plan = RmaPlan("", status, order, warehouse, rlines, scenario, created_at=created)
        carrier = rng.choices(("UPS", "USPS", "FedEx"), weights=(50, 30, 20))[0]
        if status != "cancelled" and (status != "authorized" or rng.random() < 0.5):
            number = {"UPS": lambda: ups_tracking(rng, "A1B2C3" if warehouse == "RNO1" else "F4S7L9"),
                      "USPS": lambda: usps_tracking(rng), "FedEx": lambda: fedex_tracking(rng)}[carrier]()
            tstatus = {"authorized": "label_created", "in_transit": rng.choice(("in_transit", "in_transit", "out_for_delivery"))}
            plan.tracking = (number, carrier, tstatus.get(status, "delivered"))
        return plan

    def _write_orders(self, customers: list[Customer], orders: list[OSpec], plans: list[RmaPlan]) -> None:
        """Write customers, orders (lines, shipped serials), RMAs (lines, tracking) in one transaction."""
        s = self.session
        with unit_of_work(s):
            s.add_all(customers)
            s.flush()
            for o in orders:
                o.obj = Order(number=o.number, merchant_id=self.merchant_ids[o.merchant], channel_id=self.channel_ids[o.channel],
                              customer_id=customers[o.customer].id, placed_at=o.placed_at, currency="USD")
                for ln in o.lines:
                    ln.obj = OrderLine(product_id=ln.product.id, quantity=ln.qty, unit_price=ln.price,
                                       serials=[ShippedSerial(serial=x) for x in ln.serials])
                    o.obj.lines.append(ln.obj)
            s.add_all([o.obj for o in orders])
            s.flush()
            for p in plans:
                o = p.order
                assert o.obj is not None
                p.obj = Rma(number=p.number, order_id=o.obj.id, merchant_id=self.merchant_ids[o.merchant],
                            channel_id=self.channel_ids[o.channel], warehouse_id=self.warehouse_ids[p.warehouse],
                            customer_id=o.obj.customer_id, status="cancelled" if p.status == "cancelled" else
                            ("in_transit" if p.tracking and p.tracking[2] != "label_created" else "authorized"),
                            created_at=p.created_at)
                p.obj.lines = [RmaLine(product_id=rl.oline.product.id, order_line_id=rl.oline.obj.id, quantity=rl.qty,
                                       reason_code=rl.reason) for rl in p.lines if rl.oline.obj is not None]
                if p.tracking:
                    number, carrier, tstatus = p.tracking
                    last = None if tstatus == "label_created" else p.created_at + timedelta(days=self.rng.uniform(0.5, 2))
                    p.obj.trackings = [CarrierTracking(tracking_number=number, carrier=carrier, status=tstatus,
                                                       last_event_at=min(last, self.now) if last else None)]
            s.add_all([p.obj for p in plans])
            s.flush()
            for p in plans:
                assert p.obj is not None
                p.id = p.obj.id

    # ----------------------------------------------------------------- 3. the dock, through the services

    def receiver(self, warehouse: str, *, open_parcel: bool = False) -> Actor:
        """Who opens parcels at this dock."""
        if warehouse == "3PL-DAL":
            return self.actors["partner"]
        if open_parcel:  # the demo worker starts with an empty hand; a supervisor helps on the dock
            return self.actors["supervisor2"]
        return self.actors["worker"] if self.rng.random() < 0.8 else self.actors["supervisor2"]

    def items_for(self, plan: RmaPlan) -> list[Item]:
        """What is physically in the parcel: the authorised units, bent by the plan's exception scenario."""
        rng = self.rng
        items: list[Item] = []
        for rl in plan.lines:
            p = rl.oline.product
            for i in range(rl.qty):
                items.append(Item(p, serial=rl.oline.serials[i] if p.serial else None, lot=self.lot() if p.lot else None,
                                  reason=rl.reason))
        if plan.scenario == "serial_mismatch":
            first = next(it for it in items if it.product.serial)
            first.serial = self.serial(first.product.serial_prefix)  # a different unit than the one shipped
        elif plan.scenario == "missing" and len(items) > 1:
            items.pop(rng.randrange(len(items)))
        elif plan.scenario == "missing":
            plan.scenario = "missing_all"
            items.clear()  # an RMA whose parcel held nothing we expected
        elif plan.scenario == "wrong_item":
            p = rng.choice(self._wrong_items(plan.order))
            items.insert(rng.randrange(len(items) + 1), Item(p, lot=self.lot() if p.lot else None))
        elif plan.scenario == "extra_item":
            ln = _extra_line(plan.order, [rl.oline for rl in plan.lines])
            if ln is not None:
                items.append(Item(ln.product, serial=ln.serials[0] if ln.product.serial else None,
                                  lot=self.lot() if ln.product.lot else None))
        elif plan.scenario == "over_return":
            rl = plan.lines[0]
            items.append(Item(rl.oline.product, lot=self.lot() if rl.oline.product.lot else None, reason=rl.reason))
        return items

    def receive(self, plan: RmaPlan) -> list[tuple[int, Item, Actor, list[str]]]:
        """Open the parcel, scan what is in it, and (unless it is still being worked) close it."""
        rng = self.rng
        actor = self.receiver(plan.warehouse, open_parcel=plan.status == "receiving")
        codes = [plan.number, plan.order.number] + ([plan.tracking[0]] * 2 if plan.tracking else [])
        code = rng.choice(codes)
        r = open_parcel(self.session, actor, code=code, warehouse_id=self.warehouse_ids[plan.warehouse],
                        idempotency_key=self.key())
        if r.rma_id != plan.id:
            raise RuntimeError(f"demo parcel {code} matched the wrong return: {r}")
        items = self.items_for(plan)
        if plan.status == "receiving":
            items = items[: max(1, len(items) // 2)]
        units = []
        for it in items:
            res = scan_item(self.session, actor, parcel_id=r.parcel_id, product_id=it.product.id, serial=it.serial,
                            lot=it.lot, idempotency_key=self.key())
            units.append((res.unit_id, it, actor, list(res.exceptions)))
        if plan.status == "closed":
            close_parcel(self.session, actor, parcel_id=r.parcel_id, idempotency_key=self.key())
        return units

    def inspect_and_dispose(self, unit_id: int, item: Item, receiver: Actor, exceptions: list[str]) -> None:
        """Grade the unit, then confirm what the rules decide (a supervisor overrides now and then)."""
        rng = self.rng
        sup = self.actors["supervisor"]
        inspector = receiver
        if receiver.role != "partner" and item.product.value > 300 and rng.random() < 0.35:
            inspector = sup  # the lead looks at high-value units herself
        grade, packaging = _grade(rng, item.product, item.reason)
        answers, notes = _answers(rng, item.product.category, self.checklists[item.product.category], grade, packaging)
        if "over_return" in exceptions:
            notes = "More units in the parcel than the customer bought."
        record_inspection(self.session, inspector, unit_id=unit_id, grade=grade, packaging=packaging, answers=answers,
                          notes=notes, idempotency_key=self.key())
        override, why, disposer = None, None, inspector
        if "over_return" in exceptions:
            # More came back than was bought: a supervisor holds the unit (and so its refund) whatever the rules say.
            disposer = inspector if inspector.role == "supervisor" else sup
            override, why = "quarantine", "Over-return: more units than the order shipped; hold until the customer is contacted"
        elif inspector.role == "worker" and self.overrides_left > 0 and item.product.category == "electronics":
            unit = self.session.get(ReturnUnit, unit_id)
            decision = preview(self.session, inspector, unit) if unit is not None else None
            self.session.rollback()
            if decision is not None and decision.rule_position == 3 and grade == "B":
                override, why, disposer = "refurbish", "Cosmetic scuffs only: the refurb bench regrades it as open box", sup
                self.overrides_left -= 1
        confirm_disposition(self.session, disposer, unit_id=unit_id, idempotency_key=self.key(), policy=self.policy,
                            override=override, override_reason=why)

    def arrival(self, plan: RmaPlan) -> datetime:
        """When a parcel reaches the dock: two to five days after the return was authorised, in working
        hours; the backlog and the parcels being worked arrived in the last days."""
        rng = self.rng
        assert plan.created_at is not None
        if plan.backlog or plan.status == "receiving":
            moment = self.now - timedelta(hours=rng.uniform(1, 100 if plan.backlog else 20))
        else:
            day = plan.created_at + timedelta(days=rng.uniform(2, 5))
            moment = min(day.replace(hour=rng.choice((7, 8, 9, 10, 11, 13, 14, 15)), minute=rng.randint(0, 59)),
                         self.now - timedelta(hours=rng.uniform(2, 30)))
        return max(moment, plan.created_at + timedelta(minutes=50))

    def graded(self, arrived: datetime) -> datetime:
        """When a unit received at `arrived` is graded: within the shift, or up to two days later."""
        return min(arrived + timedelta(hours=self.rng.choice((0.3, 1, 2, 5, 20, 26, 48))), self.now - timedelta(minutes=30))

    def later(self, since: datetime | None, *, days: tuple[float, float]) -> datetime:
        """A moment some days after `since` (SQLite reads it back naive), never in the future."""
        start = as_utc(since) or self.now
        return min(start + timedelta(days=self.rng.uniform(*days)), self.now - timedelta(minutes=5))

    def dock(self, plans: list[RmaPlan]) -> None:
        """The dock's last 90 days, parcel by parcel as they arrived (each at its own moment: clock_at),
        with a few blind parcels in between."""
        rng = self.rng
        for plan in plans:
            if plan.status in ("receiving", "closed"):
                plan.arrives_at = self.arrival(plan)
        worked = sorted((p for p in plans if p.arrives_at), key=lambda p: p.arrives_at or self.now)
        blind_at = sorted(rng.sample(range(len(worked)), min(len(worked), self.count(3, 3))))
        blind_done = 0
        for i, plan in enumerate(worked):
            assert plan.arrives_at is not None
            while blind_done < len(blind_at) and blind_at[blind_done] <= i:
                with clock_at(plan.arrives_at - timedelta(minutes=20)):
                    self.blind_parcel(blind_done)
                blind_done += 1
            with clock_at(plan.arrives_at):
                units = self.receive(plan)
            if plan.backlog:
                continue
            if plan.status == "receiving":
                units = units[:1] if rng.random() < 0.5 else []  # the first item already graded
            with clock_at(self.graded(plan.arrives_at)):
                for unit_id, item, actor, exceptions in units:
                    if "over_return" in exceptions:
                        self.over_returned.add(unit_id)
                    self.inspect_and_dispose(unit_id, item, actor, exceptions)
        while blind_done < len(blind_at):
            with clock_at(self.now - timedelta(hours=rng.uniform(1, 6))):
                self.blind_parcel(blind_done)
            blind_done += 1

    def blind_parcel(self, i: int) -> None:
        """A parcel nobody can match: blind parcel, an unidentified_parcel exception, items on the dock."""
        rng = self.rng
        warehouse = "3PL-DAL" if i % 3 == 2 else "RNO1"
        actor = self.actors["partner" if warehouse == "3PL-DAL" else "worker"]
        code = ups_tracking(rng, "Q9X4M2") if i % 2 == 0 else f"TBA{rng.randint(10**11, 10**12 - 1)}"
        r = open_parcel(self.session, actor, code=code, warehouse_id=self.warehouse_ids[warehouse],
                        idempotency_key=self.key(), blind=True)
        merchant = PARTNER_MERCHANT if warehouse == "3PL-DAL" else rng.choice(("NWO", "GLOW"))
        choices = [p for p in self.products if p.merchant == merchant and not p.serial]
        for p in rng.sample(choices, rng.randint(1, 2)):
            scan_item(self.session, actor, parcel_id=r.parcel_id, product_id=p.id,
                      lot=self.lot() if p.lot else None, idempotency_key=self.key())
        close_parcel(self.session, actor, parcel_id=r.parcel_id, idempotency_key=self.key())

    # ----------------------------------------------------------------- 4. the desk: refunds, quarantine

    def desk(self) -> None:
        """The supervisors' and finance's part of the day."""
        self.decide_refunds()
        self.finance_pays()
        self.work_quarantine()

    def decide_refunds(self) -> None:
        """Supervisors work the approval queue (never their own inspection or override); some stay waiting."""
        s, rng = self.session, self.rng
        sup, sup2 = self.actors["supervisor"], self.actors["supervisor2"]
        pending = s.execute(
            select(RefundTrigger.id, RefundTrigger.unit_id, RefundTrigger.inspected_by_id, RefundTrigger.override_by_id,
                   RefundTrigger.hold_reasons, RefundTrigger.paid_amount, ReturnUnit.decision_rule, Product.category,
                   RefundTrigger.pending_since)
            .join(ReturnUnit, ReturnUnit.id == RefundTrigger.unit_id).join(Product, Product.id == ReturnUnit.product_id)
            .where(RefundTrigger.status == "pending_approval").order_by(RefundTrigger.id)).all()
        s.rollback()
        for row in pending:
            eligible = [a for a in (sup, sup2) if a.id not in (row.inspected_by_id, row.override_by_id)]  # four eyes
            if not eligible:
                continue
            since = as_utc(row.pending_since) or self.now
            with clock_at(min(since + timedelta(hours=rng.choice((1, 3, 8, 22, 50))), self.now - timedelta(minutes=10))):
                self.decide_refund(row, eligible)

    def decide_refund(self, row: Any, eligible: list[Actor]) -> None:
        """One supervisor's decision on a held refund (or none: it stays waiting)."""
        rng = self.rng
        who = eligible[0] if len(eligible) == 1 else rng.choice(eligible)
        hold = " ".join(row.hold_reasons or [])
        rule = row.decision_rule or ""
        roll = rng.random()
        less_15 = (Decimal(row.paid_amount) * Decimal("0.85")).quantize(CENTS, rounding=ROUND_HALF_UP)
        # (approve?, amount or None: as computed, reason), or None: it stays waiting
        decision: tuple[bool, Decimal | None, str] | None = None
        if row.unit_id in self.over_returned:
            decision = (False, None, "Over-return: the customer sent more units than were bought; no refund for the extra unit.")
        elif "serial mismatch" in hold:
            if roll < 0.6:
                decision = (False, None, "The serial does not match the device we shipped: no refund; unit held for the fraud team.")
        elif "overridden" in hold:
            if roll < 0.5:
                decision = (True, less_15, "Agree with the override: cosmetic only; refund less the 15% open-box fee.")
        elif "prior returns" in rule:
            if roll < 0.35:
                decision = (True, None, "Item checked and resellable: refund once, account flagged for review.")
            elif roll < 0.65:
                decision = (False, None, "Return-abuse policy: the item shows use; refund refused, customer informed.")
        elif "damaged in transit" in rule:
            if roll < 0.6:
                decision = (True, None, "Carrier claim filed for the damage: the customer is refunded in full.")
        elif roll < 0.45:
            decision = (True, None, "Photos and grade checked: refund as the rules computed it.")
        elif roll < 0.7 and row.category == "electronics":
            decision = (True, less_15, "Charger and cable missing from the box: 15% deducted, customer informed.")
        if decision is None:
            return
        approve, amount, reason = decision
        if approve:
            approve_refund(self.session, who, refund_id=row.id, amount=amount, idempotency_key=self.key(), reason=reason)
        else:
            reject_refund(self.session, who, refund_id=row.id, idempotency_key=self.key(), reason=reason)

    def finance_pays(self) -> None:
        """The ERP acknowledges most released refunds; the newest wait for tonight's payment run."""
        s = self.session
        released = s.execute(select(RefundTrigger.id, RefundTrigger.released_at).where(RefundTrigger.status == "released")
                             .order_by(RefundTrigger.released_at, RefundTrigger.id)).all()
        s.rollback()
        for n, (rid, at) in enumerate(released):
            if n < len(released) * 0.7 and n % 4 != 3:
                with clock_at(min((as_utc(at) or self.now) + timedelta(hours=20), self.now - timedelta(minutes=5))):
                    acknowledge_refund(s, FINANCE, refund_id=rid, payment_reference=f"PAY-{rid:06d}",
                                       idempotency_key=self.key())

    def work_quarantine(self) -> None:
        """A supervisor clears a few quarantined units, the bench finishes some refurbs, one unit goes on hold."""
        s = self.session
        sup = self.actors["supervisor"]
        wh_code = {v: k for k, v in self.warehouse_ids.items()}
        quarantined = s.execute(
            select(ReturnUnit.id, ReturnUnit.warehouse_id, ReturnUnit.grade, ReturnUnit.decision_rule, ReturnUnit.state_changed_at)
            .where(ReturnUnit.state == "quarantine", ReturnUnit.serial_status != "mismatch")
            .order_by(ReturnUnit.id)).all()
        s.rollback()
        quarantined = [q for q in quarantined if q.id not in self.over_returned]
        for q in quarantined[: len(quarantined) // 2][:4]:
            good = q.grade in ("A", "B")
            rule = q.decision_rule or ""
            if "damaged in transit" in rule:
                move = (("available", "stock", "Only the outer box was crushed: the item is fine, back to stock.") if good
                        else ("liquidation", "liquidation", "Carrier claim filed; sold for parts through liquidation."))
            elif "value over 300" in rule:
                move = {"B": ("refurbish", "refurbish", "Works; worn housing: sent to the refurb bench."),
                        "C": ("vendor_return", "vendor_return", "Fault covered by the vendor warranty: back to the vendor."),
                        }.get(q.grade or "", ("disposed", "scrap", "Beyond repair: battery swollen, scrapped safely."))
            else:
                move = (("available", "stock", "Inspected again: clean and complete, back to stock.") if good
                        else ("liquidation", "liquidation", "Not resellable as new: sold through liquidation."))
            state, loc_type, why = move
            with clock_at(self.later(q.state_changed_at, days=(1, 4))):
                transition_unit(s, sup, unit_id=q.id, to_state=state, reason=why, idempotency_key=self.key(),
                                to_location_id=self.location_ids[(wh_code[q.warehouse_id], loc_type)])
        refurbishing = s.execute(select(ReturnUnit.id, ReturnUnit.warehouse_id, ReturnUnit.state_changed_at)
                                 .where(ReturnUnit.state == "refurbish")
                                 .order_by(ReturnUnit.id)).all()
        s.rollback()
        for uid, wid, changed in refurbishing[: len(refurbishing) // 2][:2]:
            actor = self.actors["partner"] if wh_code[wid] == "3PL-DAL" else self.actors["worker"]
            with clock_at(self.later(changed, days=(2, 6))):
                transition_unit(s, actor, unit_id=uid, to_state="available", reason="Refurbished and tested: restocked.",
                                idempotency_key=self.key(), to_location_id=self.location_ids[(wh_code[wid], "stock")])
        available = s.execute(select(ReturnUnit.id, ReturnUnit.warehouse_id).where(ReturnUnit.state == "available")
                              .order_by(ReturnUnit.id)).all()
        s.rollback()
        if len(available) > 3:
            uid, wid = available[len(available) // 3]
            transition_unit(s, sup, unit_id=uid, to_state="quarantine", idempotency_key=self.key(),
                            reason="Hold: the customer opened a chargeback on this order.",
                            to_location_id=self.location_ids[(wh_code[wid], "quarantine")])

    # ----------------------------------------------------------------- 5. reconciliation
    def reconcile(self) -> None:
        """The 3PL sends its stock of 3PL-DAL as of now: one unit it cannot find (a supervisor marks it
        missing through the ledger, a second one approving above the threshold) and one it counts
        twice; the rest match."""
        from app.catalog.models import Merchant, Product, Warehouse
        from app.reconciliation import queries as recon_queries
        from app.reconciliation import services as recon
        from app.reconciliation.models import ReconVariance

        s = self.session
        sup, sup2, partner = self.actors["supervisor"], self.actors["supervisor2"], self.actors["partner"]
        wid = self.warehouse_ids["3PL-DAL"]
        org = s.scalar(select(Warehouse.partner_org_id).where(Warehouse.id == wid))
        buckets = {"available": "SELLABLE", "quarantine": "HOLD", "received": "INBOUND", "refurbish": "REWORK"}
        source = recon.save_source(s, sup, code="FASTLANE-WMS", name="FastLane WMS (Dallas)", partner_org_id=org,
                                   mapping="\n".join(f"{b} = {st}" for st, b in buckets.items()), idempotency_key=self.key())
        t = utcnow()
        held = sorted((k, n) for k, n in recon_queries.balance_at(s, t, [wid]).items() if k[3] in buckets)
        skus = dict(s.execute(select(Product.id, Product.sku)).all())
        merchants = dict(s.execute(select(Merchant.id, Merchant.code)).all())
        s.rollback()
        if not held:
            return
        rows = ["warehouse,merchant,sku,bucket,quantity"]
        for i, ((_w, m, p, st), n) in enumerate(held):
            n += -1 if i == 0 else 1 if i == len(held) - 1 else 0  # one lost, one counted twice
            rows.append(f"3PL-DAL,{merchants.get(m, '')},{skus[p]},{buckets[st]},{n}")
        kept = recon.upload_snapshot(s, partner, source_id=source.id, as_of=t.isoformat(), filename="fastlane-dal-stock.csv",
                                     content=("\n".join(rows) + "\n").encode(), idempotency_key=self.key())
        recon.accept_snapshot(s, partner, snapshot_id=kept.id, confirm_zero_out=True, idempotency_key=self.key())
        short = s.scalars(select(ReconVariance).where(ReconVariance.snapshot_id == kept.id, ReconVariance.kind == "short")
                          .order_by(ReconVariance.id)).first()
        s.rollback()
        if short is None or not short.details.get("units"):
            return
        lost = recon.correct_unit(s, sup, variance_id=short.id, lpn=short.details["units"][0], found=False,
                                  reason="Not on its shelf at the partner's count, nor in the bins around it.",
                                  threshold=_policy().approval_threshold, idempotency_key=self.key())
        if lost.status == "pending":
            recon.decide_correction(s, sup2, correction_id=lost.id, approve=True, reason="Checked the count sheet.",
                                    idempotency_key=self.key())
        recon.resolve_variance(s, sup, variance_id=short.id, owner_id=sup.id, resolution="lost_unit",
                               notes="Searched the aisle; written off as missing.", expected_version=1,
                               idempotency_key=self.key())

    # ----------------------------------------------------------------- 6. a kit and its returns

    def kits(self) -> None:
        """The camera kit (the admin lists its components in the console) and two of its returns to
        Reno: one inspected with its charger missing (a deduction, and the return flagged), one just
        received, waiting in the inspection queue with a check per component on the handheld."""
        s = self.session
        sku, name, value, prefix = KIT
        with unit_of_work(s):
            kit = Product(sku=sku, name=name, category="electronics", unit_value=Decimal(value), serial_tracked=True,
                          merchant_id=self.merchant_ids["VOLT"],
                          barcodes=[ProductBarcode(code=_gtin14(with_check("08451200090")), kind="upc")])
            customer_ids = list(s.scalars(select(Customer.id).where(Customer.external_ref.in_(("C-10005", "C-10006")))
                                          .order_by(Customer.external_ref)))
            s.add(kit)
            s.flush()
            kit_id = kit.id
            plans = []
            for i, customer_id in enumerate(customer_ids, start=1):
                serial = self.serial(prefix)
                order = Order(number=f"SO-{990000 + i}", merchant_id=self.merchant_ids["VOLT"], channel_id=self.channel_ids["web"],
                              customer_id=customer_id, placed_at=self.now - timedelta(days=9 + i), currency="USD",
                              lines=[OrderLine(product_id=kit_id, quantity=1, unit_price=Decimal("849.00"),
                                               serials=[ShippedSerial(serial=serial)])])
                s.add(order)
                s.flush()
                rma = Rma(number=f"RMA-{990000 + i}", order_id=order.id, merchant_id=self.merchant_ids["VOLT"],
                          channel_id=self.channel_ids["web"], warehouse_id=self.warehouse_ids["RNO1"], customer_id=customer_id,
                          status="in_transit", created_at=self.now - timedelta(days=4 + i),
                          lines=[RmaLine(product_id=kit_id, order_line_id=order.lines[0].id, quantity=1,
                                         reason_code="not_as_described")])
                s.add(rma)
                s.flush()
                plans.append((rma.number, rma.id, serial))
        save_components(s, self.actors["admin"], product_id=kit_id, text=KIT_COMPONENTS, idempotency_key=self.key())
        worker = self.actors["worker"]
        for i, (number, rma_id, serial) in enumerate(plans):
            with clock_at(self.now - timedelta(hours=30 - i * 26)):
                r = open_parcel(s, worker, code=number, warehouse_id=self.warehouse_ids["RNO1"], idempotency_key=self.key())
                if r.rma_id != rma_id:
                    raise RuntimeError(f"demo parcel {number} matched the wrong return: {r}")
                unit = scan_item(s, worker, parcel_id=r.parcel_id, product_id=kit_id, serial=serial, idempotency_key=self.key())
                close_parcel(s, worker, parcel_id=r.parcel_id, idempotency_key=self.key())
            if i == 0:  # inspected: the body and lens are there, the charger is not
                with clock_at(self.now - timedelta(hours=26)):
                    answers = {k: True for k in self.checklists["electronics"]}
                    answers.update({"part_1": True, "part_2": True, "part_3": False})
                    record_inspection(s, worker, unit_id=unit.unit_id, grade="B", packaging="opened", answers=answers,
                                      notes="Charger missing from the box; camera and lens fine.", idempotency_key=self.key())

    def second_lives(self) -> None:
        """Two serials that came back before, received at Reno today: a phone restocked after one
        return, sold again and returned by its new buyer (flagged "returned before", for information:
        it was resold on this order), and one received on a return whose order never shipped it,
        because it went to another customer's order (flagged "possible swap": its refund waits for a
        supervisor who did not inspect it)."""
        s = self.session
        sold = s.execute(select(ReturnUnit.product_id, ReturnUnit.serial, ReturnUnit.received_at)
                         .join(Product, Product.id == ReturnUnit.product_id)
                         .where(ReturnUnit.state == "available", ReturnUnit.serial.is_not(None),
                                Product.merchant_id == self.merchant_ids["VOLT"], Product.serial_tracked.is_(True))
                         .order_by(ReturnUnit.id)).first()
        other = s.execute(select(OrderLine.product_id, ShippedSerial.serial, OrderLine.unit_price)
                          .join(ShippedSerial, ShippedSerial.order_line_id == OrderLine.id)
                          .join(Product, Product.id == OrderLine.product_id)
                          .where(Product.merchant_id == self.merchant_ids["VOLT"],
                                 ~ShippedSerial.serial.in_(select(ReturnUnit.serial).where(ReturnUnit.serial.is_not(None))))
                          .order_by(ShippedSerial.id)).first()
        customers = list(s.scalars(select(Customer.id).where(Customer.external_ref.in_(("C-10007", "C-10008")))
                                   .order_by(Customer.external_ref)))
        s.rollback()
        if sold is None or other is None or len(customers) < 2:
            raise RuntimeError("the demo has no restocked serial or no shipped serial to give a second life")
        price = s.scalar(select(Product.unit_value).where(Product.id == sold.product_id))
        s.rollback()
        cases = [(1, customers[0], sold.product_id, sold.serial, sold.serial, price, self.now - timedelta(days=6)),
                 (2, customers[1], other.product_id, f"{other.serial}-X", other.serial, other.unit_price,
                  self.now - timedelta(days=12))]
        worker = self.actors["worker"]
        for i, customer_id, product_id, shipped, scanned, unit_price, placed in cases:
            with unit_of_work(s):
                order = Order(number=f"SO-{980000 + i}", merchant_id=self.merchant_ids["VOLT"], channel_id=self.channel_ids["web"],
                              customer_id=customer_id, placed_at=placed, currency="USD",
                              lines=[OrderLine(product_id=product_id, quantity=1, unit_price=unit_price,
                                               serials=[ShippedSerial(serial=shipped)])])
                s.add(order)
                s.flush()
                rma = Rma(number=f"RMA-{980000 + i}", order_id=order.id, merchant_id=self.merchant_ids["VOLT"],
                          channel_id=self.channel_ids["web"], warehouse_id=self.warehouse_ids["RNO1"], customer_id=customer_id,
                          status="in_transit", created_at=placed + timedelta(days=3),
                          lines=[RmaLine(product_id=product_id, order_line_id=order.lines[0].id, quantity=1,
                                         reason_code="defective")])
                s.add(rma)
                s.flush()
                number = rma.number
            with clock_at(self.now - timedelta(hours=3 - i)):
                r = open_parcel(s, worker, code=number, warehouse_id=self.warehouse_ids["RNO1"], idempotency_key=self.key())
                scan_item(s, worker, parcel_id=r.parcel_id, product_id=product_id, serial=scanned, idempotency_key=self.key())
                close_parcel(s, worker, parcel_id=r.parcel_id, idempotency_key=self.key())


# --------------------------------------------------------------------------- small pure helpers


# A kit: a camera sold with its lens and a charger of the catalog (each checked on inspection; a
# missing one takes its share off the refund and flags the return).
KIT = ("VL-SNAPZ5-KIT", "Voltline Snap Z5 camera kit (body, 18-55 mm lens, charger)", "899.00", "VSZ5")
KIT_COMPONENTS = "Snap Z5 camera body | 1 | 60%\nSnap 18-55 mm lens | 1 | 25%\nVL-CHG-30W-USBC | 1"


def _gtin14(code: str) -> str:
    """The stored form of a printed barcode; refuses a demo code with a bad check digit."""
    gtin = normalize_gtin(code)
    if gtin is None:
        raise ValueError(f"bad check digit in demo barcode {code}")
    return gtin


def _conditions_json(conditions: Any) -> dict[str, Any]:
    """A rule's normalised conditions as JSON (tuples -> lists, money -> strings)."""
    out: dict[str, Any] = {}
    for k, v in dict(conditions).items():
        if isinstance(v, tuple):
            v = list(v)
        elif isinstance(v, Decimal):
            v = format(v, "f")
        out[k] = v
    return out


def _rule_json(rule: rules_domain.Rule) -> dict[str, Any]:
    """One rule as the rule-set snapshot stores it."""
    return {"position": rule.position, "name": rule.name, "conditions": _conditions_json(rule.conditions),
            "disposition": rule.disposition, "refund_action": rule.refund_action,
            "restocking_fee_pct": format(rule.restocking_fee_pct, "f"), "enabled": rule.enabled}


def _weighted(rng: Random, weights: dict[str, int]) -> str:
    """A key drawn by weight."""
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _extra_line(order: OSpec, returned: list[OLine]) -> OLine | None:
    """The order line that arrives in the parcel without being authorised (non-serial first)."""
    rest = [ln for ln in order.lines if all(ln is not r for r in returned)]
    rest.sort(key=lambda ln: ln.product.serial)
    return rest[0] if rest else None


def _grade(rng: Random, p: ProdSpec, reason: str) -> tuple[str, str]:
    """A believable (grade, packaging) for what came back and why."""
    if reason == "damaged_in_transit":
        return rng.choice(("B", "C", "C", "D")), "damaged"
    if p.category == "health_beauty":
        if rng.random() < 0.4:
            return rng.choice(("A", "A", "B")), rng.choice(("opened", "opened", "damaged"))
        return rng.choices(("A", "B", "C"), weights=(70, 15, 15))[0], "sealed"
    if p.category == "apparel":
        grade = rng.choices(("A", "B", "C", "D"), weights=(50, 22, 20, 8))[0]
        return grade, rng.choices(("opened", "sealed", "missing"), weights=(70, 20, 10))[0]
    if reason == "defective":
        grade = rng.choices(("A", "B", "C", "D"), weights=(45, 30, 18, 7))[0]
    else:
        grade = rng.choices(("A", "B", "C", "D"), weights=(58, 24, 11, 7))[0]
    packaging = rng.choices(("sealed", "opened", "missing"), weights=(30, 60, 10))[0]
    return grade, packaging


NOTES = {
    "electronics": {"A": [None, "Like new, protective film still on."], "B": ["Light scuffs on the back.", "Box opened, minor wear."],
                    "C": ["Cracked corner on the screen glass.", "Deep scratches; charger missing."],
                    "D": ["Does not power on; signs of liquid damage.", "Bent frame, battery swollen."]},
    "apparel": {"A": [None, "Tags on, folded as shipped."], "B": ["Tags removed, otherwise unworn."],
                "C": ["Small stain on the cuff.", "Pulled thread at the seam."], "D": ["Torn and washed; strong odour."]},
    "health_beauty": {"A": [None], "B": ["Outer carton scuffed."], "C": ["Pump broken, product intact."],
                      "D": ["Leaked in the bag."]},
}


def _answers(rng: Random, category: str, items: list[str], grade: str, packaging: str) -> tuple[dict[str, bool], str | None]:
    """Answers to a category's checklist (its item keys) and a note that agree with the grade and packaging."""
    fails = {"A": 0, "B": 1, "C": 2, "D": 3}[grade]
    failed = set(rng.sample(items, min(fails, len(items))))
    answers = {k: k not in failed for k in items}
    if category == "health_beauty":
        answers["seal_intact"] = packaging == "sealed"
        answers["unused"] = packaging == "sealed"
    notes = rng.choice(NOTES[category][grade])
    return answers, notes


# --------------------------------------------------------------------------- logins file and entry point


def _read_logins(path: Path) -> list[Login]:
    """The logins kept by the first seed (missing file: none)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#"):
            out.append((parts[0], parts[1], parts[2]))
    return out


def _signs_in(session: Session, login: Login) -> bool:
    """True when this kept login still works on this database."""
    username, password, role = login
    user = session.scalars(select(User).where(User.username == username)).first()
    return user is not None and user.role == role and user.active and user.check_password(password)


def _write_logins(path: Path, logins: list[Login]) -> None:
    """Keep the logins for later `make run`s, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        for username, password, role in logins:
            fh.write(f"{username} {password} {role}\n")
    os.chmod(path, 0o600)


def _policy() -> RefundPolicy:
    """The refund policy of the running app (or of the environment, outside one)."""
    try:
        from flask import current_app

        return RefundPolicy.from_config(current_app.config)
    except RuntimeError:
        return RefundPolicy.from_config({"REFUND_APPROVAL_THRESHOLD": os.environ.get("DOCKHAND_REFUND_THRESHOLD", "250.00")})


def seed_demo(session: Session, *, if_empty: bool, instance_path: str, scale: float = 1.0) -> list[Login]:
    """Fill an empty database with the demo and return the logins (username, password, role).

    if_empty: when any user exists, change nothing and return the logins kept in
    `<instance_path>/demo-logins.txt`. Without it, a database that has users is refused.
    `scale` shrinks the volume (orders, RMAs) for quick tests; 1.0 is the full demo.
    """
    logins_path = Path(instance_path) / LOGINS_FILE
    users = session.scalar(select(func.count()).select_from(User)) or 0
    anything = users or session.scalar(select(func.count()).select_from(Warehouse)) or 0
    session.rollback()
    if users and if_empty:
        # Only print what still signs in: the file belongs to the instance folder, not to the database.
        logins = [login for login in _read_logins(logins_path) if _signs_in(session, login)]
        session.rollback()
        if not logins:
            click.echo(f"The database already has users; {logins_path} holds no demo login that works on it.", err=True)
        return logins
    if anything:
        raise SeedError("The database already has data: seed-demo fills an empty database only "
                        "(use --if-empty to keep it, or point DATABASE_URL at a fresh database).")
    passwords = {username: secrets.token_urlsafe(9) for username, *_ in STAFF}
    seeder = Seeder(session, Random(42), _policy(), scale=scale)
    seeder.reference_data(passwords)
    seeder.checklist_history()
    seeder.integrations()
    plans = seeder.orders_and_rmas()
    seeder.dock(plans)
    seeder.desk()
    seeder.reconcile()
    seeder.kits()
    seeder.second_lives()
    seeder.grading_rules()
    logins = [(username, passwords[username], role) for username, role, *_ in STAFF]
    _write_logins(logins_path, logins)
    return logins
