"""API keys: the secret is kept only as a hash; scopes and the merchants (or partner warehouses)
a key is limited to."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True)  # the token's public part
    name: Mapped[str] = mapped_column(String(120))
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    merchant_ids: Mapped[list[int] | None] = mapped_column(JSON)  # None: every merchant
    partner_org_id: Mapped[int | None] = mapped_column(ForeignKey("partner_orgs.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def describe(self) -> dict[str, Any]:
        """What the audit log keeps of a key (never its secret)."""
        return {"key_id": self.key_id, "name": self.name, "scopes": self.scopes, "merchant_ids": self.merchant_ids,
                "partner_org_id": self.partner_org_id, "revoked": self.revoked_at is not None}
