"""The console's settings: what each means, its bounds, and how a typed value is read. Pure."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from app.errors import ValidationFailed


@dataclass(frozen=True)
class SettingSpec:
    """One setting: its label, unit, bounds and the app.config key that gives its default."""

    name: str
    label: str
    help: str
    kind: str  # "decimal" or "int"
    low: Decimal
    high: Decimal
    config_key: str | None = None
    default: str | None = None

    def parse(self, raw: str | None, *, ceiling: Decimal | None = None) -> str:
        """The value as stored (text), or ValidationFailed saying what is allowed."""
        text = (raw or "").strip()
        high = min(self.high, ceiling) if ceiling is not None else self.high
        try:
            value = Decimal(text)
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or (self.kind == "int" and value != value.to_integral_value()):
            raise ValidationFailed(f"{self.label}: give a {'whole number' if self.kind == 'int' else 'number'} "
                                   f"from {self.low} to {high}.")
        if not self.low <= value <= high:
            raise ValidationFailed(f"{self.label}: give a value from {self.low} to {high}.")
        if self.kind == "int":
            return str(int(value))
        places = 2 if self.name != "restocking_fee_pct" else 4
        return format(value.quantize(Decimal(1).scaleb(-places)), "f")


SETTINGS: dict[str, SettingSpec] = {s.name: s for s in (
    SettingSpec("restocking_fee_pct", "Restocking fee of a new rule",
                "The share of the price kept when a rule refunds less the restocking fee (0.15 is 15 %); "
                "each rule keeps its own once saved.", "decimal", Decimal("0"), Decimal("1"), default="0.15"),
    SettingSpec("queue_ageing_hours", "Queue ageing (hours)",
                "After how long a unit in quarantine, an open exception or a held refund counts as ageing on the desk.",
                "int", Decimal(1), Decimal(24 * 60), config_key="QUEUE_AGEING_HOURS"),
    SettingSpec("photo_max_mb", "Largest photo (MB)",
                "Bigger photos are refused on the handheld. At most the server's ceiling (DOCKHAND_PHOTO_MAX_BYTES).",
                "decimal", Decimal("0.5"), Decimal(1024), config_key="PHOTO_MAX_BYTES"),
    # The dashboard's recovered value (app/reports): restock counts at full value, disposal at zero.
    SettingSpec("recovery_rate_refurbish", "Recovery rate: refurbish",
                "The share of a unit's value recovered when it is refurbished (0.60 is 60 %), for the dashboard.",
                "decimal", Decimal("0"), Decimal("1"), default="0.60"),
    SettingSpec("recovery_rate_liquidation", "Recovery rate: liquidation",
                "The share of a unit's value recovered when it is liquidated, for the dashboard.",
                "decimal", Decimal("0"), Decimal("1"), default="0.20"),
    # The anomaly flag of a customer far above the merchant's norm (app/anomalies/domain.py).
    SettingSpec("anomaly_customer_factor", "Customer far above the norm: how many times",
                "A customer's returns are flagged, and their refunds held for a supervisor, when their return rate "
                "(returns over orders) or the value they ask back is more than this many times the merchant's "
                "(its return rate; the value asked back per returning customer). 3 is three times.",
                "decimal", Decimal("1"), Decimal("100"), default="3"),
    SettingSpec("anomaly_customer_min_returns", "Customer far above the norm: fewest returns",
                "A customer is flagged only from this many returns with the merchant (this one counted): one "
                "unlucky order is not a pattern.", "int", Decimal(1), Decimal(1000), default="3"),
    SettingSpec("recovery_rate_vendor_return", "Recovery rate: return to vendor",
                "The share of a unit's value the vendor credits when it goes back, for the dashboard.",
                "decimal", Decimal("0"), Decimal("1"), default="0.80"),
)}

THRESHOLD_SCOPES = ("all", "merchant", "channel")
THRESHOLD_LOW, THRESHOLD_HIGH = Decimal("0"), Decimal("1000000")


def parse_threshold(raw: str | None) -> Decimal:
    """A refund approval threshold: an amount from 0 to 1,000,000 with at most two decimals."""
    text = (raw or "").strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or not THRESHOLD_LOW <= value <= THRESHOLD_HIGH \
            or value != value.quantize(Decimal("0.01")):
        raise ValidationFailed("A refund threshold is an amount from 0 to 1000000, with at most two decimals (250.00).")
    return value.quantize(Decimal("0.01"))


def scope_key(scope: str, target_id: int | None) -> str:
    """How a threshold's scope is stored: "all", "merchant:3", "channel:2"."""
    if scope == "all":
        return "all"
    if scope not in THRESHOLD_SCOPES or not target_id:
        raise ValidationFailed("Pick everything, one merchant or one sales channel.")
    return f"{scope}:{target_id}"
