"""User administration."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import User
from app.auth.roles import ROLES
from app.catalog.models import PartnerOrg
from app.db import unit_of_work
from app.errors import Conflict, ValidationFailed


def create_user(session: Session, *, username: str, role: str, name: str, password: str,
                partner_org_name: str | None = None, home_warehouse_id: int | None = None) -> User:
    """Create a login; partners must name their organisation."""
    username = username.strip().lower()
    if not username or len(username) > 64:
        raise ValidationFailed("A username of 1-64 characters is required.")
    if role not in ROLES:
        raise ValidationFailed(f"Role must be one of {', '.join(ROLES)}.")
    if len(password) < 8:
        raise ValidationFailed("The password needs at least 8 characters.")
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
