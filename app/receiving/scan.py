"""Pure parsing of one scan from a keyboard-wedge scanner, a camera or a typed entry.

:func:`parse_scan` never raises: any text yields a :class:`ParsedScan` whose
``kind_hint`` tells the server how to look it up:

- ``gs1``: a GS1 element string (GTIN + serial / lot / expiry), raw with FNC1 as
  ``\\x1d`` (or the literal ``<GS>``), parenthesised ``(01)...(21)...``, or
  prefixed by a GS1 symbology identifier (``]C1``, ``]d2``, ``]Q3``, ...);
- ``lpn``: a licence plate ``LP`` + 8 or more digits;
- ``gs1`` too: a GS1 Digital Link URI, as a QR code carries it
  (``https://id.example.com/01/09506000134352/21/SERIAL/10/LOT?17=261231``);
- ``location``: ``LOC:`` + a location code;
- ``text``: anything else, including bare EAN-13 / UPC-A / GTIN-14 digits, which the
  server looks up as a product barcode or SKU (see :func:`normalize_gtin`; an 8-digit UPC-E
  also as its UPC-A, :func:`upc_e_to_gtin`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from biip import ParseConfig, ParseError
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_element_strings import GS1ElementString
from biip.gs1_messages import GS1Message

from app.catalog.domain import normalize_gtin

GS = "\x1d"
MAX_SCAN_LENGTH = 200

# AIM symbology identifiers that announce GS1 data (GS1-128, GS1 DataMatrix, GS1 QR,
# GS1 DataBar, GS1 DotCode). Other identifiers (e.g. "]E0" EAN-13) are just stripped.
GS1_SYMBOLOGY_PREFIXES = frozenset({"]C1", "]d2", "]Q3", "]e0", "]e1", "]e2", "]J1"})
_AIM_PREFIX = re.compile(r"\][A-Za-z][0-9A-Za-z]")
_LPN = re.compile(r"LP[0-9]{8,}", re.IGNORECASE)
_RAW_GS1 = re.compile(r"01[0-9]{14}")
_HRI_GS1 = re.compile(r"\([0-9]{2,4}\)")
_LITERAL_GS = re.compile(r"<GS>", re.IGNORECASE)
_LOCATION_PREFIX = "LOC:"
_DIGITAL_LINK = re.compile(r"https?://[^/?#]+/(?:[^?#]*/)?01/[0-9]{14}(?:[/?#].*)?", re.IGNORECASE)
# A Digital Link's key qualifiers after the GTIN, in the order the standard fixes (22, 10, 21);
# labels in the field also print them in another order (/21/SERIAL/10/LOT), which biip refuses.
_DL_QUALIFIER = re.compile(r"/(22|10|21)/([^/?#]+)")
_DL_ORDER = {"22": 0, "10": 1, "21": 2}

_BIIP_CONFIG = ParseConfig(separator_chars=(GS,))


@dataclass(frozen=True)
class ParsedScan:
    """One cleaned scan and what it looks like; GS1 fields are None unless ``kind_hint == "gs1"``."""

    raw: str
    kind_hint: str  # "gs1" | "lpn" | "location" | "text"
    gtin: str | None = None
    serial: str | None = None
    lot: str | None = None
    expiry: date | None = None

    @property
    def location_code(self) -> str | None:
        """The location code after ``LOC:`` for a location scan, else None."""
        if self.kind_hint != "location":
            return None
        return self.raw[len(_LOCATION_PREFIX):].strip()


def _clean(raw: str) -> str:
    """Drop control/format characters except GS, map a literal ``<GS>`` to GS, trim the ends.

    Wedge scanners append CR/LF/TAB and sometimes send FNC1 as text; zero-width
    characters arrive from copy-paste. Leading/trailing GS carry no data.
    """
    text = _LITERAL_GS.sub(GS, raw)
    kept = "".join(
        ch for ch in text if ch == GS or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    return kept.strip().strip(GS).strip()


def _gs1_fields(elements: list[GS1ElementString]) -> tuple[str | None, str | None, str | None, date | None] | None:
    """Extract (gtin, serial, lot, expiry) from biip's element strings; None if the GTIN is invalid."""
    values: dict[str, str] = {}
    expiry: date | None = None
    for element in elements:
        ai = element.ai.ai
        values.setdefault(ai, element.value)
        if ai == "17" and expiry is None:
            expiry = element.date
    gtin: str | None = None
    if "01" in values:
        gtin = normalize_gtin(values["01"])
        if gtin is None:  # a GS1 string with a bad GTIN check digit is a misread, not data
            return None
    return gtin, values.get("21"), values.get("10"), expiry


