"""Editing the disposition rules and the reason codes, with a preview before saving.

A rule set is edited as a whole (order matters), validated with app.disposition.domain, previewed
against the last N inspected units (what was decided, what the current rules say, what the
edited rules would say), then saved: the rule rows are replaced, a RuleSetVersion snapshot and
an audit entry are written, in one transaction guarded against a concurrent save.
"""
from __future__ import annotations

import re
from collections import Counter as Tally
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, distinct, func, select, update
from sqlalchemy.orm import Session

from app.auth.models import User
from app.auth.roles import Actor
from app.ledger.queries import scope_units
from app.catalog.models import Product, SalesChannel
from app.catalog.queries import category_codes
from app.disposition.domain import (CONDITION_KEYS, DISPOSITIONS, GRADES, LIST_KEYS, PACKAGING_STATES, REFUND_ACTIONS,
                                    RESPONSIBLE_PARTIES,
                                    Decision, InspectionFacts, Rule, decide, validate_rule)
from app.disposition.models import DispositionRule, ReasonCode, RuleSetVersion
from app.disposition.services import load_rules
from app.errors import Conflict, NotFound, NotPermitted, StaleVersion, ValidationFailed
from app.exceptions.services import require_reason
from app.ledger.idempotency import Result, run_idempotent
from app.ledger.models import Counter, ReturnUnit
from app.ledger.writer import audit_row
from app.orders.models import Order, Rma, RmaLine
from app.rows import write
from app.words import N_

MAX_RULES = 100
PREVIEW_DEFAULT = 200
PREVIEW_MAX = 1000
_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")


def _require(actor: Actor) -> None:
    if not actor.can("edit_rules"):
        raise NotPermitted(N_("Only a supervisor may edit rules and reason codes."))


# --------------------------------------------------------------------------- the form


@dataclass
class RuleDraft:
    """One rule as typed into the editor (raw text, not yet validated)."""

    position: str = ""
    name: str = ""
    conditions: dict[str, Any] = field(default_factory=dict)
    disposition: str = "quarantine"
    refund_action: str = "hold"
    restocking_fee_pct: str = "0.15"
    enabled: bool = True
    remove: bool = False
    is_new: bool = False
    changed: bool = False  # differs from the rule set in force (the editor keeps it open, marked)

    def value(self, key: str) -> str:
        """A condition as the editor shows it (lists comma-separated)."""
        raw = self.conditions.get(key)
        if raw is None:
            return ""
        if isinstance(raw, (list, tuple)):
            return ", ".join(str(v) for v in raw)
        if isinstance(raw, bool):
            return "true" if raw else "false"
        return str(raw)

    def has(self, key: str, option: str) -> bool:
        """True when a list condition holds `option` (for the editor's check boxes)."""
        raw = self.conditions.get(key) or ()
        items = raw.split(",") if isinstance(raw, str) else raw
        return option.lower() in {str(v).strip().lower() for v in items}


def drafts_from_rules(rules: Sequence[Rule]) -> list[RuleDraft]:
    """The current rules as editor rows."""
    out = []
    for r in sorted(rules, key=lambda r: r.position):
        conditions = {k: (list(v) if isinstance(v, tuple) else v) for k, v in r.conditions.items()}
        out.append(RuleDraft(position=str(r.position), name=r.name, conditions=conditions, disposition=r.disposition,
                             refund_action=r.refund_action, restocking_fee_pct=f"{r.restocking_fee_pct.normalize():f}", enabled=r.enabled))
    return out


