"""The canonical unit states and the edges between them (product.md), pure Python."""
from __future__ import annotations

from dataclasses import dataclass

from app.auth.roles import PARTNER, SUPERVISOR, WORKER
from app.errors import IllegalTransition, NotPermitted
from app.words import N_

RECEIVED = "received"
AVAILABLE = "available"
QUARANTINE = "quarantine"
REFURBISH = "refurbish"
VENDOR_RETURN = "vendor_return"
LIQUIDATION = "liquidation"
DISPOSED = "disposed"
MISSING = "missing"
STATES = (RECEIVED, AVAILABLE, QUARANTINE, REFURBISH, VENDOR_RETURN, LIQUIDATION, DISPOSED, MISSING)
TERMINAL = frozenset({VENDOR_RETURN, LIQUIDATION, DISPOSED})
# A unit in these states is in the building and not sellable: a second unit with its serial cannot
# be received meanwhile (the same item is not in hand twice). From the others (made available, sold
# on, gone) a serial may come back: received again and flagged (app.anomalies).
SERIAL_HELD = (RECEIVED, QUARANTINE, REFURBISH)

_FLOOR = frozenset({WORKER, SUPERVISOR, PARTNER})
_SUPERVISOR = frozenset({SUPERVISOR})

# from-state -> {to-state: roles allowed}. None is "not yet in the building".
EDGES: dict[str | None, dict[str, frozenset[str]]] = {
    None: {RECEIVED: _FLOOR},
    RECEIVED: {s: _FLOOR for s in (AVAILABLE, QUARANTINE, REFURBISH, VENDOR_RETURN, LIQUIDATION, DISPOSED)},
    QUARANTINE: {s: _SUPERVISOR for s in (AVAILABLE, REFURBISH, VENDOR_RETURN, LIQUIDATION, DISPOSED)},
    REFURBISH: {AVAILABLE: _FLOOR, LIQUIDATION: _FLOOR, DISPOSED: _FLOOR, QUARANTINE: _FLOOR},
    AVAILABLE: {QUARANTINE: _SUPERVISOR},
    VENDOR_RETURN: {},
    LIQUIDATION: {},
    DISPOSED: {},
    MISSING: {},
}

# `missing` and back (product.md): a unit not found where the ledger says it is, or found again.
# Not an edge of the floor's moves (EDGES): only a reconciliation's correction takes it
# (app.reconciliation.services), supervisor only, with a reason, four-eyes above the threshold.
ON_HAND = (RECEIVED, AVAILABLE, QUARANTINE, REFURBISH)
CORRECTION_EDGES: dict[str, dict[str, frozenset[str]]] = {
    **{s: {MISSING: _SUPERVISOR} for s in ON_HAND},
    MISSING: {s: _SUPERVISOR for s in ON_HAND},
}

GRADES = ("A", "B", "C", "D")  # a unit's condition grade, A best
PACKAGING_STATES = ("sealed", "opened", "damaged", "missing")  # the state its packaging came back in

STATE_LABELS = {
    RECEIVED: N_("received"),
    AVAILABLE: N_("available (restocked)"),
    QUARANTINE: N_("quarantine"),
    REFURBISH: N_("refurbish"),
    VENDOR_RETURN: N_("return to vendor"),
    LIQUIDATION: N_("liquidation"),
    DISPOSED: N_("disposed"),
    MISSING: N_("missing"),
}


def is_edge(from_state: str | None, to_state: str) -> bool:
    """True when the state machine has this edge, whoever asks."""
    return to_state in EDGES.get(from_state, {})


def check_transition(from_state: str | None, to_state: str, role: str, *, correction: bool = False) -> None:
    """Raise IllegalTransition for a missing edge and NotPermitted for a role that may not take it.
    With `correction`, the edges are those of a reconciliation's correction (`missing` and back)."""
    if correction:
        _check_correction(from_state, to_state, role)
        return
    if to_state not in STATES:
        raise IllegalTransition(f"'{to_state}' is not a unit state.")
    if not is_edge(from_state, to_state):
        if from_state in TERMINAL:
            raise IllegalTransition(f"The unit is {STATE_LABELS[from_state]}: that is final.")
        if from_state == to_state:
            raise IllegalTransition(f"The unit is already {STATE_LABELS[to_state]}.")
        src = "not received" if from_state is None else STATE_LABELS[from_state]
        raise IllegalTransition(f"A unit cannot go from {src} to {STATE_LABELS[to_state]}.")
    if role not in EDGES[from_state][to_state]:
        raise NotPermitted(f"Only a supervisor may move a unit from {STATE_LABELS.get(from_state or '', 'nowhere')} to {STATE_LABELS[to_state]}.")


def _check_correction(from_state: str | None, to_state: str, role: str) -> None:
    allowed = CORRECTION_EDGES.get(from_state or "", {})
    if to_state not in allowed:
        src = "not received" if from_state is None else STATE_LABELS.get(from_state, from_state)
        raise IllegalTransition(f"A correction cannot take a unit from {src} to {STATE_LABELS.get(to_state, to_state)}: "
                                "only from received, available, quarantine or refurbish to missing, and back.")
    if role not in allowed[to_state]:
        raise NotPermitted("Only a supervisor may mark a unit missing or found.")


@dataclass(frozen=True)
class FeedCursor:
    """A place in the event feed: after the event `id` written by transaction `tx` (0 on SQLite,
    whose writers take turns, so its ids alone are in commit order). Shown as 'tx.id'."""

    tx: int = 0
    id: int = 0

    def __str__(self) -> str:
        return f"{self.tx}.{self.id}"

    @classmethod
    def parse(cls, text: str | None) -> FeedCursor:
        """The cursor a client sent back (empty: the feed's start). Raises ValueError if malformed."""
        if not text:
            return cls()
        tx, dot, id_ = text.partition(".")
        if not dot or not tx.isdigit() or not id_.isdigit() or len(tx) > 19 or len(id_) > 19:
            raise ValueError("The cursor is not one this feed gave out: use the 'next' of a page, or none to start.")
        cursor = cls(int(tx), int(id_))
        if max(cursor.tx, cursor.id) > 2**63 - 1:
            raise ValueError("The cursor is not one this feed gave out: use the 'next' of a page, or none to start.")
        return cursor
