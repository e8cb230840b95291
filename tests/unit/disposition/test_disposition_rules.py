"""Unit tests for the pure disposition rules engine (app.disposition.domain)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.disposition.domain import (
    DEFAULT_RULES,
    DISPOSITION_LOCATION_TYPE,
    DISPOSITION_STATE,
    DISPOSITIONS,
    FALLBACK_EXPLANATION,
    REFUND_ACTIONS,
    InspectionFacts,
    Rule,
    decide,
    explain_conditions,
    parse_conditions,
    refund_amount,
    validate_rule,
)


def facts(**overrides: Any) -> InspectionFacts:
    """Build inspection facts for a harmless, like-new sealed apparel unit, with overrides."""
    base: dict[str, Any] = {
        "grade": "A",
        "category": "apparel",
        "unit_value": Decimal("40"),
        "reason_code": "wrong_size",
        "channel": "web",
        "serial_mismatch": False,
        "packaging": "sealed",
        "customer_return_count": 0,
        "customer_return_rate": 0.0,
    }
    base.update(overrides)
    return InspectionFacts(**base)


# ----------------------------------------------------------------- tables


def test_disposition_tables_cover_every_disposition() -> None:
    """Each disposition maps to its canonical unit state and a location type."""
    assert set(DISPOSITION_STATE) == set(DISPOSITIONS) == set(DISPOSITION_LOCATION_TYPE)
    assert DISPOSITION_STATE == {
        "restock": "available",
        "refurbish": "refurbish",
        "quarantine": "quarantine",
        "return_to_vendor": "vendor_return",
        "liquidate": "liquidation",
        "dispose": "disposed",
    }
    assert DISPOSITION_LOCATION_TYPE["dispose"] == "scrap"
    assert DISPOSITION_LOCATION_TYPE["restock"] == "stock"
    assert REFUND_ACTIONS == ("full", "less_restocking_fee", "less_damage", "none", "hold")


# ----------------------------------------------------------------- ordering semantics


def test_first_matching_rule_in_position_order_wins_regardless_of_list_order() -> None:
    """Rules are evaluated by position, not by their order in the list."""
    broad = Rule(5, "broad", {}, "restock", "full")
    narrow = Rule(2, "narrow", {"grade_in": ["A"]}, "refurbish", "none")
    decision = decide([broad, narrow], facts(grade="A"))
    assert decision.rule_position == 2
    assert decision.disposition == "refurbish"
    assert decide([broad, narrow], facts(grade="B")).rule_position == 5


def test_all_conditions_must_match() -> None:
    """A rule matches only when every one of its conditions holds."""
    rule = Rule(1, "r", {"category_in": ["electronics"], "value_gt": 300}, "quarantine", "hold")
    assert decide([rule], facts(category="electronics", unit_value=Decimal("301"))).rule_position == 1
    assert decide([rule], facts(category="electronics", unit_value=Decimal("300"))).is_fallback
    assert decide([rule], facts(category="apparel", unit_value=Decimal("301"))).is_fallback


def test_same_position_keeps_given_order() -> None:
    """Ties on position are broken by the order the rules were given (stable sort)."""
    first = Rule(1, "first", {}, "restock", "full")
    second = Rule(1, "second", {}, "dispose", "none")
    assert decide([first, second], facts()).rule_name == "first"


def test_disabled_rules_are_skipped() -> None:
    """A disabled rule never matches; the next enabled rule applies."""
    disabled = Rule(1, "off", {}, "dispose", "none", enabled=False)
    enabled = Rule(2, "on", {}, "restock", "full")
    decision = decide([disabled, enabled], facts())
    assert decision.rule_name == "on"
    assert decide([disabled], facts()).is_fallback


def test_fallback_when_nothing_matches() -> None:
    """No match (or no rules at all) quarantines the unit and holds its refund."""
    for rules in ([], [Rule(1, "only D", {"grade_in": ["D"]}, "dispose", "none")]):
        decision = decide(rules, facts(grade="A"))
        assert decision.rule_position is None
        assert decision.is_fallback
        assert decision.disposition == "quarantine"
        assert decision.target_state == "quarantine"
        assert decision.location_type == "quarantine"
        assert decision.refund_action == "hold"
        assert decision.explanation == FALLBACK_EXPLANATION == "no rule matched -> quarantine"


@pytest.mark.parametrize(
    ("conditions", "matching", "not_matching"),
    [
        ({"grade_in": ["B", "C"]}, {"grade": "c"}, {"grade": "A"}),
        ({"category_in": ["electronics"]}, {"category": "Electronics"}, {"category": "apparel"}),
        ({"reason_in": ["defective"]}, {"reason_code": "defective"}, {"reason_code": "wrong_size"}),
        ({"channel_in": ["marketplace"]}, {"channel": "marketplace"}, {"channel": "web"}),
        ({"packaging_in": ["opened"]}, {"packaging": "opened"}, {"packaging": "sealed"}),
        ({"value_gt": "300"}, {"unit_value": Decimal("300.01")}, {"unit_value": Decimal("300")}),
        ({"value_lte": 50}, {"unit_value": Decimal("50")}, {"unit_value": Decimal("50.01")}),
        ({"serial_mismatch": False}, {"serial_mismatch": False}, {"serial_mismatch": True}),
        ({"customer_return_count_gte": 3}, {"customer_return_count": 3}, {"customer_return_count": 2}),
        ({"customer_return_rate_gte": 0.5}, {"customer_return_rate": 0.5}, {"customer_return_rate": 0.49}),
    ],
)
def test_each_condition_key(conditions: dict[str, Any], matching: dict[str, Any], not_matching: dict[str, Any]) -> None:
    """Every supported condition key matches and rejects as documented (boundaries included)."""
    rule = Rule(1, "r", conditions, "restock", "full")
    assert rule.matches(facts(**matching))
    assert not rule.matches(facts(**not_matching))


def test_decision_carries_state_location_and_fee() -> None:
    """The decision maps the disposition to a state and location type and keeps the rule's fee."""
    rule = Rule(7, "rtv", {}, "return_to_vendor", "less_restocking_fee", restocking_fee_pct=Decimal("0.2"))
    decision = decide([rule], facts())
    assert (decision.target_state, decision.location_type) == ("vendor_return", "vendor_return")
    assert decision.restocking_fee_pct == Decimal("0.2")
    assert decision.explanation == "rule 7: any unit -> return to vendor"