def drafts_from_form(form: Any) -> list[RuleDraft]:
    """Parse the editor's fields `r<i>-<field>` (i = 0..count-1; `count` says how many)."""
    try:
        count = int(form.get("count", "0"))
    except (TypeError, ValueError):
        count = 0
    count = max(0, min(count, MAX_RULES + 1))
    drafts = []
    for i in range(count):
        p = f"r{i}-"
        get = lambda name, default="": (form.get(p + name) or default)  # noqa: E731
        conditions: dict[str, Any] = {}
        for key in CONDITION_KEYS:
            if key in ("category_in", "grade_in", "packaging_in"):  # check boxes
                values = [v for v in form.getlist(p + key) if isinstance(v, str)]
                if values:
                    conditions[key] = values
            else:
                raw = get(key).strip()
                if raw:
                    conditions[key] = raw[:500]
        drafts.append(RuleDraft(position=get("position").strip()[:6], name=get("name").strip()[:200], conditions=conditions,
                                disposition=get("disposition", "quarantine").strip(),
                                refund_action=get("refund_action", "hold").strip(),
                                restocking_fee_pct=get("restocking_fee_pct").strip()[:12],
                                enabled=get("enabled") in ("1", "on", "true"), remove=get("remove") in ("1", "on", "true"),
                                is_new=get("new") == "1"))
    return drafts


class RulesInvalid(ValidationFailed):
    """The edited rules do not validate; `errors` maps editor row -> messages."""

    def __init__(self, errors: dict[int, list[str]], general: list[str]) -> None:
        super().__init__("Fix the rules marked below: nothing was saved.")
        self.errors = errors
        self.general = general


def mark_changes(session: Session, drafts: Sequence[RuleDraft]) -> None:
    """Flag the drafts that differ from the rules in force (content or order)."""
    current = {json_key(rule_json(r)) for r in load_rules(session)}
    for d in drafts:
        if d.is_new:
            d.changed = bool(d.name or d.conditions)
            continue
        try:
            rule = Rule(int(d.position), d.name, d.conditions, d.disposition, d.refund_action,
                        Decimal(d.restocking_fee_pct or "0.15"), d.enabled)
        except (ValueError, ArithmeticError):
            d.changed = True
            continue
        d.changed = d.remove or json_key(rule_json(rule)) not in current


def json_key(data: dict[str, Any]) -> str:
    """A comparable form of a stored rule."""
    import json

    return json.dumps(data, sort_keys=True, default=str)


def known_codes(session: Session) -> dict[str, list[str] | None]:
    """Codes the rules may name; None means "not configured: do not check"."""
    reasons = list(session.scalars(select(ReasonCode.code).order_by(ReasonCode.code)))
    channels = list(session.scalars(select(SalesChannel.code).order_by(SalesChannel.code)))
    return {"categories": category_codes(session), "reasons": reasons or None, "channels": channels or None}


def validate_drafts(session: Session, drafts: Sequence[RuleDraft]) -> list[Rule]:
    """Validated, renumbered (1..n in the edited order) rules; RulesInvalid with every problem."""
    known = known_codes(session)
    errors: dict[int, list[str]] = {}
    kept: list[tuple[int, int, RuleDraft]] = []
    for i, d in enumerate(drafts):
        if d.remove or (d.is_new and not d.name and not d.conditions):
            continue  # a removed rule, or the editor's blank "new rule" row left empty
        problems = []
        if not d.name:
            problems.append("give the rule a name")
        elif len(d.name) > 120:
            problems.append("keep the name under 120 characters")
        try:
            position = int(d.position)
            if not 1 <= position <= 9999:
                raise ValueError
        except ValueError:
            problems.append("the order must be a whole number from 1")
            position = 9999
        fee = d.restocking_fee_pct or "0.15"
        problems += validate_rule(d.conditions, d.disposition, d.refund_action, restocking_fee_pct=fee,
                                  known_categories=known["categories"], known_reasons=known["reasons"],
                                  known_channels=known["channels"])
        if problems:
            errors[i] = problems
        kept.append((position, i, d))
    general = []
    if not kept:
        general.append("Keep at least one rule.")
    if len(kept) > MAX_RULES:
        general.append(f"Keep at most {MAX_RULES} rules.")
    if errors or general:
        raise RulesInvalid(errors, general)
    rules = []
    # Equal order numbers: the rule that was given that number (moved there) goes first.
    ordered = sorted(kept, key=lambda t: (t[0], 0 if t[0] != t[1] + 1 else 1, t[1]))
    for n, (_pos, i, d) in enumerate(ordered, start=1):
        try:
            rules.append(Rule(n, d.name, d.conditions, d.disposition, d.refund_action,
                              Decimal(d.restocking_fee_pct or "0.15"), d.enabled))
        except (ValueError, ArithmeticError) as exc:  # validate_rule already caught these; belt and braces
            raise RulesInvalid({i: [str(exc)]}, []) from None
    return rules


