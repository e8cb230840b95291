"""Dockhand ledger."""