# ----------------------------------------------------------------- explanations


def test_explanation_for_the_spec_example() -> None:
    """The explanation names the position and matched conditions in plain words."""
    rule = Rule(
        4,
        "hv electronics",
        {"serial_mismatch": True, "value_gt": "300", "category_in": ["electronics"]},
        "quarantine",
        "hold",
    )
    decision = decide([rule], facts(category="electronics", unit_value=Decimal("450"), serial_mismatch=True))
    assert decision.explanation == "rule 4: electronics, value over 300, serial mismatch -> quarantine"


def test_explain_conditions_plain_words() -> None:
    """Multi-valued and numeric conditions read naturally; empty reads 'any unit'."""
    assert explain_conditions({}) == "any unit"
    assert explain_conditions({"grade_in": ["C", "B", "D"]}) == "grade B, C or D"
    assert explain_conditions({"reason_in": ["damaged_in_transit"]}) == "reason damaged in transit"
    assert (
        explain_conditions({"customer_return_count_gte": 5, "customer_return_rate_gte": 0.5})
        == "customer has 5+ prior returns, customer return rate 50%+"
    )
    assert explain_conditions({"value_lte": Decimal("99.50")}) == "value up to 99.50"


# ----------------------------------------------------------------- default rules

# One unit per default rule that must be decided by exactly that rule.
DEFAULT_RULE_EXAMPLES: dict[int, dict[str, Any]] = {
    1: {"serial_mismatch": True, "category": "electronics"},
    2: {"customer_return_count": 6, "customer_return_rate": 0.7},
    3: {"category": "electronics", "unit_value": Decimal("899"), "grade": "B", "packaging": "opened"},
    4: {"reason_code": "damaged_in_transit", "grade": "C"},
    5: {"category": "electronics", "reason_code": "defective", "grade": "A", "unit_value": Decimal("80")},
    6: {"category": "health_beauty", "packaging": "opened", "grade": "A"},
    7: {"grade": "D", "category": "apparel"},
    8: {"category": "electronics", "grade": "A", "packaging": "opened", "unit_value": Decimal("500")},
    9: {"grade": "A", "packaging": "sealed"},
    10: {"category": "electronics", "grade": "B", "unit_value": Decimal("120"), "packaging": "opened"},
    11: {"category": "apparel", "grade": "B", "packaging": "opened"},
    12: {"category": "electronics", "grade": "C", "unit_value": Decimal("150")},
    13: {"category": "apparel", "grade": "C"},
    14: {"category": "toys", "grade": "C"},
}


