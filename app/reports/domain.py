"""The dashboard's rules, pure: each metric's one formula and date basis, the filters a request
may give, periods and trends, ageing buckets, recovered value, Pareto shares, spikes and the
inbound forecast. No Flask, no SQLAlchemy: the SQL in queries.py computes what these name."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from app.errors import DomainError


class BadFilter(DomainError):
    """A filter value the dashboard cannot use: answered 400 with what is allowed."""

    status_code = 400
    code = "bad_filter"


@dataclass(frozen=True)
class Metric:
    """One KPI: what it is, its formula in words, the date that places a row in a period, its
    unit, whether lower is better, and whether it is money (never shown to partners)."""

    key: str
    label: str
    formula: str
    basis: str
    unit: str
    lower_is_better: bool
    money: bool = False
    drill: str = "units"  # the list behind the figure: "units", "refunds" or "exceptions"


METRICS: tuple[Metric, ...] = (
    Metric("cycle_time", "Return cycle time",
           "mean over units of (inspected at − return authorised at), in days",
           "the unit's inspection time (inspected_at) falls in the period", "days", True),
    Metric("refund_latency", "Refund latency",
           "mean over refunds of (released at − unit received at), in hours",
           "the refund's release time (released_at) falls in the period", "hours", True, drill="refunds"),
    Metric("restock_latency", "Restock latency",
           "mean over units now restocked of (restocked at − received at), in hours",
           "the restock time (the unit's last state change into available) falls in the period", "hours", True),
    Metric("recovery_rate", "Recovery rate",
           "recovered value ÷ value paid, for units decided in the period (value: price paid, else list value; "
           "restock 100 %, refurbish, liquidation and return to vendor at the configured rates, disposal 0)",
           "the unit's inspection time falls in the period", "%", False, money=True),
    Metric("recovery_value", "Recovered value",
           "Σ value × rate of its disposition (restock 1, refurbish, liquidation, return to vendor configured, disposal 0)",
           "the unit's inspection time falls in the period", "$", False, money=True),
    Metric("quarantine_age", "Quarantine ageing",
           "mean age of the units in quarantine now (now − entered quarantine), in days",
           "a snapshot now: the dates do not filter it, and it has no period before to compare with", "days", True),
    Metric("exceptions", "Exception volume",
           "count of receiving exceptions opened",
           "the exception's opening time (opened_at) falls in the period", "", True, drill="exceptions"),
    Metric("units_per_hour", "Units per worker-hour",
           "units received ÷ worker-hours (a worker-hour: a clock hour in which that worker received at least one unit)",
           "the unit's receiving time (received_at) falls in the period", "units/h", False),
)
METRIC_KEYS = {m.key: m for m in METRICS}


def metrics_for(partner: bool) -> tuple[Metric, ...]:
    """The tiles a role sees: a partner sees no money."""
    return tuple(m for m in METRICS if not (partner and m.money))


# --------------------------------------------------------------------------- filters and periods

DEFAULT_DAYS = 28
MAX_DAYS = 366
DIMENSIONS = ("warehouse", "merchant", "channel", "category", "carrier")
_CODE = re.compile(r"^[A-Za-z0-9_.\- ]{1,64}$")


@dataclass(frozen=True)
class Filters:
    """What a dashboard page is about: the days from `start` to `end` (both included) and at most
    one code per dimension (None: all)."""

    start: date
    end: date
    warehouse: str | None = None
    merchant: str | None = None
    channel: str | None = None
    category: str | None = None
    carrier: str | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def since(self) -> datetime:
        """The period's first instant (UTC)."""
        return datetime.combine(self.start, time.min, tzinfo=timezone.utc)

    @property
    def until(self) -> datetime:
        """The instant after the period (UTC): the period is [since, until)."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=timezone.utc)

    def previous(self) -> Filters:
        """The period of the same length just before, with the same dimensions."""
        return replace(self, start=self.start - timedelta(days=self.days), end=self.start - timedelta(days=1))

    def args(self, **extra: object) -> dict[str, object]:
        """The filters as query arguments (for links and exports), with `extra` on top."""
        out: dict[str, object] = {"from": self.start.isoformat(), "to": self.end.isoformat()}
        out.update({d: getattr(self, d) for d in DIMENSIONS if getattr(self, d)})
        out.update({k: v for k, v in extra.items() if v is not None})
        return out

    @property
    def filtered(self) -> bool:
        return any(getattr(self, d) for d in DIMENSIONS)


def _date(raw: str, name: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadFilter(f"'{name}' must be a date written YYYY-MM-DD (such as 2026-11-30), not '{raw[:40]}'.") from None


def parse_filters(args: Mapping[str, str], today: date, choices: Mapping[str, Sequence[str]]) -> Filters:
    """The filters of a request, or BadFilter saying what is wrong. `choices` are the codes the
    actor may pick per dimension (a partner: only their own warehouses)."""
    end = _date(args["to"].strip(), "to") if (args.get("to") or "").strip() else today
    start = _date(args["from"].strip(), "from") if (args.get("from") or "").strip() else end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise BadFilter(f"The date range starts ({start}) after it ends ({end}): give 'from' before 'to'.")
    if (end - start).days + 1 > MAX_DAYS:
        raise BadFilter(f"The date range spans {(end - start).days + 1} days: at most {MAX_DAYS}.")
    if start < date(2000, 1, 1) or end > today + timedelta(days=MAX_DAYS):
        raise BadFilter("The date range must lie between 2000-01-01 and a year from today.")
    picked: dict[str, str | None] = {}
    for dim in DIMENSIONS:
        raw = (args.get(dim) or "").strip()
        if not raw:
            picked[dim] = None
            continue
        allowed = choices.get(dim, ())
        if not _CODE.match(raw) or raw not in allowed:
            shown = ", ".join(list(allowed)[:12]) or "none"
            raise BadFilter(f"There is no {dim} '{raw[:40]}' you can filter on. Pick one of: {shown}.")
        picked[dim] = raw
    return Filters(start, end, **picked)


# --------------------------------------------------------------------------- figures and trends

@dataclass(frozen=True)
class Figure:
    """One metric's value in the period and the period before (None: nothing to measure)."""

    metric: Metric
    value: Decimal | None
    previous: Decimal | None
    count: int = 0  # the rows behind the value

    @property
    def change(self) -> Decimal | None:
        """The change against the previous period, in the metric's unit."""
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def change_pct(self) -> Decimal | None:
        """The change as a share of the previous figure, in percent (None when that was 0)."""
        if self.change is None or not self.previous:
            return None
        return (self.change / abs(self.previous) * 100).quantize(Decimal("1"), ROUND_HALF_UP)

    @property
    def trend(self) -> str:
        """"better", "worse" or "same" (or "none" without both figures)."""
        if self.change is None:
            return "none"
        if self.change == 0:
            return "same"
        up = self.change > 0
        return "worse" if up == self.metric.lower_is_better else "better"


