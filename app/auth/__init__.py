"""Dockhand auth."""
