"""Signing in and out: the login screen."""