def test_default_rules_are_ordered_valid_and_end_with_catch_all() -> None:
    """Defaults have unique ascending positions and the last one matches anything."""
    positions = [r.position for r in DEFAULT_RULES]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert 10 <= len(DEFAULT_RULES) <= 15
    assert dict(DEFAULT_RULES[-1].conditions) == {}
    for rule in DEFAULT_RULES:
        assert validate_rule(dict(rule.conditions), rule.disposition, rule.refund_action) == []


@pytest.mark.parametrize("rule", DEFAULT_RULES, ids=lambda r: f"{r.position}-{r.name}")
def test_every_default_rule_is_reachable(rule: Rule) -> None:
    """Each seeded rule wins for some realistic unit: none is shadowed by an earlier one."""
    decision = decide(DEFAULT_RULES, facts(**DEFAULT_RULE_EXAMPLES[rule.position]))
    assert decision.rule_position == rule.position
    assert decision.disposition == rule.disposition
    assert decision.explanation.startswith(f"rule {rule.position}: ")


def test_default_rules_business_expectations() -> None:
    """Spot checks a returns manager would expect of the defaults."""
    d = decide(DEFAULT_RULES, facts(category="electronics", unit_value=Decimal("450"), grade="B", serial_mismatch=True))
    assert (d.disposition, d.refund_action) == ("quarantine", "hold")
    d = decide(DEFAULT_RULES, facts(grade="A", packaging="sealed", category="electronics", unit_value=Decimal("900")))
    assert (d.disposition, d.refund_action, d.target_state) == ("restock", "full", "available")
    d = decide(DEFAULT_RULES, facts(grade="B", category="health_beauty", packaging="opened"))
    assert (d.disposition, d.refund_action) == ("dispose", "full")
    d = decide(DEFAULT_RULES, facts(grade="D", category="electronics", unit_value=Decimal("20")))
    assert (d.disposition, d.location_type) == ("dispose", "scrap")


# ----------------------------------------------------------------- refunds


@pytest.mark.parametrize(
    ("action", "kwargs", "expected"),
    [
        ("full", {}, "100.00"),
        ("hold", {}, "100.00"),
        ("none", {}, "0.00"),
        ("less_restocking_fee", {}, "85.00"),
        ("less_restocking_fee", {"restocking_fee_pct": Decimal("0.2")}, "80.00"),
        ("less_damage", {"grade": "A"}, "100.00"),
        ("less_damage", {"grade": "B"}, "90.00"),
        ("less_damage", {"grade": "c"}, "70.00"),
        ("less_damage", {"grade": "D"}, "50.00"),
        ("less_damage", {"grade": "C", "damage_pct_by_grade": {"C": 0.25}}, "75.00"),
    ],
)
def test_refund_amount_arithmetic(action: str, kwargs: dict[str, Any], expected: str) -> None:
    """Each refund action deducts what it says from the paid price."""
    assert refund_amount(Decimal("100.00"), action, **kwargs) == Decimal(expected)


def test_refund_amount_rounds_half_up_to_cents() -> None:
    """Amounts are quantized to cents with ROUND_HALF_UP."""
    assert refund_amount(Decimal("0.10"), "less_restocking_fee") == Decimal("0.09")  # 0.085 -> 0.09
    assert refund_amount(Decimal("19.99"), "less_restocking_fee") == Decimal("16.99")  # 16.9915
    assert refund_amount(Decimal("10.005"), "full") == Decimal("10.00")  # never above paid


def test_refund_amount_rejects_bad_input() -> None:
    """Unknown actions, negative prices, missing grades and silly fees raise ValueError."""
    with pytest.raises(ValueError):
        refund_amount(Decimal("10"), "half")
    with pytest.raises(ValueError):
        refund_amount(Decimal("-1"), "full")
    with pytest.raises(ValueError):
        refund_amount(Decimal("10"), "less_damage")
    with pytest.raises(ValueError):
        refund_amount(Decimal("10"), "less_restocking_fee", restocking_fee_pct=Decimal("1.5"))


@given(
    paid=st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False, allow_infinity=False),
    action=st.sampled_from(REFUND_ACTIONS),
    pct=st.decimals(min_value=0, max_value=1, places=4, allow_nan=False, allow_infinity=False),
    grade=st.sampled_from(["A", "B", "C", "D"]),
)
def test_refund_amount_bounds(paid: Decimal, action: str, pct: Decimal, grade: str) -> None:
    """Whatever the inputs, 0 <= refund <= paid and the amount is in whole cents."""
    amount = refund_amount(paid, action, restocking_fee_pct=pct, grade=grade)
    assert Decimal("0") <= amount <= paid
    assert amount == amount.quantize(Decimal("0.01"))


