"""Webhook rules as plain Python: when to try again, when to give up, how a delivery is signed
(Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature v1 HMAC-SHA256)."""
from __future__ import annotations

import base64
import json
import random
import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook

DELIVERY_STATUSES = ("pending", "delivered", "dead")
GIVE_UP_AFTER = timedelta(days=3)  # a delivery failing this long is dead; an endpoint failing this long is disabled
FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=6)
LEASE = timedelta(seconds=90)  # a claimed delivery is due again if its worker has not answered by then
SEND_TIMEOUT = 10.0  # seconds for one delivery, connect to last byte: a round of 8 per thread ends inside the lease
SECRET_OVERLAP = timedelta(hours=24)  # after a rotation the old secret signs too, this long


def new_secret() -> str:
    """A signing secret in the Standard Webhooks form: whsec_ and 32 random bytes, base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def next_wait(attempts: int, rng: random.Random | None = None) -> timedelta:
    """How long to wait after the `attempts`-th failure: doubling from 30 s up to 6 h, with full
    jitter over the upper half so that many failed deliveries do not come back at one instant."""
    base = min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LONGEST_WAIT)
    return base / 2 + base / 2 * (rng or random).random()


def gives_up(first_attempt_at: datetime, now: datetime) -> bool:
    return now - first_attempt_at >= GIVE_UP_AFTER


def body(event_type: str, at: datetime, event_id: int, aggregate_type: str, aggregate_id: int,
         data: dict[str, Any]) -> str:
    """The delivery's JSON body (the spec's recommended shape: type, timestamp, data)."""
    return json.dumps({"type": event_type, "timestamp": at.isoformat().replace("+00:00", "Z"),
                       "data": {"event_id": f"evt_{event_id}", "aggregate_type": aggregate_type,
                                "aggregate_id": aggregate_id, **data}}, separators=(",", ":"), sort_keys=True)


def signed_headers(secrets_: list[str], webhook_id: str, at: datetime, payload: str) -> dict[str, str]:
    """The three headers of a delivery; during a rotation both secrets sign (space-separated)."""
    signatures = " ".join(Webhook(s).sign(webhook_id, at, payload) for s in secrets_)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": signatures,
            "content-type": "application/json"}


def check_url(url: str) -> str:
    """An endpoint URL: http(s), with a host, at most 500 characters. Raises ValueError."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 500:
        raise ValueError("The endpoint must be an http:// or https:// URL with a host, at most 500 characters.")
    return url
