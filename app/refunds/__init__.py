"""Dockhand refunds."""
