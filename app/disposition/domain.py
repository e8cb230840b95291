"""Disposition rules engine: pure Python, no database, no Flask.

An ordered list of :class:`Rule` is evaluated against the :class:`InspectionFacts`
of one graded unit; the first enabled rule whose every condition matches gives the
disposition (hence the target unit state and location type) and the refund action.
Every :class:`Decision` carries a plain-words explanation such as
``"rule 4: electronics, value over 300, serial mismatch -> quarantine"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any
from app.ledger.domain import GRADES, PACKAGING_STATES  # noqa: F401  - the rules name them
from app.inspection.grading import Deduction, apply_deductions
from app.words import N_, Translate, english

# Who a return reason's cause lies with, for the reason analytics (a reason code's responsible party).
RESPONSIBLE_PARTIES: tuple[str, ...] = ("customer", "carrier", "warehouse", "supplier", "product_content")

DISPOSITIONS: tuple[str, ...] = (
    "restock",
    "refurbish",
    "quarantine",
    "return_to_vendor",
    "liquidate",
    "dispose",
)

DISPOSITION_STATE: dict[str, str] = {
    "restock": "available",
    "refurbish": "refurbish",
    "quarantine": "quarantine",
    "return_to_vendor": "vendor_return",
    "liquidate": "liquidation",
    "dispose": "disposed",
}

STATE_DISPOSITION: dict[str, str] = {state: disposition for disposition, state in DISPOSITION_STATE.items()}

DISPOSITION_LOCATION_TYPE: dict[str, str] = {
    "restock": "stock",
    "refurbish": "refurbish",
    "quarantine": "quarantine",
    "return_to_vendor": "vendor_return",
    "liquidate": "liquidation",
    "dispose": "scrap",
}

REFUND_ACTIONS: tuple[str, ...] = ("full", "less_restocking_fee", "less_damage", "none", "hold")


DEFAULT_RESTOCKING_FEE_PCT = Decimal("0.15")
DEFAULT_DAMAGE_PCT_BY_GRADE: Mapping[str, Decimal] = MappingProxyType(
    {"A": Decimal("0"), "B": Decimal("0.1"), "C": Decimal("0.3"), "D": Decimal("0.5")}
)

CENTS = Decimal("0.01")

# Condition keys, in the order explanations list them (reads like "electronics, value over 300").
LIST_KEYS: tuple[str, ...] = ("category_in", "grade_in", "packaging_in", "reason_in", "channel_in")
CONDITION_KEYS: tuple[str, ...] = (
    "category_in",
    "grade_in",
    "packaging_in",
    "reason_in",
    "channel_in",
    "value_gt",
    "value_lte",
    "serial_mismatch",
    "customer_return_count_gte",
    "customer_return_rate_gte",
)

_TRUE_WORDS = frozenset({"true", "yes", "y", "1", "on"})
_FALSE_WORDS = frozenset({"false", "no", "n", "0", "off"})


# --------------------------------------------------------------------------- helpers


def _to_decimal(value: Any) -> Decimal:
    """Convert a number or numeric string to a finite Decimal, else raise ValueError."""
    if isinstance(value, bool):  # bool is an int subclass: True is not "1 dollar"
        raise ValueError("expected a number")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(str(value))  # str() avoids binary float noise (0.1 -> 0.1)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except (InvalidOperation, ValueError):
            raise ValueError("expected a number") from None
    else:
        raise ValueError("expected a number")
    if not result.is_finite():
        raise ValueError("expected a finite number")
    return result


def _words(token: str) -> str:
    """Turn a code such as ``damaged_in_transit`` into plain words."""
    return token.replace("_", " ")


def _join_or(items: Sequence[str], tr: Translate = english) -> str:
    """Join values as ``a``, ``a or b``, ``a, b or c``."""
    if len(items) <= 1:
        return "".join(items)
    return tr("%(some)s or %(last)s", some=", ".join(items[:-1]), last=items[-1])


def _fmt_number(value: Decimal) -> str:
    """Format a Decimal without exponent (``3E+2`` -> ``300``)."""
    return format(value, "f")


def _normalize_list(key: str, value: Any, errors: list[str]) -> tuple[str, ...] | None:
    """Normalise a list condition (list or comma-separated string) to a tuple of codes."""
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    else:
        errors.append(f"{key} must be a list of values, got {value!r}")
        return None
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            errors.append(f"{key}: {item!r} is not text")
            continue
        code = item.strip()
        if not code:
            continue
        code = code.upper() if key == "grade_in" else code.lower()
        if code not in out:
            out.append(code)
    if key == "grade_in":
        out.sort()  # A, B, C, D reads better than the order ticked
    return tuple(out)


def _normalize_bool(key: str, value: Any, errors: list[str]) -> bool | None:
    """Accept a bool or a form word (true/false, yes/no, on/off, 1/0)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
        return value.strip().lower() in _TRUE_WORDS
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    errors.append(f"{key} must be true or false, got {value!r}")
    return None


