"""The canonical unit states and the edges between them (product.md), pure Python."""
from __future__ import annotations

from app.auth.roles import PARTNER, SUPERVISOR, WORKER
from app.errors import IllegalTransition, NotPermitted

RECEIVED = "received"
AVAILABLE = "available"
QUARANTINE = "quarantine"
REFURBISH = "refurbish"
VENDOR_RETURN = "vendor_return"
LIQUIDATION = "liquidation"
DISPOSED = "disposed"
STATES = (RECEIVED, AVAILABLE, QUARANTINE, REFURBISH, VENDOR_RETURN, LIQUIDATION, DISPOSED)
TERMINAL = frozenset({VENDOR_RETURN, LIQUIDATION, DISPOSED})

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
}

GRADES = ("A", "B", "C", "D")  # a unit's condition grade, A best
PACKAGING_STATES = ("sealed", "opened", "damaged", "missing")  # the state its packaging came back in

STATE_LABELS = {
    RECEIVED: "received",
    AVAILABLE: "available (restocked)",
    QUARANTINE: "quarantine",
    REFURBISH: "refurbish",
    VENDOR_RETURN: "return to vendor",
    LIQUIDATION: "liquidation",
    DISPOSED: "disposed",
}


def is_edge(from_state: str | None, to_state: str) -> bool:
    """True when the state machine has this edge, whoever asks."""
    return to_state in EDGES.get(from_state, {})


def check_transition(from_state: str | None, to_state: str, role: str) -> None:
    """Raise IllegalTransition for a missing edge and NotPermitted for a role that may not take it."""
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
