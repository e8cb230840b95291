"""Anomaly flags: what looks wrong about a return or a unit, explained, and whether it holds the refund."""
