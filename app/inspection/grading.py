"""Guided grading as plain Python (no Flask, no SQL): what a checklist's answers set.

An admin writes a category's grading rules beside its checklist, one a line, and they are saved
with the checklist's version:

    seal_intact = yes -> grade A, skip the rest
    all_parts = no -> deduct 10%
    manual = no -> deduct 2.50

A rule names one checklist item's key and an answer; when the worker gives that answer it sets the
condition grade (the first such rule in checklist order wins), skips the items after it (they are
neither asked nor recorded), and deducts a share of the refund ("10%") or a fixed amount ("2.50").

A kit (a product made of components, app.catalog.models.ProductComponent) adds one check per
component after the checklist's items (`component_items`); a component answered "no" is missing: it
deducts its `deduction_pct`, else its value's share of the kit's (`component_share`), else
DEFAULT_COMPONENT_PCT, and the return is flagged with it.

`evaluate` gives the Grading: the grade set, the items skipped, the deductions and the answers
that set them, in words. `apply_deductions` takes them off a refund: every percentage of the same
base, then the fixed amounts, never below zero (200.00 less 10% and 15.00: 165.00).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from app.words import pct_words

GRADES = ("A", "B", "C", "D")
MAX_RULES = 40
MAX_AMOUNT = Decimal("100000")
DEFAULT_COMPONENT_PCT = Decimal("0.10")
COMPONENT_PREFIX = "part_"
_CENT = Decimal("0.01")
_LINE = re.compile(r"^\s*([^=]+?)\s*=\s*([A-Za-z]+)\s*->\s*(.+?)\s*$")
_DEDUCT = re.compile(r"^deduct\s+(\S+?)\s*(%?)$")


class RulesInvalid(ValueError):
    """What is wrong with grading rules' text: every problem, one a line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _number(text: str) -> Decimal | None:
    """A plain decimal number (digits, one point), or None."""
    if not re.fullmatch(r"\d{1,9}(\.\d{1,4})?", text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        return None


def _actions(text: str, n: int, problems: list[str]) -> dict[str, Any]:
    """The actions of one rule's right-hand side ("grade A, skip the rest, deduct 10%")."""
    rule: dict[str, Any] = {"grade": None, "skip": False, "pct": None, "amount": None}
    for part in (p.strip().lower() for p in text.split(",")):
        if part.startswith("grade"):
            grade = part[5:].strip().upper()
            if grade not in GRADES:
                problems.append(f"Line {n}: a grade is A, B, C or D (write it as grade A).")
            elif rule["grade"] is not None:
                problems.append(f"Line {n}: give one grade a rule.")
            rule["grade"] = grade if grade in GRADES else rule["grade"]
        elif part in ("skip", "skip the rest", "skip rest"):
            rule["skip"] = True
        elif (m := _DEDUCT.match(part)) is not None:
            value = _number(m.group(1))
            if rule["pct"] is not None or rule["amount"] is not None:
                problems.append(f"Line {n}: give one deduction a rule.")
            elif m.group(2):
                if value is None or not 0 < value <= 100:
                    problems.append(f"Line {n}: a deduction in percent is more than 0 and at most 100 (deduct 10%).")
                else:
                    rule["pct"] = str((value / 100).quantize(Decimal("0.0001")))
            elif value is None or not 0 < value <= MAX_AMOUNT:
                problems.append(f"Line {n}: a fixed deduction is an amount more than 0 and at most {MAX_AMOUNT} (deduct 2.50).")
            else:
                rule["amount"] = str(value.quantize(_CENT, ROUND_HALF_UP))
        else:
            problems.append(f"Line {n}: \"{part[:40]}\" is not an action: write grade A, skip the rest, deduct 10% or deduct 2.50.")
    return rule


def parse_rules(text: str, items: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
    """The grading rules of an editor's text, checked against the checklist's `items`: one a line,
    "key = yes|no -> action, action", blank lines skipped. The key is one of the items'; each
    key and answer has one rule; 0 to MAX_RULES rules. RulesInvalid names every line at fault."""
    keys = {item["key"] for item in items}
    rules: list[dict[str, Any]] = []
    problems: list[str] = []
    seen: dict[tuple[str, bool], int] = {}
    if len(text) > 10_000:
        raise RulesInvalid(["Keep the grading rules under 10000 characters."])
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if m is None:
            problems.append(f"Line {n}: write a rule as key = yes -> grade A, skip the rest (or deduct 10%).")
            continue
        key, answer = m.group(1).strip(), m.group(2).lower()
        if key not in keys:
            problems.append(f"Line {n}: {key[:40]} is not a key of this checklist.")
        if answer not in ("yes", "no"):
            problems.append(f"Line {n}: the answer is yes or no.")
        rule = {"key": key, "answer": answer == "yes", **_actions(m.group(3), n, problems)}
        if rule["grade"] is None and not rule["skip"] and rule["pct"] is None and rule["amount"] is None:
            problems.append(f"Line {n}: say what the answer does: grade A, skip the rest, deduct 10% or deduct 2.50.")
        if (key, rule["answer"]) in seen:
            problems.append(f"Line {n}: {key} = {answer} already has a rule (line {seen[(key, rule['answer'])]}).")
        seen.setdefault((key, rule["answer"]), n)
        rules.append(rule)
    if not problems and len(rules) > MAX_RULES:
        problems.append(f"Keep to {MAX_RULES} grading rules.")
    if problems:
        raise RulesInvalid(problems)
    return rules


def rules_text(rules: Sequence[Mapping[str, Any]] | None) -> str:
    """The editor's text of grading rules (parse_rules reads it back)."""
    lines = []
    for r in rules or []:
        actions = [f"grade {r['grade']}"] if r.get("grade") else []
        if r.get("skip"):
            actions.append("skip the rest")
        if r.get("pct") is not None:
            actions.append(f"deduct {pct_words(Decimal(r['pct']))}")
        if r.get("amount") is not None:
            actions.append(f"deduct {r['amount']}")
        lines.append(f"{r['key']} = {'yes' if r['answer'] else 'no'} -> {', '.join(actions)}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Component:
    """A kit's component as the inspection checks it: its place in the kit, name, quantity and the
    share of the refund it deducts when missing."""

    position: int
    name: str
    quantity: int
    pct: Decimal

    @property
    def key(self) -> str:
        return f"{COMPONENT_PREFIX}{self.position}"

    @property
    def label(self) -> str:
        return f"{self.name} × {self.quantity}" if self.quantity > 1 else self.name


def component_share(deduction_pct: Decimal | None, component_value: Decimal | None, quantity: int,
                    kit_value: Decimal | None) -> Decimal:
    """The share of the refund a missing component deducts: its own `deduction_pct` when set, else
    its value times its quantity over the kit's value (at most all of it), else DEFAULT_COMPONENT_PCT.
    A 129.00 kit missing 2 cables of 6.45: 12.90 / 129.00 = 0.10."""
    if deduction_pct is not None:
        return Decimal(deduction_pct)
    if component_value and kit_value and component_value > 0 and kit_value > 0:
        return min(Decimal(component_value) * quantity / Decimal(kit_value), Decimal(1)).quantize(Decimal("0.0001"))
    return DEFAULT_COMPONENT_PCT


def component_items(components: Sequence[Component]) -> list[dict[str, str]]:
    """The checklist items a kit adds: one a component, answered yes when it is there."""
    return [{"key": c.key, "label": c.label, "component": "yes"} for c in components]


@dataclass(frozen=True)
class Deduction:
    """What is taken off a refund and why: a share (`pct`, 0.10 = 10%) or a fixed `amount`."""

    why: str
    pct: Decimal | None = None
    amount: Decimal | None = None

    def words(self) -> str:
        """"all parts present: no -> less 10%"."""
        less = pct_words(self.pct) if self.pct is not None else f"{self.amount:.2f}"
        return f"{self.why} -> less {less}"


@dataclass(frozen=True)
class Grading:
    """What a checklist's answers set: the grade (None: the worker picks it), the items skipped, the
    deductions, the components missing and, in words, the answers that set them."""

    grade: str | None = None
    grade_set_by: str | None = None
    skipped: tuple[str, ...] = ()
    deductions: tuple[Deduction, ...] = ()
    missing: tuple[str, ...] = ()
    reasons: tuple[str, ...] = field(default=())

    @property
    def explanation(self) -> str:
        """The answers that set the grade and deductions, "; "-joined ("" when none did)."""
        return "; ".join(self.reasons)

    def as_json(self) -> dict[str, Any] | None:
        """The grading as stored (return_units.grading, inspections.grading); None when nothing was set."""
        if self.grade is None and not self.deductions and not self.skipped:
            return None
        return {"grade": self.grade, "grade_set_by": self.grade_set_by, "skipped": list(self.skipped),
                "deductions": [{"why": d.why, "pct": None if d.pct is None else str(d.pct),
                                "amount": None if d.amount is None else str(d.amount)} for d in self.deductions],
                "missing": list(self.missing), "reasons": list(self.reasons)}

    @staticmethod
    def from_json(data: Mapping[str, Any] | None) -> Grading:
        """A stored grading read back (as_json's inverse); nothing when None."""
        if not data:
            return Grading()
        return Grading(grade=data.get("grade"), grade_set_by=data.get("grade_set_by"), skipped=tuple(data.get("skipped") or ()),
                       deductions=tuple(Deduction(d["why"], None if d.get("pct") is None else Decimal(d["pct"]),
                                                  None if d.get("amount") is None else Decimal(d["amount"]))
                                        for d in data.get("deductions") or ()),
                       missing=tuple(data.get("missing") or ()), reasons=tuple(data.get("reasons") or ()))


def _said(label: str, answer: bool) -> str:
    return f"{label}: {'yes' if answer else 'no'}"


def evaluate(items: Sequence[Mapping[str, str]], rules: Sequence[Mapping[str, Any]] | None,
             answers: Mapping[str, bool], components: Sequence[Component] = ()) -> Grading:
    """What `answers` (key -> yes/no; an item not in it is unanswered) set under `rules`, for a
    checklist's `items` followed by a kit's `components`, walked in order: a rule whose item was
    given its answer sets the grade (the first to set one wins), skips every item after it, and adds
    its deduction; a component answered no is missing and deducts its share. Skipped items' answers
    count for nothing."""
    by_key: dict[tuple[str, bool], Mapping[str, Any]] = {(r["key"], bool(r["answer"])): r for r in rules or []}
    labels = {item["key"]: item["label"] for item in items}
    grade = grade_set_by = None
    skipping = False
    skipped: list[str] = []
    deductions: list[Deduction] = []
    missing: list[str] = []
    reasons: list[str] = []
    keys = [item["key"] for item in items] + [c.key for c in components]
    kit = {c.key: c for c in components}
    for key in keys:
        if skipping:
            skipped.append(key)
            continue
        if key not in answers:
            continue
        answer = bool(answers[key])
        if key in kit:
            if not answer:
                c = kit[key]
                missing.append(c.label)
                deductions.append(Deduction(f"missing {c.label}", pct=c.pct))
                reasons.append(deductions[-1].words())
            continue
        rule = by_key.get((key, answer))
        if rule is None:
            continue
        said, did = _said(labels.get(key, key), answer), []
        if rule.get("grade") and grade is None:
            grade, grade_set_by = rule["grade"], said
            did.append(f"grade {grade}")
        if rule.get("skip"):
            skipping = True
            did.append("the rest skipped")
        if rule.get("pct") is not None or rule.get("amount") is not None:
            d = Deduction(said, pct=None if rule.get("pct") is None else Decimal(rule["pct"]),
                          amount=None if rule.get("amount") is None else Decimal(rule["amount"]))
            deductions.append(d)
            did.append(d.words().split(" -> ", 1)[1])
        if did:
            reasons.append(f"{said} -> {', '.join(did)}")
    return Grading(grade, grade_set_by, tuple(skipped), tuple(deductions), tuple(missing), tuple(reasons))


def apply_deductions(amount: Decimal, deductions: Sequence[Deduction]) -> Decimal:
    """A refund less its deductions: every percentage of `amount` itself (10% and 20% of 200.00 take
    60.00, not 56.00), then the fixed amounts, rounded to the cent, never below zero."""
    base = Decimal(amount)
    less = sum((base * d.pct for d in deductions if d.pct is not None), Decimal(0))
    less += sum((d.amount for d in deductions if d.amount is not None), Decimal(0))
    return max(base - less, Decimal(0)).quantize(_CENT, ROUND_HALF_UP)
