"""Marking English for the catalogue where it is written, not where it is shown.

Rules and services are plain Python and speak English; a screen translates what they say with
gettext (`app.web.i18n`). `N_` marks a fixed text (a label, a title) so that `make messages`
(`pybabel extract -k N_`) puts it in the catalogue; it returns the text unchanged. `Said` keeps a
sentence built from figures ("Parcel %(n)s closed") as its marked English and its figures, so a
screen says it in the reader's language (`said` filter) and everything else reads the English."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# gettext's signature: the English message and its figures, the words in a language
Translate = Callable[..., str]


def N_(message: str) -> str:
    """`message` itself: a mark for the catalogue, translated where a screen shows it."""
    return message


def pct_words(share: Decimal) -> str:
    """A share written as a percentage, as the rules write it: 0.1 -> "10%", 0.125 -> "12.5%"."""
    return f"{(Decimal(share) * 100).quantize(Decimal('0.01')).normalize():f}%"


def english(message: str, **figures: Any) -> str:
    """The words as written here: the translator a caller with no language passes (the API, tests)."""
    return message % figures if figures else message


@dataclass(frozen=True)
class Said:
    """A sentence: its English `template` (marked with N_ where it is written) and its `figures`;
    a figure named in `labels` is itself a marked word (a state's or an exception's label) and is
    translated too, a figure that is a Said is said in the same language; one named in `amounts` is money, written the language's way. `str()` is the English."""

    template: str
    figures: Mapping[str, Any] = field(default_factory=dict)
    labels: frozenset[str] = frozenset()
    amounts: frozenset[str] = frozenset()

    def say(self, tr: Translate = english, money: Callable[[Any], str] = "{:,.2f}".format) -> str:
        figures = {k: v.say(tr, money) if isinstance(v, Said) else tr(v) if k in self.labels
                   else money(v) if k in self.amounts else v for k, v in self.figures.items()}
        return tr(self.template, **figures) if figures else tr(self.template)

    def __str__(self) -> str:
        return self.say()
