"""People who sign in."""
from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Select, String, bindparam, select, true
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


class SignedInUser(UserMixin):
    """The signed-in user for one request (Flask-Login's current_user): what the screens and the
    services need, read by `signed_in_user` afresh on every request, so that a login switched
    off or a role changed by an admin counts from the next request on. A plain object, not an ORM
    entity: it is never changed or saved, and loading it costs one plain row."""

    __slots__ = ("id", "username", "name", "role", "partner_org_id", "home_warehouse_id", "_actor")
    is_active = True  # only active logins are loaded

    def __init__(self, id: int, username: str, name: str, role: str, partner_org_id: int | None,
                 home_warehouse_id: int | None) -> None:
        self.id, self.username, self.name, self.role = id, username, name, role
        self.partner_org_id, self.home_warehouse_id = partner_org_id, home_warehouse_id
        self._actor = Actor(id=id, role=role, name=name, partner_org_id=partner_org_id)

    def actor(self) -> Actor:
        """The service-layer view of this user."""
        return self._actor


@lru_cache(maxsize=1)
def _signed_in_statement() -> Select:
    users = User.__table__  # the table, not the entity: a plain row, no ORM loading
    return select(users.c.id, users.c.username, users.c.name, users.c.role, users.c.partner_org_id,
                  users.c.home_warehouse_id).where(users.c.id == bindparam("user_id"), users.c.active == true())


def signed_in_user(session: Session, user_id: int) -> SignedInUser | None:
    """The active login with this id, or None (unknown or switched off)."""
    rows = session.execute(_signed_in_statement(), {"user_id": user_id}).all()
    return SignedInUser(*rows[0]) if rows else None


@lru_cache(maxsize=1)
def _sign_in_statement() -> Select:
    users = User.__table__
    return select(users.c.id, users.c.username, users.c.name, users.c.role, users.c.partner_org_id,
                  users.c.home_warehouse_id, users.c.password_hash, users.c.active).where(users.c.username == bindparam("username"))


def user_signing_in(session: Session, username: str, password: str) -> SignedInUser | None:
    """The active login with this username and password, or None (one plain row)."""
    rows = session.execute(_sign_in_statement(), {"username": username.strip().lower()}).all()
    if not rows or not rows[0].active or not check_password_hash(rows[0].password_hash, password):
        return None
    r = rows[0]
    return SignedInUser(r.id, r.username, r.name, r.role, r.partner_org_id, r.home_warehouse_id)
