"""Rules of receiving exceptions: how soon each type must be dealt with, and which a worker
reports about a parcel's box from the handheld."""
from __future__ import annotations

from datetime import datetime, timedelta
from app.words import N_

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


def due_words(due: datetime | None, now: datetime) -> tuple[str, bool]:
    """How a queue says when an exception is due, and whether it is overdue."""
    if due is None:
        return "", False
    hours = (due - now).total_seconds() / 3600
    if hours < 0:
        late = -hours
        return (f"overdue {late:.0f} h" if late < 48 else f"overdue {late / 24:.0f} d"), True
    return (f"due in {hours:.0f} h" if hours < 48 else f"due in {hours / 24:.0f} d"), False
