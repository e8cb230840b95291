"""Catalog rules as plain Python: barcodes (GTIN, UPC, EAN) in the one form they are stored in."""
from __future__ import annotations

import re

from biip import ParseError
from biip.upc import Upc, UpcFormat

_GTIN_DIGITS = re.compile(r"[0-9]{8}|[0-9]{12,14}")


def _check_digit_ok(digits: str) -> bool:
    """Validate the GS1 mod-10 check digit of an ASCII digit string."""
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def normalize_gtin(code: str) -> str | None:
    """Return the GTIN-14 (zero-padded) of an 8/12/13/14-digit code with a valid check digit.

    Lets UPC-A, EAN-13 and GTIN-14 spellings of one product match each other.
    Returns None for anything else (wrong length, non-ASCII digits, bad check digit, all zeros).
    """
    if not isinstance(code, str):
        return None
    digits = code.strip()
    if not _GTIN_DIGITS.fullmatch(digits) or not _check_digit_ok(digits):
        return None
    gtin14 = digits.zfill(14)
    return None if gtin14 == "0" * 14 else gtin14


_UPC_E = re.compile(r"[01][0-9]{7}")


def upc_e_to_gtin(code: str) -> str | None:
    """The GTIN-14 of an 8-digit UPC-E (number system 0 or 1, six digits, check digit), expanded to
    its UPC-A by the standard rule (biip), or None when `code` is not one.

    A small package's UPC-E stands for a UPC-A with zeros squeezed out: 04252614 is 042100005264,
    kept as GTIN 00042100005264. (An 8-digit code is also read as an EAN-8 by normalize_gtin; the
    two check digits disagree for nine codes in ten, and a lookup tries both.)
    """
    if not isinstance(code, str) or not _UPC_E.fullmatch(code.strip()):
        return None
    try:
        upc = Upc.parse(code.strip())
    except (ParseError, ValueError):
        return None
    return upc.as_gtin_14() if upc.format == UpcFormat.UPC_E else None
