"""A checklist editor's text, one "key | label" a line, read into items or refused line by line."""
from __future__ import annotations

import pytest

from app.inspection.domain import ChecklistInvalid, items_text, parse_items


def test_lines_become_items_in_order_and_back():
    items = parse_items("powers_on | Powers on\n\n  screen_ok|Screen   free of cracks  \r\nimei_2 | IMEI | clean\n")
    assert items == [{"key": "powers_on", "label": "Powers on"}, {"key": "screen_ok", "label": "Screen free of cracks"},
                     {"key": "imei_2", "label": "IMEI | clean"}]
    assert parse_items(items_text(items)) == items


@pytest.mark.parametrize("text, says", [
    ("", "1 to 40 items"),
    ("   \n\n", "1 to 40 items"),
    ("no bar here", "Line 1: write it as key | label"),
    ("a | One\na | Two", "Line 2: key a is also line 1's"),
    ("Powers On | x", "Line 1: a key is"),
    ("1st | x", "Line 1: a key is"),
    ("k" * 41 + " | x", "Line 1: a key is"),
    ("ok | ", "Line 1: a label is"),
    ("ok | " + "x" * 121, "Line 1: a label is"),
    ("ok | bad\x00char", "Line 1: a label is"),
    ("\n".join(f"k{n} | item {n}" for n in range(41)), "1 to 40 items"),
    ("x" * 10_001, "under 10000 characters"),
])
def test_bad_text_is_refused_naming_the_line(text, says):
    with pytest.raises(ChecklistInvalid) as refused:
        parse_items(text)
    assert says in str(refused.value)
