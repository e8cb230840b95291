"""Receiving's rules, pure Python: which expected line a unit fills, or which exception it raises."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LineCount:
    """One line of a return for the unit's product: how many it expects and how many units fill it."""

    line_id: int
    expected: int
    got: int


@dataclass(frozen=True)
class Placement:
    """Where a unit lands on its return: the line it fills, or the exception it raises (or neither,
    for a unit of a blind parcel, whose own exception covers it)."""

    line_id: int | None
    exception: str | None


def place_unit(*, on_return: bool, lines: Sequence[LineCount], bought: int | None, already: int) -> Placement:
    """Which line of its return a unit fills, or which exception it raises instead.

    `lines`: the return's lines of the unit's product, in order; `bought`: how many of the product
    its order line sold (None: not on the order); `already`: units of the product already on the
    return. The first line still short is filled. Otherwise: not bought is a wrong item; bought but
    not expected is an extra item while fewer than were bought have come back, else an over-return
    (more than was bought). The handheld's scan and the desk's linking of a parcel both ask here."""
    if not on_return:
        return Placement(None, None)
    line = next((line for line in lines if line.got < line.expected), None)
    if line is not None:
        return Placement(line.line_id, None)
    if bought is None:
        return Placement(None, "wrong_item")
    return Placement(None, "extra_item" if already < bought else "over_return")