def warnings_for(rules: Sequence[Rule]) -> list[str]:
    """Things worth a second look that are not errors."""
    out = []
    enabled = [r for r in rules if r.enabled]
    if not any(not r.conditions for r in enabled):
        out.append("No enabled catch-all rule: units no rule matches go to quarantine with their refund held.")
    for r in enabled:
        if not r.conditions and r is not enabled[-1]:
            later = [x.position for x in enabled if x.position > r.position]
            out.append(f"Rule {r.position} matches every unit: rules {', '.join(map(str, later))} will never decide.")
            break
    return out


def rule_json(rule: Rule) -> dict[str, Any]:
    """A rule as stored (JSON-safe: amounts as text, lists as lists)."""
    conditions: dict[str, Any] = {}
    for key, value in rule.conditions.items():
        if isinstance(value, tuple):
            conditions[key] = list(value)
        elif isinstance(value, Decimal):
            conditions[key] = str(value)
        else:
            conditions[key] = value
    return {"position": rule.position, "name": rule.name, "conditions": conditions, "disposition": rule.disposition,
            "refund_action": rule.refund_action, "restocking_fee_pct": str(rule.restocking_fee_pct), "enabled": rule.enabled}


# --------------------------------------------------------------------------- preview


@dataclass
class PreviewRow:
    """One recent unit whose outcome the edit would change."""

    unit_id: int
    lpn: str
    sku: str
    facts: InspectionFacts
    decided: str | None
    current: Decision
    edited: Decision


@dataclass
class Preview:
    """How the last N inspected units would have been decided by the edited rules."""

    n: int
    total: int
    changed_vs_decided: int
    changed_vs_current: int
    transitions: list[tuple[tuple[str, str], int]]
    hits: list[tuple[str, int]]
    rows: list[PreviewRow]
    warnings: list[str]


def recent_facts(session: Session, actor: Actor, n: int) -> list[tuple[ReturnUnit, str, InspectionFacts]]:
    """The last n inspected units with the facts the rules see (as app.disposition.services.facts_for
    builds them), in four queries instead of several per unit."""
    rows = session.execute(
        scope_units(select(ReturnUnit, Product.sku, Product.category, Product.unit_value, Rma.customer_id,
                           SalesChannel.code, RmaLine.reason_code)
                    .join(Product, Product.id == ReturnUnit.product_id)
                    .outerjoin(Rma, Rma.id == ReturnUnit.rma_id)
                    .outerjoin(SalesChannel, SalesChannel.id == Rma.channel_id)
                    .outerjoin(RmaLine, RmaLine.id == ReturnUnit.rma_line_id)
                    .where(ReturnUnit.grade.is_not(None), ReturnUnit.packaging.is_not(None),
                           ReturnUnit.inspected_at.is_not(None))
                    .order_by(ReturnUnit.inspected_at.desc(), ReturnUnit.id.desc()).limit(n), actor)
    ).all()
    customers = {r.customer_id for r in rows if r.customer_id is not None}
    returns: dict[int, int] = {}
    orders: dict[int, int] = {}
    if customers:
        returns = dict(session.execute(select(Rma.customer_id, func.count(distinct(Rma.id)))
                                       .where(Rma.customer_id.in_(customers)).group_by(Rma.customer_id)).all())
        orders = dict(session.execute(select(Order.customer_id, func.count(Order.id))
                                      .where(Order.customer_id.in_(customers)).group_by(Order.customer_id)).all())
    out = []
    for r in rows:
        unit: ReturnUnit = r[0]
        count, rate = 0, 0.0
        if r.customer_id is not None:  # the same arithmetic as customer_history
            nret, nord = returns.get(r.customer_id, 0), orders.get(r.customer_id, 0)
            count, rate = max(nret - 1, 0), (min(nret / nord, 1.0) if nord else 0.0)
        try:
            facts = InspectionFacts(grade=unit.grade, category=r.category, unit_value=r.unit_value or Decimal(0),
                                    reason_code=r.reason_code or "unknown", channel=r.code or "unknown",
                                    serial_mismatch=unit.serial_status == "mismatch", packaging=unit.packaging,
                                    customer_return_count=count, customer_return_rate=rate)
        except ValueError:
            continue  # a unit the rules cannot reason about would not have been decided by them either
        out.append((unit, r.sku, facts))
    return out


