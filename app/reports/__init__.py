"""The returns dashboard: KPIs, reason analytics, recovery and flow (read only)."""
