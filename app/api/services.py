"""API keys' use cases: an admin creates a key (its token shown once, only its hash kept) and
revokes it; a request presenting a token becomes the key's Actor. Creating and revoking are
audited; two live keys at once let a connector rotate without a gap."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.api import domain
from app.api.models import ApiKey
from app.api.queries import key_for_token
from app.auth.roles import INTEGRATION, PARTNER, Actor
from app.catalog.models import Merchant, PartnerOrg
from app.db import as_utc, unit_of_work, utcnow
from app.errors import NotFound, NotPermitted, ValidationFailed
from app.ledger.idempotency import Result, run_idempotent
from app.ledger.writer import audit_row
from app.rows import write

LAST_USED_EVERY = timedelta(minutes=1)  # last-used time is kept to the minute: no write per call


@dataclass(frozen=True)
class KeyCreated(Result):
    """A new key. `token` is the secret, in this answer only: no record keeps it, so a replay of
    the same request (a lost answer) has none and says so; the admin revokes that key and makes
    another."""

    id: int
    key_id: str
    name: str
    token: str | None = None


@dataclass(frozen=True)
class KeyRevoked(Result):
    id: int
    key_id: str
    name: str


def _allowed(actor: Actor) -> None:
    if not (actor.can("admin") or actor.role == "system"):
        raise NotPermitted("Only an admin can manage API keys.")


def create_api_key(session: Session, actor: Actor, *, name: str, scopes: list[str], merchant_codes: list[str] | None = None,
                   merchant_ids: list[int] | None = None, partner_org_id: int | None = None,
                   partner_org_name: str | None = None, idempotency_key: str | None) -> KeyCreated:
    """A key with these scopes, for every merchant or only those named (by code: the command line;
    by id: the console), and for a partner organisation's warehouses only when `partner_org_id` is given."""
    _allowed(actor)
    name = " ".join((name or "").split())
    if not name or len(name) > 90:
        raise ValidationFailed("Give the key a name of at most 90 characters (who uses it, for what).")
    if partner_org_name:  # the command line names the organisation
        partner_org_id = session.scalar(select(PartnerOrg.id).where(PartnerOrg.name == partner_org_name.strip()))
        if partner_org_id is None:
            raise ValidationFailed(f"No partner organisation called {partner_org_name}.")
    codes = sorted({c.strip().upper() for c in merchant_codes or [] if c.strip()})
    ids = sorted(set(merchant_ids or []))
    limited = bool(codes or ids)
    try:
        scopes = domain.check_scopes(list(scopes), limited_to_merchants=limited or partner_org_id is not None,
                                     partner=partner_org_id is not None)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc

    def work() -> KeyCreated:
        limited_to = None
        if limited:
            found = {code: id_ for code, id_ in session.execute(
                select(Merchant.code, Merchant.id).where(or_(Merchant.code.in_(codes), Merchant.id.in_(ids))))}
            missing = [c for c in codes if c not in found] + [str(i) for i in ids if i not in found.values()]
            if missing:
                raise ValidationFailed(f"No merchant {', '.join(missing)}.")
            limited_to = sorted(found.values())
        if partner_org_id is not None and session.get(PartnerOrg, partner_org_id) is None:
            raise ValidationFailed(f"No partner organisation {partner_org_id}.")
        key = ApiKey(key_id=key_id, name=name, secret_hash=domain.secret_hash(token), scopes=scopes,
                     merchant_ids=limited_to, partner_org_id=partner_org_id, created_by=actor.name, created_at=utcnow())
        session.add(key)
        session.flush()
        write(session, [audit_row(actor, "api_key.created", "api_key", key.id, details={"before": None, "after": key.describe()})])
        return KeyCreated(key.id, key_id, name)  # kept on the key's record without the token

    key_id, token = domain.new_token()
    made = run_idempotent(session, actor, idempotency_key, "create_api_key",
                          {"name": name, "scopes": scopes, "merchants": codes, "merchant_ids": ids, "partner_org_id": partner_org_id},
                          work, result_type=KeyCreated)
    return made if made.replayed else replace(made, token=token)


def revoke_api_key(session: Session, actor: Actor, *, key: int | str, idempotency_key: str | None) -> KeyRevoked:
    """Revoke a key (by id, or by its public key id): every later call with it is refused (401)."""
    _allowed(actor)

    def work() -> KeyRevoked:
        where = ApiKey.id == key if isinstance(key, int) else ApiKey.key_id == str(key).strip()
        row = session.scalars(select(ApiKey).where(where).with_for_update()).first()
        if row is None:
            raise NotFound(f"No API key {key}.")
        if row.revoked_at is None:
            before = row.describe()
            row.revoked_at = utcnow()
            session.flush()
            write(session, [audit_row(actor, "api_key.revoked", "api_key", row.id,
                                      details={"before": before, "after": row.describe()})])
        return KeyRevoked(row.id, row.key_id, row.name)

    return run_idempotent(session, actor, idempotency_key, "revoke_api_key", {"key": str(key)}, work, result_type=KeyRevoked)


def actor_for_token(session: Session, token: str) -> tuple[Actor, str] | None:
    """The Actor a request's token stands for and the key's public id (None: not a live key), its
    last use noted to the minute."""
    key = key_for_token(session, token)
    if key is None:
        return None
    now = utcnow()
    last = as_utc(key.last_used_at)
    if last is None or last < now - LAST_USED_EVERY:
        with unit_of_work(session):
            session.execute(update(ApiKey).where(ApiKey.id == key.id, or_(ApiKey.last_used_at.is_(None),
                                                                          ApiKey.last_used_at < now - LAST_USED_EVERY))
                            .values(last_used_at=now))
    actor = Actor(id=None, role=PARTNER if key.partner_org_id is not None else INTEGRATION,
                  name=f"API key {key.name} ({key.key_id})", partner_org_id=key.partner_org_id,
                  scopes=frozenset(key.scopes),
                  merchant_ids=frozenset(key.merchant_ids) if key.merchant_ids is not None else None)
    return actor, key.key_id
