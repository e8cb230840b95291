"""Inspection rules as plain Python (no Flask, no SQL).

Checklists: an editor's text, one item a line ("key | label"), as items.

The inspection queue: which unit waiting for inspection comes first, and why, in words.

A unit's priority is the sum of three capped parts, each worth up to about a hundred points:

- value: 1 point per VALUE_STEP (5) of the unit's value (the price paid, else the product's value),
  up to VALUE_CAP (500): a 699.00 phone scores 100, a 25.00 tee 5;
- sell rate: SPEED_POINTS (5) points per unit of the SKU shipped a day over the last WINDOW_DAYS
  (28) days, up to SPEED_CAP (20 a day): a SKU shipping 38 a day scores 100, 1 a day scores 5;
- age: 1 point per hour on the dock, up to AGE_CAP_HOURS (120, five days): nothing waits forever
  behind newer, dearer units.

app.inspection.queries.inspection_queue orders the queue by the same sum in SQL (built from these
constants); `priority` gives the figures and the reason shown on each row.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from app.words import Translate, english

MAX_ITEMS = 40
MAX_LABEL = 120
MAX_TEXT = 10_000  # 40 lines of a 40-character key and a 120-character label, with room to spare
_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")


class ChecklistInvalid(ValueError):
    """What is wrong with a checklist's text: every problem, one a line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_items(text: str) -> list[dict[str, str]]:
    """The items of an editor's text: one a line, "key | label", blank lines skipped, in order.
    A key is 1-40 lower-case letters, digits or '_' (a letter first), each once; a label 1-120
    printable characters; 1-40 items. ChecklistInvalid names every line at fault."""
    if len(text) > MAX_TEXT:
        raise ChecklistInvalid([f"Keep the checklist under {MAX_TEXT} characters."])
    items: list[dict[str, str]] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if "|" not in line:
            problems.append(f"Line {n}: write it as key | label.")
            continue
        key, label = (part.strip() for part in line.split("|", 1))
        label = " ".join(label.split())
        if not _KEY.fullmatch(key):
            problems.append(f"Line {n}: a key is 1-40 lower-case letters, digits or '_', starting with a letter.")
        elif key in seen:
            problems.append(f"Line {n}: key {key} is also line {seen[key]}'s.")
        if not label or len(label) > MAX_LABEL or not label.isprintable():
            problems.append(f"Line {n}: a label is 1-{MAX_LABEL} printable characters.")
        seen.setdefault(key, n)
        items.append({"key": key, "label": label})
    if not problems and not 1 <= len(items) <= MAX_ITEMS:
        problems.append(f"A checklist has 1 to {MAX_ITEMS} items.")
    if problems:
        raise ChecklistInvalid(problems)
    return items


def items_text(items: list[dict[str, str]]) -> str:
    """The editor's text of a checklist's items (parse_items reads it back)."""
    return "\n".join(f"{item['key']} | {item['label']}" for item in items)


WINDOW_DAYS = 28
VALUE_STEP = 5
VALUE_CAP = 500
SPEED_POINTS = 5
SPEED_CAP = 20
AGE_CAP_HOURS = 120
# A part worth this many points or more is a reason of its own ("fast seller", "high value").
NOTABLE = 20




@dataclass(frozen=True)
class Priority:
    """A unit's place in the inspection queue: its score, its parts, and what the reason is made of
    (`words(tr)` says it in a language; `reason` in English)."""

    score: float
    value_points: float
    speed_points: float
    age_points: float
    chosen: tuple[str, ...]  # the parts the reason names, the largest first: "value", "speed", "age"
    value: Decimal | float | None
    shipped: int
    age_hours: float
    window_days: int = WINDOW_DAYS
    show_value: bool = True

    def words(self, tr: Translate = english) -> str:
        """The reason in words, through the translator `tr` (gettext's signature: message, figures)."""
        return " · ".join(_part_words(self, part, tr) for part in self.chosen)

    @property
    def reason(self) -> str:
        return self.words()


def per_day(shipped: int, window_days: int = WINDOW_DAYS) -> float:
    """Units of a SKU shipped a day, from those shipped over the window."""
    return max(shipped, 0) / window_days


def value_points(value: Decimal | float | None) -> float:
    return min(max(float(value or 0), 0.0), VALUE_CAP) / VALUE_STEP


def speed_points(shipped: int, window_days: int = WINDOW_DAYS) -> float:
    return min(per_day(shipped, window_days), SPEED_CAP) * SPEED_POINTS


def age_points(age_hours: float) -> float:
    return min(max(age_hours, 0.0), AGE_CAP_HOURS)


def age_words(age_hours: float, tr: Translate = english) -> str:
    """How long a unit has waited, the way the dock says it: "12 min", "3 h", "2 days"."""
    hours = max(age_hours, 0.0)
    if hours < 1:
        return tr("%(num)s min", num=int(hours * 60))
    if hours < 48:
        return tr("%(num)s h", num=int(hours))
    return tr("%(num)s days", num=int(hours // 24))


def _rate_words(shipped: int, window_days: int, tr: Translate) -> str:
    rate = per_day(shipped, window_days)
    if shipped <= 0:
        return tr("no sales in %(days)s days", days=window_days)
    if rate >= 1:
        figure = f"{rate:.0f}" if rate >= 10 else f"{rate:.1f}".rstrip("0").rstrip(".")
        return tr("%(rate)s shipped a day", rate=figure)
    return tr("%(shipped)s shipped in %(days)s days", shipped=shipped, days=window_days)


def _money(value: Decimal | float | None) -> str:
    return f"${float(value or 0):,.2f}".replace(".00", "")


def _part_words(p: Priority, part: str, tr: Translate) -> str:
    notable = {"value": p.value_points, "speed": p.speed_points, "age": p.age_points}[part] >= NOTABLE
    if part == "value":
        if not p.show_value:
            return tr("high value") if notable else tr("low value")
        return tr("high value: %(amount)s", amount=_money(p.value)) if notable else tr("value %(amount)s", amount=_money(p.value))
    if part == "speed":
        rate = _rate_words(p.shipped, p.window_days, tr)
        return tr("fast seller: %(rate)s", rate=rate) if notable else rate
    return tr("waiting %(age)s", age=age_words(p.age_hours, tr))


def priority(value: Decimal | float | None, shipped: int, age_hours: float, *, window_days: int = WINDOW_DAYS,
             show_value: bool = True) -> Priority:
    """The priority of a unit worth `value`, of a SKU that shipped `shipped` units over the last
    `window_days`, waiting `age_hours`. The reason names every notable part, the largest first
    ("fast seller: 38 shipped a day · high value: $699"), else the largest part alone. With
    `show_value` false (a partner, who never sees amounts) the value is named without its figure."""
    parts = {"value": value_points(value), "speed": speed_points(shipped, window_days), "age": age_points(age_hours)}
    ranked = sorted(parts, key=lambda k: (-parts[k], ("speed", "value", "age").index(k)))
    chosen = tuple(k for k in ranked if parts[k] >= NOTABLE) or tuple(ranked[:1])
    return Priority(score=sum(parts.values()), value_points=parts["value"], speed_points=parts["speed"],
                    age_points=parts["age"], chosen=chosen, value=value, shipped=shipped, age_hours=age_hours,
                    window_days=window_days, show_value=show_value)
