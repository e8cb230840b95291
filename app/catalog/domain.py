"""Catalog rules as plain Python: barcodes (GTIN, UPC, EAN) in the one form they are stored in."""
from __future__ import annotations

import re

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