def _try_gs1(text: str, *, require_more_than_gtin: bool) -> ParsedScan | None:
    """Parse ``text`` (no symbology prefix) as GS1 with biip; None when it is not GS1."""
    try:
        if text.startswith("("):
            message = GS1Message.parse_hri(text, config=_BIIP_CONFIG)
        else:
            message = GS1Message.parse(text, config=_BIIP_CONFIG)
    except (ParseError, ValueError):
        return None
    if require_more_than_gtin and len(message.element_strings) < 2:
        return None
    return _gs1_scan(text, list(message.element_strings))


def _gs1_scan(text: str, elements: list[GS1ElementString]) -> ParsedScan | None:
    fields = _gs1_fields(elements)
    if fields is None:
        return None
    gtin, serial, lot, expiry = fields
    return ParsedScan(raw=text, kind_hint="gs1", gtin=gtin, serial=serial, lot=lot, expiry=expiry)


def _try_digital_link(text: str) -> ParsedScan | None:
    """Parse a GS1 Digital Link URI with biip (the path's AIs 01, 22, 10, 21, the query's AIs such
    as 17 expiry); qualifiers in another order than the standard's are put in its order first."""
    for uri in (text, _dl_in_standard_order(text)):
        try:
            link = GS1DigitalLinkURI.parse(uri)
        except (ParseError, ValueError):
            continue
        return _gs1_scan(text, list(link.element_strings))
    return None


def _dl_in_standard_order(text: str) -> str:
    head, sep, rest = text.partition("/01/")
    gtin, qualifiers = rest[:14], rest[14:]
    tail_at = min((i for i in (qualifiers.find("?"), qualifiers.find("#")) if i >= 0), default=len(qualifiers))
    path, tail = qualifiers[:tail_at], qualifiers[tail_at:]
    pairs = _DL_QUALIFIER.findall(path)
    if "".join(f"/{ai}/{value}" for ai, value in pairs) != path:
        return text  # something else in the path: leave it to biip to refuse
    ordered = sorted(pairs, key=lambda pair: _DL_ORDER[pair[0]])
    return head + sep + gtin + "".join(f"/{ai}/{value}" for ai, value in ordered) + tail


def _classify(text: str) -> ParsedScan:
    """Classify a cleaned scan without a symbology prefix."""
    if text[: len(_LOCATION_PREFIX)].upper() == _LOCATION_PREFIX:
        return ParsedScan(raw=_LOCATION_PREFIX + text[len(_LOCATION_PREFIX):].strip(), kind_hint="location")
    if _LPN.fullmatch(text):
        return ParsedScan(raw=text.upper(), kind_hint="lpn")
    if _DIGITAL_LINK.fullmatch(text):
        parsed = _try_digital_link(text)
        if parsed is not None:
            return parsed
    if _HRI_GS1.match(text):
        parsed = _try_gs1(text, require_more_than_gtin=False)
        if parsed is not None:
            return parsed
    elif _RAW_GS1.match(text) and len(text) > 16:
        # "01" + 14 digits alone is ambiguous with a long SKU: demand a second AI.
        parsed = _try_gs1(text, require_more_than_gtin=True)
        if parsed is not None:
            return parsed
    return ParsedScan(raw=text, kind_hint="text")


def _parse(raw: str) -> ParsedScan:
    """Body of :func:`parse_scan` (may raise on library surprises; the caller guards)."""
    text = _clean(raw)
    if len(text) > MAX_SCAN_LENGTH:
        return ParsedScan(raw=text[:MAX_SCAN_LENGTH], kind_hint="text")
    if _AIM_PREFIX.match(text):
        prefix, rest = text[:3], text[3:].strip(GS).strip()
        if prefix in GS1_SYMBOLOGY_PREFIXES:
            parsed = _try_gs1(rest, require_more_than_gtin=False)
            if parsed is not None:
                return parsed
        if rest:
            return _classify(rest)
    return _classify(text)


def parse_scan(raw: str) -> ParsedScan:
    """Clean and classify one scan; never raises, whatever the input.

    Inputs longer than 200 characters after cleaning are truncated and returned as
    ``text`` without further parsing. Bare 8/12/13/14-digit codes are ``text`` with
    ``gtin`` None: the server resolves them as product barcodes.
    """
    if not isinstance(raw, str):
        raw = "" if raw is None else str(raw)
    try:
        return _parse(raw)
    except Exception:  # a scan must always get an answer; fall back to plain text
        return ParsedScan(raw=_clean(raw)[:MAX_SCAN_LENGTH], kind_hint="text")


def as_parsed(raw: "str | ParsedScan") -> ParsedScan:
    """`raw` parsed (parse_scan), unless it already is; anything but a string is an empty scan."""
    return raw if isinstance(raw, ParsedScan) else parse_scan(raw if isinstance(raw, str) else "")