@given(paid=st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False))
def test_refund_never_above_paid_with_sub_cent_prices(paid: Decimal) -> None:
    """Even a price with fractions of a cent is never over-refunded by rounding."""
    assert Decimal("0") <= refund_amount(paid, "full") <= paid


# ----------------------------------------------------------------- validation and parsing


def test_validate_rule_accepts_a_good_rule() -> None:
    """A well-formed rule (form strings included) has no errors."""
    conditions = {"grade_in": "B, C", "value_gt": "300", "serial_mismatch": "true", "category_in": ""}
    assert validate_rule(conditions, "refurbish", "less_damage") == []


def test_validate_rule_messages() -> None:
    """Every problem yields a message naming the field and the bad value."""
    errors = validate_rule(
        {
            "colour": "red",
            "grade_in": ["A", "E"],
            "packaging_in": ["shrinkwrapped"],
            "value_gt": "abc",
            "serial_mismatch": "maybe",
            "customer_return_count_gte": -2,
            "customer_return_rate_gte": 1.5,
        },
        "sell",
        "half",
        restocking_fee_pct="2",
    )
    text = "\n".join(errors)
    assert "unknown condition 'colour'" in text
    assert "grade_in: 'E' is not a grade; use A, B, C or D" in text
    assert "packaging_in: 'shrinkwrapped' is not a packaging state" in text
    assert "value_gt must be a money amount, got 'abc'" in text
    assert "serial_mismatch must be true or false, got 'maybe'" in text
    assert "customer_return_count_gte must be a whole number" in text
    assert "customer_return_rate_gte must be between 0 and 1" in text
    assert "unknown disposition 'sell'" in text
    assert "unknown refund action 'half'" in text
    assert "restocking fee must be between 0 and 1" in text
    assert len(errors) == 10


def test_validate_rule_contradictions_and_known_codes() -> None:
    """Impossible value ranges and codes outside the supplied lists are reported."""
    assert any("can never match" in e for e in validate_rule({"value_gt": 500, "value_lte": 100}, "restock", "full"))
    errors = validate_rule(
        {"category_in": ["electronics", "furniture"], "reason_in": ["defective"]},
        "restock",
        "full",
        known_categories=["electronics", "apparel"],
        known_reasons=["defective"],
    )
    assert errors == ["category_in: unknown 'furniture'; use one of: apparel, electronics"]
    assert validate_rule("grade A", "restock", "full")[0].startswith("conditions must be a mapping")  # type: ignore[arg-type]


def test_parse_conditions_normalizes_types() -> None:
    """Form strings become Decimal / int / float / bool / tuples; blanks are dropped."""
    parsed = parse_conditions(
        {
            "value_gt": "300",
            "value_lte": 1000,
            "customer_return_count_gte": "5",
            "customer_return_rate_gte": "0.5",
            "serial_mismatch": "yes",
            "grade_in": "b,a",
            "category_in": ["Electronics"],
            "reason_in": [],
            "channel_in": None,
        }
    )
    assert parsed == {
        "value_gt": Decimal("300"),
        "value_lte": Decimal("1000"),
        "customer_return_count_gte": 5,
        "customer_return_rate_gte": 0.5,
        "serial_mismatch": True,
        "grade_in": ("A", "B"),
        "category_in": ("electronics",),
    }
    assert isinstance(parsed["value_gt"], Decimal)
    with pytest.raises(ValueError, match="value_gt"):
        parse_conditions({"value_gt": True})


def test_rule_rejects_invalid_definition() -> None:
    """A Rule cannot be built with invalid conditions, disposition or refund action."""
    with pytest.raises(ValueError, match="rule 3"):
        Rule(3, "bad", {"grade_in": ["Z"]}, "restock", "full")
    with pytest.raises(ValueError):
        Rule(3, "bad", {}, "sell", "full")


def test_inspection_facts_validation() -> None:
    """Facts normalise codes and reject impossible grades, packaging and rates."""
    f = facts(grade="b", category=" Electronics ", unit_value="12.5", packaging="OPENED")
    assert (f.grade, f.category, f.unit_value, f.packaging) == ("B", "electronics", Decimal("12.5"), "opened")
    with pytest.raises(ValueError):
        facts(grade="E")
    with pytest.raises(ValueError):
        facts(packaging="shrinkwrapped")
    with pytest.raises(ValueError):
        facts(customer_return_rate=1.5)
    with pytest.raises(ValueError):
        facts(unit_value=Decimal("-1"))
