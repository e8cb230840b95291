"""Dockhand catalog."""
