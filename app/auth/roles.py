"""Roles and what each may do: the single permission table, pure Python."""
from __future__ import annotations

from dataclasses import dataclass, field

WORKER = "worker"
SUPERVISOR = "supervisor"
ADMIN = "admin"
PARTNER = "partner"
INTEGRATION = "integration"
ROLES = (WORKER, SUPERVISOR, ADMIN, PARTNER)

# Permission -> roles that hold it. Partners get a worker's floor actions, scoped by
# organisation (see app/auth/scoping.py); admins run the system, not the dock.
PERMISSIONS: dict[str, frozenset[str]] = {
    "receive": frozenset({WORKER, SUPERVISOR, PARTNER}),
    "inspect": frozenset({WORKER, SUPERVISOR, PARTNER}),
    "dispose": frozenset({WORKER, SUPERVISOR, PARTNER}),
    "print_labels": frozenset({WORKER, SUPERVISOR, PARTNER}),
    "override_disposition": frozenset({SUPERVISOR}),
    "release_quarantine": frozenset({SUPERVISOR}),
    "approve_refunds": frozenset({SUPERVISOR}),
    "see_refund_amounts": frozenset({WORKER, SUPERVISOR, ADMIN}),
    "resolve_exceptions": frozenset({SUPERVISOR}),
    "edit_rules": frozenset({SUPERVISOR}),
    "edit_reason_codes": frozenset({SUPERVISOR, ADMIN}),
    "view_desk": frozenset({SUPERVISOR}),
    # Find a unit, a return or a customer and read a return's page (partners: in their scope).
    "look_up": frozenset({WORKER, SUPERVISOR, PARTNER}),
    "admin": frozenset({ADMIN}),
    # The returns dashboard (/reports): staff see everything, partners their warehouses without money;
    # every floor role sees its own receiving figures (a worker: only their own).
    "view_reports": frozenset({SUPERVISOR, ADMIN, PARTNER}),
    "own_figures": frozenset({WORKER, SUPERVISOR, ADMIN, PARTNER}),
    "acknowledge_refunds": frozenset({INTEGRATION}),
    # Reconciliation: send and read stock snapshots (partners: their organisation's sources and
    # warehouses); own and resolve variance lines and correct lost or found units (supervisors).
    "reconcile": frozenset({SUPERVISOR, ADMIN, PARTNER, INTEGRATION}),
    "manage_recon_sources": frozenset({SUPERVISOR, ADMIN}),
    "resolve_variances": frozenset({SUPERVISOR}),
}


@dataclass(frozen=True)
class Actor:
    """Who is acting, as services see it: no Flask, no request."""

    id: int | None
    role: str
    name: str
    partner_org_id: int | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)  # an API key's (app/api/domain.py SCOPES)
    merchant_ids: frozenset[int] | None = None  # an API key limited to these merchants; None: not limited

    def can(self, permission: str) -> bool:
        """True when the actor's role holds the permission."""
        return self.role in PERMISSIONS.get(permission, frozenset())

    def serves(self, merchant_id: int) -> bool:
        """False when the actor is an API key limited to other merchants."""
        return self.merchant_ids is None or merchant_id in self.merchant_ids

    @property
    def is_partner(self) -> bool:
        """Partners see only their organisation's warehouses and merchants."""
        return self.role == PARTNER


SYSTEM = Actor(id=None, role="system", name="Dockhand")
