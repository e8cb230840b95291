"""Dockhand desk."""
