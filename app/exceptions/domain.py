"""Rules of receiving exceptions: how soon each type must be dealt with, and which a worker
reports about a parcel's box from the handheld."""
from __future__ import annotations

from datetime import datetime, timedelta
from app.words import N_, Said

# Hours from opening to when an exception is due, by type: a damaged parcel's carrier claim and an
# empty box (possible fraud, a refund held) first; stock-only differences later.
DUE_HOURS = {
    "empty_box": 24,
    "damaged_in_transit": 24,
    "serial_mismatch": 24,
    "unidentified_parcel": 48,
    "wrong_item": 48,
    "missing_item": 72,
    "extra_item": 72,
    "over_return": 72,
}
# What a worker reports about the box of the parcel in hand, with photos of it.
BOX_PROBLEMS = {"empty_box": N_("The box is empty"), "damaged_in_transit": N_("The box was damaged in transit")}


def due_at(type_: str, opened_at: datetime) -> datetime:
    """When an exception of this type opened then is due."""
    return opened_at + timedelta(hours=DUE_HOURS.get(type_, 48))


def due_words(due: datetime | None, now: datetime) -> tuple[Said | str, bool]:
    """How a queue says when an exception is due ("overdue 3 d", "due in 5 h"), and whether it is overdue."""
    if due is None:
        return "", False
    hours = (due - now).total_seconds() / 3600
    if hours < 0:
        late = -hours
        return (Said(N_("overdue %(num)s h"), {"num": f"{late:.0f}"}) if late < 48
                else Said(N_("overdue %(num)s d"), {"num": f"{late / 24:.0f}"})), True
    return (Said(N_("due in %(num)s h"), {"num": f"{hours:.0f}"}) if hours < 48
            else Said(N_("due in %(num)s d"), {"num": f"{hours / 24:.0f}"})), False
