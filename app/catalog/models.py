"""Warehouses, locations, products and their barcodes, merchants, channels, partners."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, Column, ForeignKey, Integer, Numeric, String, Table, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, Money

LOCATION_TYPES = ("dock", "inspection", "stock", "quarantine", "refurbish", "vendor_return", "liquidation", "scrap")

partner_org_merchants = Table(
    "partner_org_merchants",
    Base.metadata,
    Column("partner_org_id", ForeignKey("partner_orgs.id", ondelete="CASCADE"), primary_key=True),
    Column("merchant_id", ForeignKey("merchants.id", ondelete="CASCADE"), primary_key=True),
)


class PartnerOrg(Base):
    """A 3PL that runs warehouses on behalf of some merchants."""

    __tablename__ = "partner_orgs"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    merchants: Mapped[list[Merchant]] = relationship(secondary=partner_org_merchants)


class Merchant(Base):
    """A brand whose goods come back."""

    __tablename__ = "merchants"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))


class SalesChannel(Base):
    """Where the order was sold: web store, marketplace, retail store."""

    __tablename__ = "sales_channels"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))


class Warehouse(Base):
    """A building with a returns dock; partner_org_id set when a 3PL runs it."""

    __tablename__ = "warehouses"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    partner_org_id: Mapped[int | None] = mapped_column(ForeignKey("partner_orgs.id"), index=True)
    # A retired warehouse is offered to nobody for receiving; its history stays.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    partner_org: Mapped[PartnerOrg | None] = relationship()


class Location(Base):
    """A place in a warehouse: a dock door, an inspection bench, a quarantine cage, ..."""

    __tablename__ = "locations"
    __table_args__ = (
        UniqueConstraint("warehouse_id", "code", name="uq_locations_warehouse_code"),
        CheckConstraint(f"type IN {LOCATION_TYPES!r}", name="type"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"))
    code: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(16))
    barcode: Mapped[str] = mapped_column(String(64), unique=True)
    warehouse: Mapped[Warehouse] = relationship()


class Category(Base):
    """A product category (its code is what products carry); a retired one is offered for no new
    product but keeps the products it has. Codes never change and are never deleted."""

    __tablename__ = "categories"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class Product(Base):
    """A sellable SKU."""

    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32), index=True)
    unit_value: Mapped[Decimal] = mapped_column(Money)
    serial_tracked: Mapped[bool] = mapped_column(Boolean, default=False)
    lot_tracked: Mapped[bool] = mapped_column(Boolean, default=False)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    # A regraded unit may sell as another SKU (an open-box variant).
    open_box_product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))
    barcodes: Mapped[list[ProductBarcode]] = relationship(back_populates="product", cascade="all, delete-orphan")


class ProductComponent(Base):
    """One component of a kit (a product sold as several parts): a product of the catalog or a
    name, how many, and the share of the refund a missing one deducts (None: the component's value
    times its quantity over the kit's value). The inspection checks each one."""

    __tablename__ = "product_components"
    __table_args__ = (
        UniqueConstraint("kit_product_id", "position", name="uq_product_components_kit_position"),
        CheckConstraint("quantity BETWEEN 1 AND 999", name="quantity"),
        CheckConstraint("deduction_pct IS NULL OR (deduction_pct >= 0 AND deduction_pct <= 1)", name="deduction_pct"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kit_product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    position: Mapped[int] = mapped_column(Integer)
    component_product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    deduction_pct: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))


class ProductBarcode(Base):
    """A GTIN / UPC / EAN alias of a product, stored normalised (GTIN-14 for numeric codes)."""

    __tablename__ = "product_barcodes"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    product: Mapped[Product] = relationship(back_populates="barcodes")