def mean(total: Decimal | float | None, count: int | None, places: str = "0.1") -> Decimal | None:
    """A mean rounded half up to `places`; None over no rows."""
    if not count or total is None:
        return None
    return (Decimal(str(total)) / Decimal(count)).quantize(Decimal(places), ROUND_HALF_UP)


def ratio(part: Decimal | float | int | None, whole: Decimal | float | int | None, places: str = "0.1",
          scale: int = 1) -> Decimal | None:
    """part ÷ whole × scale, rounded; None when the whole is 0."""
    if not whole or part is None:
        return None
    return (Decimal(str(part)) * scale / Decimal(str(whole))).quantize(Decimal(places), ROUND_HALF_UP)


# --------------------------------------------------------------------------- recovery

RECOVERY_STATES = ("available", "refurbish", "liquidation", "vendor_return", "disposed")
RECOVERY_LABELS = {"available": "Restock", "refurbish": "Refurbish", "liquidation": "Liquidation",
                   "vendor_return": "Return to vendor", "disposed": "Disposal"}
# The settings (app/settings/domain.py) that give the configurable rates.
RATE_SETTINGS = {"refurbish": "recovery_rate_refurbish", "liquidation": "recovery_rate_liquidation",
                 "vendor_return": "recovery_rate_vendor_return"}