def preview_rules(session: Session, actor: Actor, rules: Sequence[Rule], n: int = PREVIEW_DEFAULT,
                  max_rows: int = 100) -> Preview:
    """Decide the last n inspected units with the edited rules and compare (read-only)."""
    _require(actor)
    n = max(1, min(int(n), PREVIEW_MAX))
    current_rules = load_rules(session)
    transitions: Tally[tuple[str, str]] = Tally()
    hits: Tally[str] = Tally()
    rows: list[PreviewRow] = []
    changed_decided = changed_current = 0
    sample = recent_facts(session, actor, n)
    for unit, sku, facts in sample:
        current, edited = decide(current_rules, facts), decide(rules, facts)
        hits[edited.explanation if edited.is_fallback else f"rule {edited.rule_position}: {edited.rule_name}"] += 1
        decided = unit.disposition
        differs_decided = decided is not None and decided != edited.disposition
        differs_current = current.disposition != edited.disposition or current.refund_action != edited.refund_action
        changed_decided += differs_decided
        changed_current += differs_current
        if differs_decided or differs_current:
            transitions[(decided or "not decided yet", edited.disposition)] += 1
            if len(rows) < max_rows:
                rows.append(PreviewRow(unit.id, unit.lpn, sku, facts, decided, current, edited))
    return Preview(n=n, total=len(sample), changed_vs_decided=changed_decided, changed_vs_current=changed_current,
                   transitions=transitions.most_common(), hits=hits.most_common(), rows=rows,
                   warnings=warnings_for(rules))


# --------------------------------------------------------------------------- save


def latest_version(session: Session) -> RuleSetVersion | None:
    """The newest saved rule set version."""
    return session.scalars(select(RuleSetVersion).order_by(RuleSetVersion.id.desc()).limit(1)).first()


def versions(session: Session, limit: int = 10) -> list[tuple[RuleSetVersion, str | None]]:
    """The newest saved versions with who saved them."""
    rows = session.execute(select(RuleSetVersion, User.name).outerjoin(User, User.id == RuleSetVersion.created_by_id)
                           .order_by(RuleSetVersion.id.desc()).limit(limit)).all()
    return [(v, name) for v, name in rows]


def _lock_rule_set(session: Session) -> int:
    """Serialise rule-set saves on a counter row (UPDATE takes its row lock; first save inserts it)."""
    value = session.execute(update(Counter).where(Counter.name == "rule_set").values(value=Counter.value + 1)
                            .returning(Counter.value)).scalar()
    if value is None:
        session.add(Counter(name="rule_set", value=1))
        session.flush()
        return 1
    return int(value)


@dataclass(frozen=True)
class RulesSaved(Result):
    """save_rules's answer: the new version, how many rules it has, and the rules (by name) added,
    removed, changed and moved since the previous version."""

    version_id: int
    rules: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    moved: tuple[str, ...]


@dataclass(frozen=True)
class ReasonCodeSaved(Result):
    """A reason code as added or updated; `changed`: whether an update changed anything."""

    code: str
    label: str
    active: bool = True
    changed: bool = True


def _diff(old: Sequence[Rule], new: Sequence[Rule]) -> dict[str, list[str]]:
    before = {r.name: rule_json(r) for r in old}
    after = {r.name: rule_json(r) for r in new}
    changed = [name for name in after if name in before and
               {k: v for k, v in after[name].items() if k != "position"} != {k: v for k, v in before[name].items() if k != "position"}]
    moved = [name for name in after if name in before and after[name]["position"] != before[name]["position"]]
    return {"added": [n for n in after if n not in before], "removed": [n for n in before if n not in after],
            "changed": changed, "moved": moved}


