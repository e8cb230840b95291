"""The catalogue: no handheld template says anything outside it, and Spanish has every entry.

A handheld screen speaks the worker's language only if every word on it goes through gettext
(`{{ _("...") }}`, `{% trans %}`) and the catalogue has it. The first test reads each handheld
template as a browser would, with the template's own code blanked out, and fails on any text or
any spoken attribute (aria-label, title, placeholder, alt, hx-confirm) left in English. The second
extracts every message the code and templates ask for and fails on one the Spanish catalogue lacks,
leaves empty, or translates with other placeholders."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
SPANISH = ROOT / "translations" / "es" / "LC_MESSAGES" / "messages.po"

# Every template a handheld page is made of: its pages (body class "handheld") and what they include.
HANDHELD = sorted({*TEMPLATES.glob("receiving/*.html"), *TEMPLATES.glob("labels/*.html"), *TEMPLATES.glob("home/_*.html"),
                   TEMPLATES / "home" / "floor.html", TEMPLATES / "base.html", TEMPLATES / "_messages.html",
                   TEMPLATES / "error.html", TEMPLATES / "signin" / "login.html"}
                  # Not handheld: the label itself (printed, not read on the screen) and the admins' printer setup
                  # (desktop pages).
                  - {TEMPLATES / "labels" / n for n in ("_label.html", "_printer_form.html", "printers.html", "printer_edit.html")})
# The supervisor's desk speaks the same languages: every template of it.
DESK = sorted(TEMPLATES.glob("desk/*.html"))
SPOKEN_ATTRIBUTES = {"aria-label", "title", "placeholder", "alt", "hx-confirm"}
# Not words of a language: the product's name, separators and units of the dock.
NOT_WORDS = {"Dockhand", "LPN", "SKU", "ZPL", "UTC", "RMA"}
# Said through the catalogue, or not text at all: {% trans %} blocks; the blocks that fill in the page's
# <head>, its body's class and attributes; {% set %} blocks (attributes kept for later).
_NOT_TEXT = re.compile(r"\{%-?\s*trans\b.*?\{%-?\s*endtrans\s*-?%\}"
                       r"|\{%-?\s*block\s+(?:body_class|body_attrs|head)\s*-?%\}.*?\{%-?\s*endblock\s*-?%\}"
                       r"|\{%-?\s*set\s+\w+\s*-?%\}.*?\{%-?\s*endset\s*-?%\}", re.S)
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_LETTERS = re.compile(r"[A-Za-z]{2,}")


class _Words(HTMLParser):
    """The text and spoken attributes of a page, skipping styles and scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str]] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "svg"):
            self._skip += 1
        for name, value in attrs:
            if name in SPOKEN_ATTRIBUTES and value:
                self._note(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "svg") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._note(data)

    def _note(self, text: str) -> None:
        words = [w for w in _LETTERS.findall(text.replace("\x00", " ")) if w not in NOT_WORDS]
        if words:
            self.found.append((self.getpos()[0], " ".join(text.replace("\x00", "…").split())))


def english_left(source: str) -> list[tuple[int, str]]:
    """The lines and texts of `source` (a template) that a screen would show untranslated."""
    blank = _NOT_TEXT.sub(lambda m: " \x00 " + "\n" * m.group().count("\n"), source)
    blank = _JINJA.sub(lambda m: " \x00 " + "\n" * m.group().count("\n"), blank)
    parser = _Words()
    parser.feed(blank)
    parser.close()
    return parser.found


def test_the_check_finds_english_in_text_and_in_spoken_attributes() -> None:
    found = english_left('<p>{{ _("Fine") }}</p>\n<p>Close parcel</p>\n<input placeholder="Scan a code">'
                         '<button aria-label="{{ _(\'Go\') }}">{% trans %}Kept{% endtrans %}</button>')
    assert found == [(2, "Close parcel"), (3, "Scan a code")]


@pytest.mark.parametrize("template", HANDHELD + DESK, ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_a_handheld_or_desk_template_says_nothing_outside_the_catalogue(template: Path) -> None:
    assert english_left(template.read_text(encoding="utf-8")) == []


def _messages() -> dict[tuple[str | None, str], tuple[str, str]]:
    """Every message the code and the templates ask gettext for: (context, msgid) -> (file, line)."""
    keywords = {**DEFAULT_KEYWORDS, "lazy_gettext": None, "lazy_pgettext": ((1, "c"), 2), "tr": None,
                "N_": None}
    method_map = [("app/**.py", "python"), ("templates/**.html", "jinja2")]
    found: dict[tuple[str | None, str], tuple[str, str]] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
            str(ROOT), method_map, options_map={"templates/**.html": {"trimmed": "false"}}, keywords=keywords):
        for msgid in (message if isinstance(message, tuple) else (message,)):
            if msgid:
                found.setdefault((context, msgid), (filename, str(lineno)))
    return found


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def test_spanish_has_every_message_with_the_same_placeholders() -> None:
    catalogue = read_po(SPANISH.open("rb"), locale="es")
    translations: dict[tuple[str | None, str], str] = {}
    for entry in catalogue:
        ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        complete = all(strings)  # a plural needs every form the language has (Spanish: one, many, other)
        translations[entry.context, ids[0]] = strings[0] if complete else ""
        if len(ids) > 1:
            translations[entry.context, ids[1]] = strings[-1] if complete else ""
    problems = []
    for (context, msgid), (filename, line) in sorted(_messages().items(), key=lambda m: (m[0][0] or "", m[0][1])):
        spanish = translations.get((context, msgid))
        if not spanish:
            problems.append(f"{filename}:{line}: no Spanish for {msgid!r}")
        elif set(_PLACEHOLDER.findall(spanish)) != set(_PLACEHOLDER.findall(msgid)):
            problems.append(f"{filename}:{line}: Spanish {spanish!r} has other placeholders than {msgid!r}")
    assert problems == []
