"""People who sign in."""
from __future__ import annotations

import hashlib
from datetime import datetime
from functools import lru_cache

from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Index, Select, String, bindparam, select, true
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from app.auth.roles import ROLES, Actor
from app.catalog.models import PartnerOrg, Warehouse
from app.db import Base, utcnow


class User(UserMixin, Base):
    """A worker, supervisor, admin or 3PL partner login."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(f"role IN {ROLES!r}", name="role"),
        # A partner login always belongs to an organisation; staff never do.
        CheckConstraint("(role = 'partner') = (partner_org_id IS NOT NULL)", name="partner_org"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    partner_org_id: Mapped[int | None] = mapped_column(ForeignKey("partner_orgs.id"), index=True)
    home_warehouse_id: Mapped[int | None] = mapped_column(ForeignKey("warehouses.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The language the screens speak to this person (app.web.i18n.LANGUAGES); None: the browser's.
    locale: Mapped[str | None] = mapped_column(String(8))
    partner_org: Mapped[PartnerOrg | None] = relationship()
    home_warehouse: Mapped[Warehouse | None] = relationship()

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        """Flask-Login refuses inactive users."""
        return self.active

    def set_password(self, password: str) -> None:
        """Store a salted hash, never the password."""
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        """Constant-time comparison against the stored hash."""
        return check_password_hash(self.password_hash, password)

    def actor(self) -> Actor:
        """The service-layer view of this user."""
        return Actor(id=self.id, role=self.role, name=self.name, partner_org_id=self.partner_org_id)


class UserSession(Base):
    """One sign-in of a user, as the server knows it: the signed cookie names it by a token whose
    hash is kept here, so that deleting the row ends the session (and its remember-me cookie)
    wherever the cookie is replayed from."""

    __tablename__ = "user_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    remember: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SignInFailure(Base):
    """A failed sign-in, counted per account (`scope` "account") and per client address
    ("address") to throttle guessing; kept in the database so every app server counts the same."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (Index("ix_sign_in_failures_key", "scope", "key", "failed_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(128))
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


def token_hash(token: str) -> str:
    """What the server keeps of a session token: its SHA-256 (a leaked table opens no session)."""
    return hashlib.sha256(token.encode()).hexdigest()


class SignedInUser(UserMixin):
    """The signed-in user for one request (Flask-Login's current_user): what the screens and the
    services need, read by `signed_in_user` afresh on every request, so that a login switched
    off, a role changed or a session ended counts from the next request on. A plain object, not
    an ORM entity: it is never changed or saved, and loading it costs one plain row.

    Flask-Login keeps `get_id()` in the session and the remember-me cookie: the user's id and
    the session's token, so a cookie opens nothing once its session row is gone."""

    __slots__ = ("id", "username", "name", "role", "partner_org_id", "home_warehouse_id", "locale", "session_token",
                 "_actor")
    is_active = True  # only active logins are loaded

    def __init__(self, id: int, username: str, name: str, role: str, partner_org_id: int | None,
                 home_warehouse_id: int | None, locale: str | None, session_token: str) -> None:
        self.id, self.username, self.name, self.role = id, username, name, role
        self.partner_org_id, self.home_warehouse_id, self.locale = partner_org_id, home_warehouse_id, locale
        self.session_token = session_token
        self._actor = Actor(id=id, role=role, name=name, partner_org_id=partner_org_id)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    def actor(self) -> Actor:
        """The service-layer view of this user."""
        return self._actor


@lru_cache(maxsize=1)
def _signed_in_statement() -> Select:
    users, sessions = User.__table__, UserSession.__table__  # tables, not entities: a plain row
    return (select(users.c.id, users.c.username, users.c.name, users.c.role, users.c.partner_org_id,
                   users.c.home_warehouse_id, users.c.locale)
            .join(sessions, sessions.c.user_id == users.c.id)
            .where(users.c.id == bindparam("user_id"), users.c.active == true(),
                   sessions.c.token_hash == bindparam("token_hash"), sessions.c.expires_at > bindparam("now")))


def signed_in_user(session: Session, session_id: str) -> SignedInUser | None:
    """The active login whose live session `session_id` ("<user id>:<token>") names, or None
    (unknown, switched off, signed out, or expired)."""
    user_id, _, token = session_id.partition(":")
    if not token or not user_id.isdigit() or len(user_id) > 10 or int(user_id) >= 2**31 or len(token) > 128:
        return None
    rows = session.execute(_signed_in_statement(),
                           {"user_id": int(user_id), "token_hash": token_hash(token), "now": utcnow()}).all()
    return SignedInUser(*rows[0], token) if rows else None


@lru_cache(maxsize=1)
def sign_in_statement() -> Select:
    """The login a username names, with what signing in checks (one plain row)."""
    users = User.__table__
    return select(users.c.id, users.c.username, users.c.name, users.c.role, users.c.partner_org_id,
                  users.c.home_warehouse_id, users.c.locale, users.c.password_hash, users.c.active).where(users.c.username == bindparam("username"))
