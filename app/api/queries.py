"""Reading API keys: the admin's list, and finding the key a request presents."""
from __future__ import annotations

import hmac

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.domain import parse_token, secret_hash
from app.api.models import ApiKey


def key_for_token(session: Session, token: str) -> ApiKey | None:
    """The live key whose token this is, or None (malformed, unknown, wrong secret or revoked)."""
    key_id = parse_token(token)
    if key_id is None:
        return None
    key = session.scalars(select(ApiKey).where(ApiKey.key_id == key_id)).first()
    if key is None or key.revoked_at is not None or not hmac.compare_digest(key.secret_hash, secret_hash(token)):
        return None
    return key


def list_keys(session: Session) -> list[ApiKey]:
    """Every key, live first, newest first."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc())))
