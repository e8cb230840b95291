"""Signing in and out: throttled sign-in, sessions the server can end, the password rule."""
from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.auth.models import SignedInUser, SignInFailure, User, UserSession, sign_in_statement, token_hash
from app.db import unit_of_work, utcnow
from app.errors import DomainError, ValidationFailed
from app.words import N_


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
            raise TooManyAttempts(N_("Too many wrong passwords. Wait %(minutes)s minutes and try again, "
                                     "or ask an admin to reset your password."), minutes=policy.window_minutes)
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
        session.execute(update(User).where(User.id == row.id).values(last_sign_in_at=now))
    return SignedInUser(row.id, row.username, row.name, row.role, row.partner_org_id, row.home_warehouse_id, row.locale,
                        token)


def check_password(password: str) -> None:
    """The rule every new password meets."""
    if len(password) < 8:
        raise ValidationFailed(N_("The password needs at least 8 characters."))


def end_sessions(session: Session, user_id: int) -> int:
    """Delete every session of the user, in the caller's transaction; returns how many there were."""
    return session.execute(delete(UserSession).where(UserSession.user_id == user_id)).rowcount or 0


def sign_out(session: Session, user_id: int) -> None:
    """End every session of the user, here and on every other device (and their remember-me
    cookies): a cookie copied before signing out opens nothing afterwards."""
    with unit_of_work(session):
        end_sessions(session, user_id)




def choose_language(session: Session, user_id: int, language: str | None, *, languages: Mapping[str, str]) -> None:
    """Use case: the person's own choice of the language their screens speak (None: the browser's).
    Setting a value is its own replay: a retry sets the same value again and nothing else changes."""
    if language is not None and language not in languages:
        raise ValidationFailed(N_("Pick a language from the list (%(languages)s). Nothing was changed."),
                               languages=", ".join(languages.values()))
    with unit_of_work(session):
        session.execute(update(User).where(User.id == user_id).values(locale=language))