def save_rules(session: Session, actor: Actor, *, rules: Sequence[Rule], note: str | None, base_version: int | None,
               idempotency_key: str | None) -> RulesSaved:
    """Use case: replace the rule set with validated `rules`, versioned and audited, in one transaction.

    `base_version` is the RuleSetVersion id the editor was opened on (0 when none): a save made
    meanwhile by somebody else is not silently overwritten.
    """
    _require(actor)
    note = require_reason(note)
    if not rules:
        raise ValidationFailed(N_("Keep at least one rule."))
    snapshot = [rule_json(r) for r in rules]

    def work() -> RulesSaved:
        _lock_rule_set(session)
        latest = latest_version(session)
        if base_version is not None and (latest.id if latest else 0) != base_version:
            who = session.get(User, latest.created_by_id) if latest and latest.created_by_id else None
            raise StaleVersion(N_("The rules were already changed by %(who)s since you opened them. Nothing was saved: "
                                  "reload the editor and make your change again."), who=who.name if who else "—")
        old = load_rules(session)
        session.execute(delete(DispositionRule))
        for r in rules:
            session.add(DispositionRule(position=r.position, name=r.name, conditions=rule_json(r)["conditions"],
                                        disposition=r.disposition, refund_action=r.refund_action,
                                        restocking_fee_pct=r.restocking_fee_pct, enabled=r.enabled))
        version = RuleSetVersion(rules=snapshot, note=note, created_by_id=actor.id)
        session.add(version)
        session.flush()
        diff = _diff(old, rules)
        write(session, [audit_row(actor, "rules.saved", "rule_set", version.id, reason=note,
                                  details={"rules": len(rules), "previous_version": latest.id if latest else None,
                                           **diff})])
        return RulesSaved(version.id, len(rules), **{key: tuple(names) for key, names in diff.items()})

    return run_idempotent(session, actor, idempotency_key, "desk.save_rules",
                          {"rules": snapshot, "note": note, "base": base_version}, work, result_type=RulesSaved)


# --------------------------------------------------------------------------- reason codes


def reason_codes(session: Session) -> list[ReasonCode]:
    """Every reason code, active first."""
    return list(session.scalars(select(ReasonCode).order_by(ReasonCode.active.desc(), ReasonCode.label)))


def _label(label: str | None) -> str:
    label = (label or "").strip()
    if not label:
        raise ValidationFailed(N_("Give the reason code a label."))
    if len(label) > 120:
        raise ValidationFailed(N_("Keep the label under 120 characters."))
    return label


def _require_reasons(actor: Actor) -> None:
    if not actor.can("edit_reason_codes"):
        raise NotPermitted(N_("Only a supervisor or an admin may edit reason codes."))


def _avoidable(value: str | None) -> bool | None:
    """"yes" / "no" / "" (not said) from the form."""
    value = (value or "").strip().lower()
    if value not in ("", "yes", "no"):
        raise ValidationFailed(N_("Say whether the return was avoidable: yes, no, or not said."))
    return None if not value else value == "yes"


def _party(value: str | None) -> str | None:
    value = (value or "").strip().lower()
    if value and value not in RESPONSIBLE_PARTIES:
        raise ValidationFailed(N_("The party responsible is one of %(responsible_parties)s (or not said)."),
                               responsible_parties=', '.join(RESPONSIBLE_PARTIES))
    return value or None


def _reason_facts(rc: ReasonCode) -> dict[str, Any]:
    return {"code": rc.code, "label": rc.label, "active": rc.active, "avoidable": rc.avoidable,
            "responsible_party": rc.responsible_party}


