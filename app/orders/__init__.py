"""Dockhand orders."""
