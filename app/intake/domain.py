"""Intake rules as plain Python: what a carrier can say about a parcel."""
from __future__ import annotations

CARRIER_STATUSES = ("label_created", "in_transit", "out_for_delivery", "delivered", "exception")
