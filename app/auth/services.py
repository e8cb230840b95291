"""Signing in and out, and the user administration that ends sessions."""
from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.auth.models import SignedInUser, SignInFailure, User, UserSession, sign_in_statement, token_hash
from app.auth.roles import ROLES, Actor
from app.catalog.models import PartnerOrg
from app.db import unit_of_work, utcnow
from app.errors import Conflict, DomainError, NotFound, NotPermitted, ValidationFailed


class TooManyAttempts(DomainError):
    """Sign-in refused for a while after too many wrong passwords."""

    status_code = 429
    code = "throttled"


@dataclass(frozen=True)
class SignInPolicy:
    """How long sessions live and how many wrong passwords are allowed (app.config)."""

    session_hours: int = 12
    remember_days: int = 14
    max_failures_per_account: int = 5
    max_failures_per_address: int = 20
    window_minutes: int = 15

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SignInPolicy:
        """The policy the app is configured with (the SESSION_* and SIGNIN_* settings)."""
        return cls(session_hours=int(config.get("SESSION_HOURS", cls.session_hours)),
                   remember_days=int(config.get("REMEMBER_DAYS", cls.remember_days)),
                   max_failures_per_account=int(config.get("SIGNIN_MAX_FAILURES", cls.max_failures_per_account)),
                   max_failures_per_address=int(config.get("SIGNIN_MAX_FAILURES_PER_ADDRESS",
                                                           cls.max_failures_per_address)),
                   window_minutes=int(config.get("SIGNIN_WINDOW_MINUTES", cls.window_minutes)))


@lru_cache(maxsize=1)
def _unknown_user_hash() -> str:
    """A hash to check a password against when the username is unknown, so that an unknown
    username costs the same time as a known one (no enumeration by timing)."""
    return generate_password_hash(secrets.token_urlsafe(16))


def _failures(session: Session, scope: str, key: str, since: datetime) -> int:
    return session.scalar(select(func.count()).select_from(SignInFailure).where(
        SignInFailure.scope == scope, SignInFailure.key == key, SignInFailure.failed_at > since)) or 0


def sign_in(session: Session, username: str, password: str, *, address: str, remember: bool,
            policy: SignInPolicy, now: datetime | None = None) -> SignedInUser | None:
    """Check a username and password and open a session for it; None when they are wrong.

    Refused (TooManyAttempts) while the account or the client address has too many recent
    failures, whatever the password: the count is in the database, shared by every app server.
    A failure is recorded against both; a success clears the account's failures."""
    now = now or utcnow()
    username = username.strip().lower()[:128]
    address = address[:128]
    since = now - timedelta(minutes=policy.window_minutes)
    with unit_of_work(session):
        if (_failures(session, "account", username, since) >= policy.max_failures_per_account
                or _failures(session, "address", address, since) >= policy.max_failures_per_address):
            raise TooManyAttempts(f"Too many wrong passwords. Wait {policy.window_minutes} minutes and try again, "
                                  "or ask an admin to reset your password.")
        row = session.execute(sign_in_statement(), {"username": username}).first()
        password_ok = check_password_hash(row.password_hash if row else _unknown_user_hash(), password)
        if row is None or not row.active or not password_ok:
            session.execute(delete(SignInFailure).where(SignInFailure.failed_at <= since))
            session.add_all([SignInFailure(scope="account", key=username, failed_at=now),
                             SignInFailure(scope="address", key=address, failed_at=now)])
            return None
        session.execute(delete(SignInFailure).where(SignInFailure.scope == "account", SignInFailure.key == username))
        session.execute(delete(UserSession).where(UserSession.user_id == row.id, UserSession.expires_at <= now))
        token = secrets.token_urlsafe(32)
        lifetime = timedelta(days=policy.remember_days) if remember else timedelta(hours=policy.session_hours)
        session.add(UserSession(user_id=row.id, token_hash=token_hash(token), remember=remember,
                                created_at=now, expires_at=now + lifetime))
    return SignedInUser(row.id, row.username, row.name, row.role, row.partner_org_id, row.home_warehouse_id, token)


def _check_password(password: str) -> None:
    """The rule every new password meets."""
    if len(password) < 8:
        raise ValidationFailed("The password needs at least 8 characters.")


def _end_sessions(session: Session, user_id: int) -> int:
    return session.execute(delete(UserSession).where(UserSession.user_id == user_id)).rowcount or 0


def sign_out(session: Session, user_id: int) -> None:
    """End every session of the user, here and on every other device (and their remember-me
    cookies): a cookie copied before signing out opens nothing afterwards."""
    with unit_of_work(session):
        _end_sessions(session, user_id)


def _user_by_name(session: Session, username: str) -> User:
    user = session.scalars(select(User).where(User.username == username.strip().lower()).with_for_update()).first()
    if user is None:
        raise NotFound(f"No user called {username}.")
    return user


def sign_out_everywhere(session: Session, actor: Actor, *, username: str) -> int:
    """An admin ends every session of a user; returns how many were open."""
    if not actor.can("admin") and actor.role != "system":
        raise NotPermitted("Only an admin can sign somebody out.")
    with unit_of_work(session):
        return _end_sessions(session, _user_by_name(session, username).id)


def set_password(session: Session, *, username: str, password: str) -> None:
    """Change or reset a password; every session of the user ends (a thief's included)."""
    _check_password(password)
    with unit_of_work(session):
        user = _user_by_name(session, username)
        user.set_password(password)
        _end_sessions(session, user.id)


def set_active(session: Session, *, username: str, active: bool) -> None:
    """Switch a login off (ending its sessions) or on again."""
    with unit_of_work(session):
        user = _user_by_name(session, username)
        user.active = active
        if not active:
            _end_sessions(session, user.id)


def create_user(session: Session, *, username: str, role: str, name: str, password: str,
                partner_org_name: str | None = None, home_warehouse_id: int | None = None) -> User:
    """Create a login; partners must name their organisation."""
    username = username.strip().lower()
    if not username or len(username) > 64:
        raise ValidationFailed("A username of 1-64 characters is required.")
    if role not in ROLES:
        raise ValidationFailed(f"Role must be one of {', '.join(ROLES)}.")
    _check_password(password)
    with unit_of_work(session):
        if session.scalars(select(User).where(User.username == username)).first():
            raise Conflict(f"User {username} exists already.")
        org = None
        if role == "partner":
            if not partner_org_name:
                raise ValidationFailed("A partner login needs --partner-org.")
            org = session.scalars(select(PartnerOrg).where(PartnerOrg.name == partner_org_name)).first()
            if org is None:
                raise ValidationFailed(f"No partner organisation called {partner_org_name}.")
        user = User(username=username, role=role, name=name, partner_org_id=org.id if org else None,
                    home_warehouse_id=home_warehouse_id)
        user.set_password(password)
        session.add(user)
    return user