def recovery_rates(configured: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """The rate of each disposition: restock at full value, disposal at zero, the rest configured."""
    rates = {"available": Decimal(1), "disposed": Decimal(0)}
    rates.update({state: Decimal(configured[name]) for state, name in RATE_SETTINGS.items()})
    return rates


# Refund leakage: money released for a unit whose inspection found it was not what was sold back.
LEAKAGE_GRADES = ("D",)
LEAKAGE_SERIAL = ("mismatch", "missing")
LEAKAGE_EXCEPTIONS = ("wrong_item", "serial_mismatch", "empty_box", "damaged_in_transit")

# --------------------------------------------------------------------------- flow

AGE_BUCKETS = ("< 24 h", "1–2 d", "2–7 d", "> 7 d")
BUCKET_EDGES_HOURS = (24, 48, 168)
STAGES = (("in_transit", "Delivered, not received"), ("received", "Received, not inspected"),
          ("quarantine", "Quarantine"), ("exceptions", "Open exceptions"))


def age_bucket(hours: float) -> str:
    """The ageing bucket of something waiting `hours`."""
    for edge, label in zip(BUCKET_EDGES_HOURS, AGE_BUCKETS):
        if hours < edge:
            return label
    return AGE_BUCKETS[-1]


# How long a parcel still takes, by its carrier's last status (days after that event).
DAYS_TO_ARRIVE = {"label_created": 4, "in_transit": 2, "out_for_delivery": 0, "delivered": 0, "exception": 3}
FORECAST_DAYS = 7


def expected_arrival(status: str | None, last_event: datetime | None, authorised: datetime, today: date) -> date:
    """When a return's parcel is expected at the dock: the carrier's last event plus the days its
    status still takes (no event: authorised plus a label's days); never before today."""
    moment = last_event or authorised
    days = DAYS_TO_ARRIVE.get(status or "label_created", DAYS_TO_ARRIVE["label_created"])
    return max(moment.date() + timedelta(days=days), today)


@dataclass(frozen=True)
class ForecastDay:
    day: date
    units: int
    hours: Decimal | None  # worker-hours it needs at the measured rate


def forecast(arrivals: Sequence[tuple[date, int]], today: date, rate: Decimal | None) -> list[ForecastDay]:
    """Units expected per day over the next FORECAST_DAYS and the worker-hours each needs at
    `rate` units per worker-hour (overdue arrivals count today; after the horizon: left out)."""
    per_day: dict[date, int] = {today + timedelta(days=i): 0 for i in range(FORECAST_DAYS)}
    for day, units in arrivals:
        day = max(day, today)
        if day in per_day:
            per_day[day] += units
    return [ForecastDay(d, n, ratio(n, rate) if rate else None) for d, n in per_day.items()]


# --------------------------------------------------------------------------- reasons

@dataclass(frozen=True)
class ParetoRow:
    key: str
    label: str
    units: int
    share: Decimal  # of all units, %
    cumulative: Decimal  # %
    shipped: int | None = None
    avoidable: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def return_rate(self) -> Decimal | None:
        """Units returned per unit shipped, in percent."""
        return ratio(self.units, self.shipped, scale=100) if self.shipped is not None else None

    @property
    def avoidable_share(self) -> Decimal | None:
        return ratio(self.avoidable, self.units, scale=100)


def pareto(rows: Sequence[tuple[str, str, int, int | None, int]]) -> list[ParetoRow]:
    """(key, label, units, shipped, avoidable units) rows, most units first, with each one's share
    and the running share (the Pareto line)."""
    ordered = sorted(rows, key=lambda r: (-r[2], r[0]))
    total = sum(r[2] for r in ordered)
    out, running = [], 0
    for key, label, units, shipped, avoidable in ordered:
        running += units
        out.append(ParetoRow(key, label, units, ratio(units, total, scale=100) or Decimal(0),
                             ratio(running, total, scale=100) or Decimal(0), shipped, avoidable))
    return out


SPIKE_WEEKS = 8
SPIKE_FACTOR = Decimal(2)
SPIKE_MIN_UNITS = 3


def is_spike(this_week: int, baseline_weeks: Sequence[int]) -> bool:
    """This week's units at least SPIKE_MIN_UNITS and at least twice the mean of the baseline weeks."""
    if this_week < SPIKE_MIN_UNITS:
        return False
    base = Decimal(sum(baseline_weeks)) / Decimal(len(baseline_weeks) or 1)
    return Decimal(this_week) >= SPIKE_FACTOR * base


# What inspection found, in order: the first rule a unit meets names it (the SQL in queries.py
# is written from the same list).
FINDING_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Wrong item or serial", "serial_status", ("mismatch", "missing")),
    ("Damaged or faulty", "grade", ("D",)),
    ("Damaged or faulty", "packaging", ("damaged",)),
    ("Worn or used", "grade", ("C",)),
)
NO_FAULT = "No fault found"
FINDINGS = ("Wrong item or serial", "Damaged or faulty", "Worn or used", NO_FAULT)


def finding(grade: str | None, packaging: str | None, serial_status: str | None) -> str:
    """What inspection found for one unit, in words."""
    facts = {"grade": grade, "packaging": packaging, "serial_status": serial_status}
    for label, fact, values in FINDING_RULES:
        if facts[fact] in values:
            return label
    return NO_FAULT


REASON_DIMENSIONS = {"reason": "Reason", "sku": "SKU", "category": "Category", "channel": "Channel", "carrier": "Carrier"}


def parse_dimension(raw: str | None) -> str:
    """The `by` of the reason analytics (default: reason), or BadFilter."""
    by = (raw or "reason").strip()
    if by not in REASON_DIMENSIONS:
        raise BadFilter(f"'by' must be one of {', '.join(REASON_DIMENSIONS)}, not '{by[:40]}'.")
    return by


@dataclass(frozen=True)
class Spike:
    key: str
    reason: str
    this_week: int
    baseline: Decimal  # mean units a week over the SPIKE_WEEKS before


def spikes(weekly: Mapping[tuple[str, str], Mapping[int, int]]) -> list[Spike]:
    """(key, reason) -> {weeks ago: units} (0: the week ending with the period) -> the spikes,
    biggest first."""
    out = []
    for (key, reason), weeks in weekly.items():
        base = [weeks.get(i, 0) for i in range(1, SPIKE_WEEKS + 1)]
        if is_spike(weeks.get(0, 0), base):
            out.append(Spike(key, reason, weeks.get(0, 0), (Decimal(sum(base)) / SPIKE_WEEKS).quantize(Decimal("0.1"))))
    return sorted(out, key=lambda s: (-s.this_week, s.key, s.reason))


# Stated reasons that claim a fault: inspection finding none is worth a look (by SKU and channel).
FAULT_REASONS = ("defective", "damaged_in_transit", "not_as_described")