def add_reason_code(session: Session, actor: Actor, *, code: str | None, label: str | None,
                    avoidable: str | None = None, responsible_party: str | None = None,
                    idempotency_key: str | None) -> ReasonCodeSaved:
    """Use case: a new customer-stated return reason, with whether such returns are avoidable and
    who is responsible (for the reason analytics); audited."""
    _require_reasons(actor)
    code = (code or "").strip().lower()
    if not _CODE_RE.match(code):
        raise ValidationFailed(N_("A code is 2-32 lower-case letters, digits or '_', starting with a letter (e.g. too_small)."))
    label, avoid, party = _label(label), _avoidable(avoidable), _party(responsible_party)

    def work() -> ReasonCodeSaved:
        if session.get(ReasonCode, code) is not None:
            raise Conflict(N_("The reason code '%(code)s' already exists."), code=code)
        rc = ReasonCode(code=code, label=label, active=True, avoidable=avoid, responsible_party=party)
        session.add(rc)
        session.flush()
        write(session, [audit_row(actor, "reason_code.added", "reason_code", 0,
                                  details={"code": code, "before": None, "after": _reason_facts(rc)})])
        return ReasonCodeSaved(code, label)

    return run_idempotent(session, actor, idempotency_key, "desk.add_reason_code",
                          {"code": code, "label": label, "avoidable": avoid, "party": party}, work,
                          result_type=ReasonCodeSaved)


_UNSAID = object()


def update_reason_code(session: Session, actor: Actor, *, code: str, label: str | None = None, active: bool | None = None,
                       avoidable: Any = _UNSAID, responsible_party: Any = _UNSAID,
                       idempotency_key: str | None) -> ReasonCodeSaved:
    """Use case: rename a reason code, (de)activate it, or say whether its returns are avoidable and
    who is responsible. Codes are never deleted: old returns name them."""
    _require_reasons(actor)
    new_label = _label(label) if label is not None else None
    classify = avoidable is not _UNSAID or responsible_party is not _UNSAID
    avoid = _avoidable(avoidable) if avoidable is not _UNSAID else None
    party = _party(responsible_party) if responsible_party is not _UNSAID else None
    if new_label is None and active is None and not classify:
        raise ValidationFailed(N_("Nothing to change."))

    def work() -> ReasonCodeSaved:
        rc = session.scalars(select(ReasonCode).where(ReasonCode.code == code).with_for_update()
                             .execution_options(populate_existing=True)).first()
        if rc is None:
            raise NotFound(N_("No such reason code."))
        before = _reason_facts(rc)
        if new_label is not None:
            rc.label = new_label
        if active is not None:
            rc.active = active
        if classify:
            rc.avoidable, rc.responsible_party = avoid, party
        after = _reason_facts(rc)
        if after == before:
            return ReasonCodeSaved(code, rc.label, rc.active, changed=False)
        action = ("reason_code.renamed" if after["label"] != before["label"] else
                  "reason_code.classified" if classify else
                  "reason_code.activated" if active else "reason_code.deactivated")
        session.flush()
        write(session, [audit_row(actor, action, "reason_code", 0, details={"code": code, "before": before, "after": after})])
        return ReasonCodeSaved(code, rc.label, rc.active, changed=True)

    params = {"code": code, "label": new_label, "active": active, "avoidable": avoid if classify else "-",
              "party": party if classify else "-"}
    return run_idempotent(session, actor, idempotency_key, "desk.update_reason_code", params, work,
                          result_type=ReasonCodeSaved)


def editor_choices(session: Session) -> dict[str, Any]:
    """The editor's option lists (the categories from their table, the rest fixed)."""
    return {"dispositions": DISPOSITIONS, "refund_actions": REFUND_ACTIONS, "grades": GRADES,
            "packaging_states": PACKAGING_STATES, "categories": category_codes(session), "list_keys": LIST_KEYS}


def parse_preview_n(raw: Any) -> int:
    """The preview size from the form, bounded (junk -> the default)."""
    try:
        n = int(str(raw).strip())
    except (TypeError, ValueError):
        return PREVIEW_DEFAULT
    return max(1, min(n, PREVIEW_MAX))


def empty_draft(position: int, fee: str = "0.15") -> RuleDraft:
    """The editor's blank row for a new rule, with the console's default restocking fee."""
    return RuleDraft(position=str(position), name="", conditions={}, disposition="quarantine", refund_action="hold",
                     restocking_fee_pct=fee, enabled=True, is_new=True)


def mapping_errors(exc: RulesInvalid) -> Mapping[int, list[str]]:
    """Per-row errors of a RulesInvalid (for templates)."""
    return exc.errors
