"""Dockhand exceptions."""
