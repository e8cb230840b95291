"""Checklist rules as plain Python: an editor's text, one item a line ("key | label"), as items."""
from __future__ import annotations

import re

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
