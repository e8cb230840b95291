"""API keys as plain rules: the scopes, the token's shape, how a secret is kept (hashed)."""
from __future__ import annotations

import hashlib
import re
import secrets

# What a key may do. A key holds a subset; each operation of /api/v1 names the one it needs.
SCOPES: dict[str, str] = {
    "catalog:write": "create and update products and their barcodes",
    "orders:write": "create orders with their shipped serials",
    "rmas:write": "create, change and cancel returns (RMAs)",
    "carrier:write": "report carrier tracking events",
    "refunds:ack": "acknowledge released refunds with a payment reference",
    "units:read": "read units, returns and balances",
    "refunds:read": "read refund triggers",
    "events:read": "read the event feed",
    "webhooks:manage": "register and change webhook endpoints",
    "inventory:write": "send stock snapshots for reconciliation",
}

# The scopes a key limited to merchants cannot hold yet: the event feed is not split by merchant.
ALL_MERCHANTS_ONLY = frozenset({"events:read", "webhooks:manage"})

TOKEN_PREFIX = "dk"
_TOKEN_RE = re.compile(r"^dk_([a-z0-9]{10})_([A-Za-z0-9_-]{30,60})$")


def new_token() -> tuple[str, str]:
    """A fresh key: its public id (shown in lists, logs and audit) and the whole token (shown once)."""
    key_id = secrets.token_hex(5)
    return key_id, f"{TOKEN_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def parse_token(token: str) -> str | None:
    """The public id of a well-formed token, or None."""
    match = _TOKEN_RE.match(token or "")
    return match.group(1) if match else None


def secret_hash(token: str) -> str:
    """What the database keeps of a token: its SHA-256 (the token carries 256 random bits, so a
    slow password hash would add nothing but latency to every call)."""
    return hashlib.sha256(token.encode()).hexdigest()


# What a partner's key may hold: it reads what happens at its warehouses and sends their stock
# snapshots; returns, orders, the catalog and refunds are put in by the merchants' own systems.
PARTNER_SCOPES = frozenset({"units:read", "refunds:read", "inventory:write"})


def check_scopes(scopes: list[str], *, limited_to_merchants: bool, partner: bool = False) -> list[str]:
    """The scopes, sorted, or a message naming what is wrong (raised by the caller)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"Unknown scope {', '.join(unknown)}. Known: {', '.join(SCOPES)}.")
    if not scopes:
        raise ValueError("Give the key at least one scope.")
    if partner and set(scopes) - PARTNER_SCOPES:
        raise ValueError(f"A partner's key reads only ({', '.join(sorted(PARTNER_SCOPES))}); it cannot hold "
                         f"{', '.join(sorted(set(scopes) - PARTNER_SCOPES))}.")
    if limited_to_merchants and ALL_MERCHANTS_ONLY & set(scopes):
        raise ValueError(f"A key limited to merchants cannot hold {', '.join(sorted(ALL_MERCHANTS_ONLY & set(scopes)))}: "
                         "the event feed and webhooks carry every merchant's events.")
    return sorted(set(scopes))
