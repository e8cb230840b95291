"""The refund trigger lifecycle (product.md "Refund triggers"), pure Python."""
from __future__ import annotations

from decimal import Decimal

from app.errors import Conflict, IllegalTransition, ValidationFailed
from app.words import N_

AWAITING_INSPECTION = "awaiting_inspection"
PENDING_APPROVAL = "pending_approval"
APPROVED = "approved"
REJECTED = "rejected"
RELEASED = "released"
ACKNOWLEDGED = "acknowledged"
REFUND_STATUSES = (AWAITING_INSPECTION, PENDING_APPROVAL, APPROVED, REJECTED, RELEASED, ACKNOWLEDGED)
# What the customer asked for on a return line. All three follow one lifecycle (and its
# governance); an exchange, once released, also asks the order system to ship the replacement.
RESOLUTIONS = ("refund", "store_credit", "exchange")
REFUND_ACTIONS = ("full", "less_restocking_fee", "less_damage", "none", "hold")
# The hold reason of an anomaly flag (app.anomalies): released only by a supervisor who did not inspect the unit.
FRAUD_FLAG = "fraud flag"

REFUND_EDGES: dict[str, frozenset[str]] = {
    AWAITING_INSPECTION: frozenset({PENDING_APPROVAL, APPROVED, REJECTED}),
    PENDING_APPROVAL: frozenset({APPROVED, REJECTED}),
    APPROVED: frozenset({RELEASED}),
    REJECTED: frozenset(),
    RELEASED: frozenset({ACKNOWLEDGED}),
    ACKNOWLEDGED: frozenset(),
}

STATUS_LABELS = {
    AWAITING_INSPECTION: N_("awaiting inspection"),
    PENDING_APPROVAL: N_("pending approval"),
    APPROVED: N_("approved"),
    REJECTED: N_("rejected"),
    RELEASED: N_("released to finance"),
    ACKNOWLEDGED: N_("paid (acknowledged by finance)"),
}


def check_refund_edge(from_status: str, to_status: str) -> None:
    """Raise IllegalTransition unless the lifecycle has this edge."""
    if to_status not in REFUND_EDGES.get(from_status, frozenset()):
        raise IllegalTransition(
            N_("The refund is %(status)s; it cannot become %(to)s."),
            status=STATUS_LABELS.get(from_status, from_status), to=STATUS_LABELS.get(to_status, to_status)
        )


def hold_reasons(*, amount: Decimal, threshold: Decimal, refund_action: str, serial_mismatch: bool,
                 fraud_flag: bool, overridden: bool) -> list[str]:
    """Why a refund must wait for a supervisor; empty when it may be released straight away."""
    reasons = []
    if refund_action == "hold" and not overridden:  # an override's hold says so itself, below
        reasons.append("the rule holds it for approval")
    if amount > threshold:
        reasons.append(f"amount {amount} is over the approval threshold {threshold}")
    if serial_mismatch:
        reasons.append("serial mismatch")
    if fraud_flag:
        reasons.append(FRAUD_FLAG)
    if overridden:
        reasons.append("disposition overridden")
    return reasons


Step = tuple[str, str, "dict[str, object] | None"]  # (to status, reason, details) of one lifecycle edge


def settlement(status: str, paid_amount: Decimal, *, amount: Decimal, refund_action: str, hold: list[str],
               unit_inspected: bool, reason: str) -> tuple[dict[str, object], list[Step]]:
    """What settling a trigger after its unit's disposition does: the columns it sets (amount,
    action, hold reasons) and the edges it takes: held for approval when there is any hold reason,
    rejected when the rules refund nothing, else approved and released at once. Refuses a trigger
    that is not awaiting inspection, an unknown action, and a unit not inspected."""

    if status != AWAITING_INSPECTION:
        raise Conflict(N_("The refund is already %(status)s."), status=STATUS_LABELS[status])
    if refund_action not in REFUND_ACTIONS:
        raise ValidationFailed(N_("Unknown refund action '%(refund_action)s'."), refund_action=refund_action)
    if not unit_inspected:
        raise Conflict(N_("A refund cannot be settled before its unit has been inspected."))
    values: dict[str, object] = {"amount": min(amount.quantize(Decimal("0.01")), paid_amount),
                                 "refund_action": refund_action, "hold_reasons": list(hold)}
    if hold:
        return values, [(PENDING_APPROVAL, "; ".join(hold), None)]
    if refund_action == "none":
        values["amount"] = Decimal("0.00")
        return values, [(REJECTED, reason, None)]
    return values, [(APPROVED, reason, {"auto": True}), (RELEASED, reason, {"auto": True})]