def _is_blank(value: Any) -> bool:
    """A blank form field (None, empty text, empty list) means "no condition"."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, set, frozenset)):
        return len(value) == 0
    return False


def _normalize_conditions(raw: Any) -> tuple[dict[str, Any], list[str]]:
    """Normalise raw conditions; return (conditions, error messages)."""
    errors: list[str] = []
    out: dict[str, Any] = {}
    if raw is None:
        return out, errors
    if not isinstance(raw, Mapping):
        return out, [f"conditions must be a mapping of condition to value, got {type(raw).__name__}"]
    for key, value in raw.items():
        if key not in CONDITION_KEYS:
            errors.append(f"unknown condition {key!r}; use one of: {', '.join(CONDITION_KEYS)}")
            continue
        if _is_blank(value):
            continue
        if key in LIST_KEYS:
            items = _normalize_list(key, value, errors)
            if items:
                out[key] = items
        elif key in ("value_gt", "value_lte"):
            try:
                number = _to_decimal(value)
            except ValueError:
                errors.append(f"{key} must be a money amount, got {value!r}")
                continue
            if number < 0:
                errors.append(f"{key} must not be negative, got {_fmt_number(number)}")
                continue
            out[key] = number
        elif key == "serial_mismatch":
            flag = _normalize_bool(key, value, errors)
            if flag is not None:
                out[key] = flag
        elif key == "customer_return_count_gte":
            count: int | None = None
            if isinstance(value, int) and not isinstance(value, bool):
                count = value
            elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
                count = int(value.strip())
            if count is None or count < 0:
                errors.append(f"{key} must be a whole number of returns (0 or more), got {value!r}")
                continue
            out[key] = count
        else:  # customer_return_rate_gte
            try:
                rate = _to_decimal(value)
            except ValueError:
                errors.append(f"{key} must be a rate between 0 and 1, got {value!r}")
                continue
            if not (0 <= rate <= 1):
                errors.append(f"{key} must be between 0 and 1, got {_fmt_number(rate)}")
                continue
            out[key] = float(rate)
    bad_grades = [g for g in out.get("grade_in", ()) if g not in GRADES]
    if bad_grades:
        errors.append(f"grade_in: {', '.join(map(repr, bad_grades))} is not a grade; use A, B, C or D")
    bad_packaging = [p for p in out.get("packaging_in", ()) if p not in PACKAGING_STATES]
    if bad_packaging:
        errors.append(
            f"packaging_in: {', '.join(map(repr, bad_packaging))} is not a packaging state; "
            f"use {', '.join(PACKAGING_STATES)}"
        )
    if "value_gt" in out and "value_lte" in out and out["value_gt"] >= out["value_lte"]:
        errors.append(
            f"value_gt ({_fmt_number(out['value_gt'])}) must be below value_lte "
            f"({_fmt_number(out['value_lte'])}) or the rule can never match"
        )
    return out, errors


# --------------------------------------------------------------------------- public API


def parse_conditions(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """Normalise raw conditions (e.g. from a form or JSON) to typed values.

    Lists become tuples of codes (grades upper case, other codes lower case; a
    comma-separated string is accepted), money amounts become Decimal, the rate a
    float, the count an int, the flag a bool. Blank values are dropped.
    Raises ValueError listing every problem when the conditions are invalid.
    """
    conditions, errors = _normalize_conditions(raw)
    if errors:
        raise ValueError("; ".join(errors))
    return conditions


def validate_rule(
    conditions: Mapping[str, Any] | None,
    disposition: str,
    refund_action: str,
    *,
    restocking_fee_pct: Any = None,
    known_categories: Iterable[str] | None = None,
    known_reasons: Iterable[str] | None = None,
    known_channels: Iterable[str] | None = None,
) -> list[str]:
    """Return human-readable problems with a rule (empty list = valid), for the rule editor.

    Checks unknown condition keys, value types, grades and packaging states, the
    disposition, the refund action and the restocking fee; category, reason and
    channel codes are checked only when the caller passes the known codes.
    """
    normalized, errors = _normalize_conditions(conditions)
    for key, known in (
        ("category_in", known_categories),
        ("reason_in", known_reasons),
        ("channel_in", known_channels),
    ):
        if known is None:
            continue
        known_set = {str(k).lower() for k in known}
        unknown = [v for v in normalized.get(key, ()) if v not in known_set]
        if unknown:
            errors.append(f"{key}: unknown {', '.join(map(repr, unknown))}; use one of: {', '.join(sorted(known_set))}")
    if disposition not in DISPOSITIONS:
        errors.append(f"unknown disposition {disposition!r}; use one of: {', '.join(DISPOSITIONS)}")
    if refund_action not in REFUND_ACTIONS:
        errors.append(f"unknown refund action {refund_action!r}; use one of: {', '.join(REFUND_ACTIONS)}")
    if restocking_fee_pct is not None and not _is_blank(restocking_fee_pct):
        try:
            pct = _to_decimal(restocking_fee_pct)
        except ValueError:
            errors.append(f"restocking fee must be a fraction between 0 and 1, got {restocking_fee_pct!r}")
        else:
            if not (0 <= pct <= 1):
                errors.append(f"restocking fee must be between 0 and 1 (0.15 = 15%), got {_fmt_number(pct)}")
    return errors


def explain_conditions(conditions: Mapping[str, Any] | None, tr: Translate = english) -> str:
    """Describe conditions in plain words, e.g. ``electronics, value over 300, serial mismatch``,
    through the translator `tr` (gettext's signature; the English as written by default).

    Accepts raw or normalised conditions; unknown keys are ignored. Empty conditions
    read ``any unit``.
    """
    normalized, _errors = _normalize_conditions(conditions)
    parts: list[str] = []
    for key in CONDITION_KEYS:
        if key not in normalized:
            continue
        value = normalized[key]
        if key == "category_in":
            parts.append(_join_or([_words(v) for v in value], tr))
        elif key == "grade_in":
            parts.append(tr("grade %(grade)s", grade=_join_or(list(value), tr)))
        elif key == "packaging_in":
            parts.append(tr("packaging %(packaging)s", packaging=_join_or([tr(_words(v)) for v in value], tr)))
        elif key == "reason_in":
            parts.append(tr("reason %(reason)s", reason=_join_or([_words(v) for v in value], tr)))
        elif key == "channel_in":
            parts.append(tr("channel %(channel)s", channel=_join_or([_words(v) for v in value], tr)))
        elif key == "value_gt":
            parts.append(tr("value over %(value)s", value=_fmt_number(value)))
        elif key == "value_lte":
            parts.append(tr("value up to %(value)s", value=_fmt_number(value)))
        elif key == "serial_mismatch":
            parts.append(tr("serial mismatch") if value else tr("serial matches"))
        elif key == "customer_return_count_gte":
            parts.append(tr("customer has %(count)s+ prior returns", count=value))
        elif key == "customer_return_rate_gte":
            parts.append(tr("customer return rate %(rate)s%%+", rate=f"{value * 100:g}"))
    return ", ".join(parts) if parts else tr("any unit")


@dataclass(frozen=True)
class InspectionFacts:
    """What inspection established about one unit: the input to :func:`decide`.

    grade: A like new, B good / open box, C damaged but repairable, D unsalvageable.
    Codes are normalised (grade upper case, other codes lower case); ValueError on bad values.
    """

    grade: str
    category: str
    unit_value: Decimal
    reason_code: str
    channel: str
    serial_mismatch: bool = False
    packaging: str = "sealed"
    customer_return_count: int = 0
    customer_return_rate: float = 0.0
    # what the checklist's answers set (app/inspection/grading.py): in words, and off the refund
    grading_reasons: tuple[str, ...] = ()
    deductions: tuple[Deduction, ...] = ()

    def __post_init__(self) -> None:
        """Normalise codes and reject values the rules cannot reason about."""
        grade = str(self.grade).strip().upper()
        if grade not in GRADES:
            raise ValueError(f"grade must be one of A, B, C, D, got {self.grade!r}")
        packaging = str(self.packaging).strip().lower()
        if packaging not in PACKAGING_STATES:
            raise ValueError(f"packaging must be one of {', '.join(PACKAGING_STATES)}, got {self.packaging!r}")
        value = _to_decimal(self.unit_value)
        if value < 0:
            raise ValueError("unit_value must not be negative")
        if isinstance(self.customer_return_count, bool) or int(self.customer_return_count) < 0:
            raise ValueError("customer_return_count must be a whole number, 0 or more")
        rate = float(self.customer_return_rate)
        if not (0.0 <= rate <= 1.0):
            raise ValueError("customer_return_rate must be between 0 and 1")
        object.__setattr__(self, "grade", grade)
        object.__setattr__(self, "packaging", packaging)
        object.__setattr__(self, "unit_value", value)
        object.__setattr__(self, "category", str(self.category).strip().lower())
        object.__setattr__(self, "reason_code", str(self.reason_code).strip().lower())
        object.__setattr__(self, "channel", str(self.channel).strip().lower())
        object.__setattr__(self, "serial_mismatch", bool(self.serial_mismatch))
        object.__setattr__(self, "customer_return_count", int(self.customer_return_count))
        object.__setattr__(self, "customer_return_rate", rate)


@dataclass(frozen=True)
class Rule:
    """One ordered disposition rule. Empty conditions match every unit (a catch-all).

    Conditions are normalised with :func:`parse_conditions` on construction and stored
    read-only; ValueError if the conditions, disposition, refund action or fee are invalid.
    """

    position: int
    name: str
    conditions: Mapping[str, Any] = field(default_factory=dict, hash=False)
    disposition: str = "quarantine"
    refund_action: str = "hold"
    restocking_fee_pct: Decimal = DEFAULT_RESTOCKING_FEE_PCT
    enabled: bool = True

    def __post_init__(self) -> None:
        """Validate the rule and freeze its conditions."""
        errors = validate_rule(
            self.conditions, self.disposition, self.refund_action, restocking_fee_pct=self.restocking_fee_pct
        )
        if errors:
            raise ValueError(f"rule {self.position} ({self.name}): " + "; ".join(errors))
        object.__setattr__(self, "conditions", MappingProxyType(parse_conditions(self.conditions)))
        object.__setattr__(self, "restocking_fee_pct", _to_decimal(self.restocking_fee_pct))

    def matches(self, facts: InspectionFacts) -> bool:
        """True when every condition of this rule holds for ``facts`` (ignores ``enabled``)."""
        c = self.conditions
        checks = (
            ("category_in", lambda v: facts.category in v),
            ("grade_in", lambda v: facts.grade in v),
            ("packaging_in", lambda v: facts.packaging in v),
            ("reason_in", lambda v: facts.reason_code in v),
            ("channel_in", lambda v: facts.channel in v),
            ("value_gt", lambda v: facts.unit_value > v),
            ("value_lte", lambda v: facts.unit_value <= v),
            ("serial_mismatch", lambda v: facts.serial_mismatch == v),
            ("customer_return_count_gte", lambda v: facts.customer_return_count >= v),
            ("customer_return_rate_gte", lambda v: facts.customer_return_rate >= v),
        )
        return all(test(c[key]) for key, test in checks if key in c)

    def explain(self, tr: Translate = english) -> str:
        """Plain-words explanation, e.g. ``rule 4: electronics, value over 300 -> quarantine``."""
        return tr("rule %(position)s: %(conditions)s -> %(disposition)s", position=self.position,
                  conditions=explain_conditions(self.conditions, tr), disposition=tr(_words(self.disposition)))


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`decide`; ``rule_position`` is None for the no-match fallback."""

    rule_position: int | None
    rule_name: str
    disposition: str
    target_state: str
    location_type: str
    refund_action: str
    explanation: str
    restocking_fee_pct: Decimal = DEFAULT_RESTOCKING_FEE_PCT
    deductions: tuple[Deduction, ...] = ()  # off the refund, from the checklist's answers
    rule: Rule | None = None  # the rule that decided (None: the fallback)

    def rule_words(self, tr: Translate = english) -> str:
        """Which rule decided, in the language of `tr` (the explanation without the checklist's answers,
        which a screen says on their own)."""
        return self.rule.explain(tr) if self.rule is not None else tr(FALLBACK_EXPLANATION)

    @property
    def is_fallback(self) -> bool:
        """True when no rule matched and the safe default (quarantine, hold) was used."""
        return self.rule_position is None


FALLBACK_EXPLANATION = N_("no rule matched -> quarantine")


def decide(rules: Sequence[Rule], facts: InspectionFacts) -> Decision:
    """Pick the first enabled rule, in position order, whose every condition matches.

    Rules sharing a position keep their given order. With no match the unit is
    quarantined and its refund held for a supervisor. The explanation names, after the rule,
    the checklist answers that set the grade or a deduction ("rule 11: grade B -> restock;
    all parts present: no -> less 10%"), and the decision carries those deductions.
    """
    said = "".join(f"; {reason}" for reason in facts.grading_reasons)
    for rule in sorted(rules, key=lambda r: r.position):  # sorted() is stable
        if rule.enabled and rule.matches(facts):
            return Decision(
                rule_position=rule.position,
                rule_name=rule.name,
                disposition=rule.disposition,
                target_state=DISPOSITION_STATE[rule.disposition],
                location_type=DISPOSITION_LOCATION_TYPE[rule.disposition],
                refund_action=rule.refund_action,
                explanation=rule.explain() + said,
                restocking_fee_pct=rule.restocking_fee_pct,
                deductions=facts.deductions,
                rule=rule,
            )
    return Decision(
        rule_position=None,
        rule_name="no rule matched",
        disposition="quarantine",
        target_state=DISPOSITION_STATE["quarantine"],
        location_type=DISPOSITION_LOCATION_TYPE["quarantine"],
        refund_action="hold",
        explanation=FALLBACK_EXPLANATION + said,
        deductions=facts.deductions,
    )


def refund_amount(
    paid: Decimal,
    refund_action: str,
    *,
    restocking_fee_pct: Decimal = DEFAULT_RESTOCKING_FEE_PCT,
    damage_pct_by_grade: Mapping[str, Any] = DEFAULT_DAMAGE_PCT_BY_GRADE,
    grade: str | None = None,
    deductions: Sequence[Deduction] = (),
) -> Decimal:
    """Refund for a unit bought at ``paid`` under ``refund_action``, in cents (ROUND_HALF_UP).

    ``deductions`` (from the checklist's answers) then come off that amount
    (app.inspection.grading.apply_deductions): 200.00 less a 15% restocking fee is 170.00, less
    10% for a missing part 153.00.

    ``full`` and ``hold`` (full amount, pending approval) give ``paid``; ``none`` gives 0;
    ``less_restocking_fee`` deducts ``restocking_fee_pct``; ``less_damage`` deducts the
    grade's share from ``damage_pct_by_grade`` (``grade`` required). The result is never
    negative nor above ``paid``. ValueError on a negative amount, unknown action or bad
    percentage.
    """
    paid_d = _to_decimal(paid)
    if paid_d < 0:
        raise ValueError("paid amount must not be negative")
    if refund_action in ("full", "hold"):
        amount = paid_d
    elif refund_action == "none":
        amount = Decimal("0")
    elif refund_action == "less_restocking_fee":
        pct = _to_decimal(restocking_fee_pct)
        if not (0 <= pct <= 1):
            raise ValueError("restocking_fee_pct must be between 0 and 1")
        amount = paid_d * (1 - pct)
    elif refund_action == "less_damage":
        key = (grade or "").strip().upper()
        if key not in damage_pct_by_grade:
            raise ValueError(f"no damage percentage for grade {grade!r}")
        pct = _to_decimal(damage_pct_by_grade[key])
        if not (0 <= pct <= 1):
            raise ValueError(f"damage percentage for grade {key} must be between 0 and 1")
        amount = paid_d * (1 - pct)
    else:
        raise ValueError(f"unknown refund action {refund_action!r}")
    # Bound by paid rounded *down* to cents so rounding can never refund more than was paid.
    cap = paid_d.quantize(CENTS, rounding=ROUND_DOWN)
    amount = min(max(amount.quantize(CENTS, rounding=ROUND_HALF_UP), Decimal("0.00")), cap)
    return apply_deductions(amount, deductions) if deductions else amount


def _r(position: int, name: str, conditions: dict[str, Any], disposition: str, refund_action: str) -> Rule:
    """Shorthand for building the default rule table."""
    return Rule(position, name, conditions, disposition, refund_action)


_NOT_SEALED = ["opened", "damaged", "missing"]

# Seeded defaults: risk checks first (hold the refund, a supervisor looks), then
# vendor/hygiene cases, then grade-driven recovery, then a catch-all for anything unforeseen.
DEFAULT_RULES: list[Rule] = [
    _r(1, "Serial mismatch", {"serial_mismatch": True}, "quarantine", "hold"),
    _r(
        2,
        "Serial returner",
        {"customer_return_count_gte": 5, "customer_return_rate_gte": 0.5},
        "quarantine",
        "hold",
    ),
    _r(
        3,
        "High-value electronics not like new",
        {"category_in": ["electronics"], "value_gt": Decimal("300"), "grade_in": ["B", "C", "D"]},
        "quarantine",
        "hold",
    ),
    _r(4, "Damaged in transit (carrier claim)", {"reason_in": ["damaged_in_transit"]}, "quarantine", "hold"),
    _r(
        5,
        "Defective electronics back to vendor",
        {"category_in": ["electronics"], "reason_in": ["defective"]},
        "return_to_vendor",
        "full",
    ),
    _r(
        6,
        "Opened health & beauty (hygiene)",
        {"category_in": ["health_beauty"], "packaging_in": _NOT_SEALED},
        "dispose",
        "full",
    ),
    _r(7, "Unsalvageable", {"grade_in": ["D"]}, "dispose", "less_damage"),
    _r(
        8,
        "Like-new opened electronics",
        {"category_in": ["electronics"], "grade_in": ["A"], "packaging_in": _NOT_SEALED},
        "restock",
        "less_restocking_fee",
    ),
    _r(9, "Like new", {"grade_in": ["A"]}, "restock", "full"),
    _r(10, "Open-box electronics", {"category_in": ["electronics"], "grade_in": ["B"]}, "refurbish", "less_restocking_fee"),
    _r(11, "Good, open box", {"grade_in": ["B"]}, "restock", "less_restocking_fee"),
    _r(12, "Damaged electronics", {"category_in": ["electronics"], "grade_in": ["C"]}, "refurbish", "less_damage"),
    _r(
        13,
        "Damaged soft goods",
        {"category_in": ["apparel", "health_beauty"], "grade_in": ["C"]},
        "liquidate",
        "less_damage",
    ),
    _r(14, "Anything else: supervisor review", {}, "quarantine", "hold"),
]
