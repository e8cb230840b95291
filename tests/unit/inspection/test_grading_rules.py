"""Guided grading's pure rules (app/inspection/grading.py), with figures worked by hand."""
from __future__ import annotations

from decimal import Decimal

import pytest

from app.disposition.domain import DEFAULT_RULES, InspectionFacts, decide, refund_amount
from app.inspection.grading import (Component, Deduction, Grading, RulesInvalid, apply_deductions, component_items,
                                    component_share, evaluate, parse_rules, rules_text)

ITEMS = [{"key": "seal_intact", "label": "Seal intact"}, {"key": "all_parts", "label": "All parts present"},
         {"key": "powers_on", "label": "Powers on"}]
TEXT = "seal_intact = yes -> grade A, skip the rest\nall_parts = no -> deduct 10%\npowers_on = no -> grade C, deduct 25.00"


def test_rules_read_and_written_back():
    rules = parse_rules(TEXT, ITEMS)
    assert rules[0] == {"key": "seal_intact", "answer": True, "grade": "A", "skip": True, "pct": None, "amount": None}
    assert rules[1]["pct"] == "0.1000" and rules[2] == {"key": "powers_on", "answer": False, "grade": "C", "skip": False,
                                                        "pct": None, "amount": "25.00"}
    assert rules_text(rules) == TEXT
    assert parse_rules(rules_text(rules), ITEMS) == rules
    assert parse_rules("", ITEMS) == []


@pytest.mark.parametrize("text, words", [
    ("sealed = yes -> grade A", "sealed is not a key of this checklist"),
    ("seal_intact = maybe -> grade A", "the answer is yes or no"),
    ("seal_intact = yes -> grade E", "a grade is A, B, C or D"),
    ("seal_intact = yes -> deduct 150%", "at most 100"),
    ("seal_intact = yes -> deduct 0%", "more than 0"),
    ("seal_intact = yes -> deduct -3", "a fixed deduction is an amount"),
    ("seal_intact = yes -> explode", "is not an action"),
    ("seal_intact yes grade A", "write a rule as key = yes"),
    ("seal_intact = yes -> grade A\nseal_intact = yes -> grade B", "already has a rule (line 1)"),
])
def test_bad_rules_name_their_line(text, words):
    with pytest.raises(RulesInvalid) as err:
        parse_rules(text, ITEMS)
    assert words in "; ".join(err.value.problems)
    assert err.value.problems[-1].startswith("Line ")


def test_seal_intact_sets_grade_a_and_skips_the_rest():
    g = evaluate(ITEMS, parse_rules(TEXT, ITEMS), {"seal_intact": True, "all_parts": False, "powers_on": False})
    assert g.grade == "A" and g.skipped == ("all_parts", "powers_on")
    assert g.deductions == ()  # the skipped answers count for nothing
    assert g.reasons == ("Seal intact: yes -> grade A, the rest skipped",)


def test_missing_parts_deduct_and_the_grade_is_the_first_set():
    g = evaluate(ITEMS, parse_rules(TEXT, ITEMS), {"seal_intact": False, "all_parts": False, "powers_on": False})
    assert g.grade == "C" and g.skipped == ()
    assert g.deductions == (Deduction("All parts present: no", pct=Decimal("0.1000")),
                            Deduction("Powers on: no", amount=Decimal("25.00")))
    assert g.explanation == "All parts present: no -> less 10%; Powers on: no -> grade C, less 25.00"
    # nothing answered: nothing set, nothing kept
    assert evaluate(ITEMS, parse_rules(TEXT, ITEMS), {}) == Grading() and Grading().as_json() is None


def test_deductions_worked_by_hand():
    # 200.00 less 10% (20.00) and 15.00: 165.00; the percentages are each of 200.00: 10% + 20% = 60.00
    assert apply_deductions(Decimal("200.00"), [Deduction("a", pct=Decimal("0.10")), Deduction("b", amount=Decimal("15"))]) == Decimal("165.00")
    assert apply_deductions(Decimal("200.00"), [Deduction("a", pct=Decimal("0.10")), Deduction("b", pct=Decimal("0.20"))]) == Decimal("140.00")
    # never below zero; 33.33 less 1/3 rounds half up to the cent: 33.33 - 11.109 = 22.221 -> 22.22
    assert apply_deductions(Decimal("10.00"), [Deduction("a", amount=Decimal("25"))]) == Decimal("0.00")
    assert apply_deductions(Decimal("33.33"), [Deduction("a", pct=Decimal("0.3333"))]) == Decimal("22.22")


def test_a_kit_checks_each_component_and_a_missing_one_deducts_its_share():
    # a 129.00 kit: 2 cables of 6.45 are 12.90 of it, 10%; a charger with a set 25%; a manual worth nothing known: 10%
    assert component_share(None, Decimal("6.45"), 2, Decimal("129.00")) == Decimal("0.1000")
    assert component_share(Decimal("0.25"), Decimal("40"), 1, Decimal("129.00")) == Decimal("0.25")
    assert component_share(None, None, 1, Decimal("129.00")) == Decimal("0.10")
    assert component_share(None, Decimal("500"), 1, Decimal("129.00")) == Decimal("1")  # never more than all of it
    kit = [Component(1, "USB-C cable", 2, Decimal("0.1000")), Component(2, "Charger", 1, Decimal("0.25"))]
    assert [i["key"] for i in component_items(kit)] == ["part_1", "part_2"]
    assert component_items(kit)[0]["label"] == "USB-C cable × 2"
    g = evaluate(ITEMS[1:], [], {"all_parts": True, "powers_on": True, "part_1": True, "part_2": False}, kit)
    assert g.missing == ("Charger",) and g.grade is None
    assert g.reasons == ("missing Charger -> less 25%",)
    stored = g.as_json()
    assert stored["missing"] == ["Charger"] and Grading.from_json(stored) == g
    # 129.00 refunded in full, less the charger's 25%: 96.75
    assert apply_deductions(Decimal("129.00"), g.deductions) == Decimal("96.75")
    # a seal intact skips the components too: a sealed kit is whole
    sealed = evaluate(ITEMS, parse_rules(TEXT, ITEMS), {"seal_intact": True, "part_2": False}, kit)
    assert sealed.missing == () and sealed.skipped == ("all_parts", "powers_on", "part_1", "part_2")


def test_the_decision_names_the_answers_and_the_refund_loses_the_deduction():
    g = evaluate(ITEMS, parse_rules(TEXT, ITEMS), {"seal_intact": False, "all_parts": False, "powers_on": True})
    facts = InspectionFacts(grade="B", category="apparel", unit_value=Decimal("200.00"), reason_code="changed_mind",
                            channel="web", packaging="opened", grading_reasons=g.reasons, deductions=g.deductions)
    d = decide(DEFAULT_RULES, facts)
    assert d.explanation.endswith("; All parts present: no -> less 10%") and d.deductions == g.deductions
    # 200.00 less the rule's restocking fee of 15% = 170.00, less 10% of that (17.00) = 153.00
    assert d.refund_action == "less_restocking_fee"
    assert refund_amount(Decimal("200.00"), d.refund_action, restocking_fee_pct=d.restocking_fee_pct,
                         deductions=d.deductions) == Decimal("153.00")
    # without the deduction: 170.00
    assert refund_amount(Decimal("200.00"), d.refund_action, restocking_fee_pct=d.restocking_fee_pct) == Decimal("170.00")
