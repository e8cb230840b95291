"""Marking English for the catalogue where it is written, not where it is shown.

Rules and services are plain Python and speak English; a screen translates what they say with
gettext (`app.web.i18n`). `N_` marks a fixed text (a label, a title) so that `make messages`
(`pybabel extract -k N_`) puts it in the catalogue; it returns the text unchanged."""
from __future__ import annotations


def N_(message: str) -> str:
    """`message` itself: a mark for the catalogue, translated where a screen shows it."""
    return message
