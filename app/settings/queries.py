"""Reading settings: a stored value, else the environment's default; refund thresholds."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from app.catalog.models import Merchant, SalesChannel
from app.orders.models import Rma
from app.settings.domain import SETTINGS, SettingSpec
from app.settings.models import RefundThreshold, Setting

MB = 1024 * 1024


def default_of(spec: SettingSpec, config: Mapping[str, Any]) -> str:
    """What a setting is when nothing is stored: the environment's value (app.config)."""
    if spec.config_key == "PHOTO_MAX_BYTES":
        return format(Decimal(config.get("PHOTO_MAX_BYTES", 15 * MB)) / MB, "f")
    if spec.config_key:
        return str(config.get(spec.config_key, spec.default))
    return spec.default or ""


def ceiling_of(spec: SettingSpec, config: Mapping[str, Any]) -> Decimal | None:
    """The highest value the server allows: a photo cannot be larger than the requests it accepts."""
    return Decimal(config.get("PHOTO_MAX_BYTES", 15 * MB)) / MB if spec.name == "photo_max_mb" else None


def setting(session: Session, name: str, config: Mapping[str, Any]) -> Decimal:
    """A setting's value now: the stored one, else the environment's default."""
    spec = SETTINGS[name]
    stored = session.scalar(select(Setting.value).where(Setting.name == name))
    return Decimal(stored if stored is not None else default_of(spec, config))


def photo_max_bytes(session: Session, config: Mapping[str, Any]) -> int:
    """The largest photo accepted now, in bytes (never above the server's ceiling)."""
    ceiling = int(config.get("PHOTO_MAX_BYTES", 15 * MB))
    return min(int(setting(session, "photo_max_mb", config) * MB), ceiling)


@dataclass(frozen=True)
class SettingRow:
    spec: SettingSpec
    stored: str | None
    default: str
    ceiling: Decimal | None

    @property
    def value(self) -> str:
        return self.stored if self.stored is not None else self.default


def settings_rows(session: Session, config: Mapping[str, Any]) -> list[SettingRow]:
    """Every console setting with its stored value (None: the default applies) and default."""
    stored = {name: value for name, value in session.execute(select(Setting.name, Setting.value))}
    return [SettingRow(spec, stored.get(name), default_of(spec, config), ceiling_of(spec, config))
            for name, spec in SETTINGS.items()]


def thresholds(session: Session) -> list[Any]:
    """Every stored refund threshold with the merchant's or channel's name: everything first."""
    return list(session.execute(
        select(RefundThreshold.id, RefundThreshold.scope, RefundThreshold.amount,
               func.coalesce(Merchant.name, SalesChannel.name).label("target"),
               RefundThreshold.merchant_id, RefundThreshold.channel_id)
        .outerjoin(Merchant, Merchant.id == RefundThreshold.merchant_id)
        .outerjoin(SalesChannel, SalesChannel.id == RefundThreshold.channel_id)
        .order_by(RefundThreshold.merchant_id.is_not(None), RefundThreshold.channel_id.is_not(None),
                  func.coalesce(Merchant.name, SalesChannel.name))).all())


def threshold_for_rma(rma_id: Any) -> ColumnElement[Any]:
    """The approval threshold stored for the return `rma_id` (a column or a value), as one SQL
    expression; NULL when none is stored (the environment's applies). The lower of its merchant's
    and its channel's when either is set, else the one for everything (also for a unit that came
    without a return)."""
    t, r = RefundThreshold.__table__, Rma.__table__.alias("threshold_rma")
    specific: Select[Any] = (select(func.min(t.c.amount))
                             .join_from(r, t, or_(t.c.merchant_id == r.c.merchant_id, t.c.channel_id == r.c.channel_id))
                             .where(r.c.id == rma_id))
    general: Select[Any] = select(t.c.amount).where(t.c.scope == "all")
    return func.coalesce(specific.scalar_subquery(), general.scalar_subquery())
