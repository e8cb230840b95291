"""Customers, orders, shipped serials, return authorisations (RMAs) and carrier tracking."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.catalog.models import Merchant, Product, SalesChannel, Warehouse
from app.db import Base, Money, utcnow

RMA_STATUSES = ("authorized", "in_transit", "receiving", "closed", "cancelled")


class Customer(Base):
    """The buyer, kept to a name and an external reference: no contact data here."""

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    external_ref: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))


class Order(Base):
    """A sales order as the storefront shipped it."""

    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("sales_channels.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    lines: Mapped[list[OrderLine]] = relationship(back_populates="order", order_by="OrderLine.id")
    merchant: Mapped[Merchant] = relationship()
    channel: Mapped[SalesChannel] = relationship()
    customer: Mapped[Customer] = relationship()


class OrderLine(Base):
    """One SKU on an order, with the price actually paid per unit."""

    __tablename__ = "order_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Money)
    order: Mapped[Order] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()
    serials: Mapped[list[ShippedSerial]] = relationship(back_populates="order_line")


class ShippedSerial(Base):
    """A serial number that left the building on an order line."""

    __tablename__ = "shipped_serials"
    __table_args__ = (UniqueConstraint("order_line_id", "serial", name="uq_shipped_serials_line_serial"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"), index=True)
    serial: Mapped[str] = mapped_column(String(64), index=True)
    order_line: Mapped[OrderLine] = relationship(back_populates="serials")


class Rma(Base):
    """A return authorisation: what the customer said they would send back."""

    __tablename__ = "rmas"
    __table_args__ = (CheckConstraint(f"status IN {RMA_STATUSES!r}", name="status"),
                      # the dashboard: reasons by authorisation date, and the inbound forecast's open returns
                      Index("ix_rmas_created_at", "created_at"),
                      Index("ix_rmas_open", "status", postgresql_where=text("status IN ('authorized', 'in_transit')"),
                            sqlite_where=text("status IN ('authorized', 'in_transit')")))
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("sales_channels.id"))
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="authorized")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lines: Mapped[list[RmaLine]] = relationship(back_populates="rma", order_by="RmaLine.id")
    order: Mapped[Order | None] = relationship()
    merchant: Mapped[Merchant] = relationship()
    channel: Mapped[SalesChannel] = relationship()
    warehouse: Mapped[Warehouse] = relationship()
    customer: Mapped[Customer | None] = relationship()
    trackings: Mapped[list[CarrierTracking]] = relationship(back_populates="rma")


class RmaLine(Base):
    """An expected SKU and quantity with the customer's stated reason."""

    __tablename__ = "rma_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    rma_id: Mapped[int] = mapped_column(ForeignKey("rmas.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    order_line_id: Mapped[int | None] = mapped_column(ForeignKey("order_lines.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    reason_code: Mapped[str] = mapped_column(String(32))
    # What the customer asked for (app.refunds.domain.RESOLUTIONS); an exchange names the SKU to ship.
    resolution: Mapped[str] = mapped_column(String(16), default="refund", server_default="refund")
    exchange_sku: Mapped[str | None] = mapped_column(String(64))
    rma: Mapped[Rma] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()
    order_line: Mapped[OrderLine | None] = relationship()


class CarrierTracking(Base):
    """A carrier tracking number on a return parcel, with the carrier's last status."""

    __tablename__ = "carrier_trackings"
    id: Mapped[int] = mapped_column(primary_key=True)
    tracking_number: Mapped[str] = mapped_column(String(64), unique=True)
    carrier: Mapped[str] = mapped_column(String(32), index=True)  # the dashboard's carrier filter: a skip scan
    rma_id: Mapped[int | None] = mapped_column(ForeignKey("rmas.id"), index=True)
    status: Mapped[str] = mapped_column(String(32), default="label_created")
    last_event_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rma: Mapped[Rma | None] = relationship(back_populates="trackings")
