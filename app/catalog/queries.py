"""What the catalog's screens and checks read: the product categories."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.catalog.models import Category


def categories(session: Session) -> list[Any]:
    """Every category (code, name, active), active ones first, then by name."""
    return list(session.execute(select(Category.code, Category.name, Category.active)
                                .order_by(Category.active.desc(), Category.name, Category.code)).all())


def category_codes(session: Session, *, active_only: bool = False) -> list[str]:
    """The category codes, by code: every one (filters, rules, existing products), or only those
    offered for new products (`active_only`)."""
    stmt = select(Category.code).order_by(Category.code)
    return list(session.scalars(stmt.where(Category.active.is_(True)) if active_only else stmt))


def category_choices(session: Session) -> list[tuple[str, str]]:
    """(code, name) of every category, by name: a filter's options."""
    return [(r.code, r.name) for r in session.execute(select(Category.code, Category.name).order_by(Category.name))]
