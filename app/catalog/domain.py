"""Catalog rules as plain Python: barcodes (GTIN, UPC, EAN) in the one form they are stored in; a
kit's components as the console's editor writes them (`parse_components`, `components_text`)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from biip import ParseError
from biip.upc import Upc, UpcFormat

from app.words import N_, pct_words

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


# --------------------------------------------------------------------------- kits' components

MAX_COMPONENTS = 30
MAX_COMPONENT_NAME = 200
MAX_COMPONENTS_TEXT = 10000
MAX_QUANTITY = 999
Problem = tuple[str, dict[str, object]]  # an English template (marked with N_) and its figures


@dataclass(frozen=True)
class ComponentLine:
    """One line of the components editor: a SKU or a name (`ref`), how many, and the share of the
    refund a missing one deducts (None: its value's share of the kit's, app.inspection.grading)."""

    line: int
    ref: str
    quantity: int
    pct: Decimal | None


class ComponentsInvalid(ValueError):
    """Every problem of a components text, each a template and its figures."""

    def __init__(self, problems: list[Problem], lines: list[ComponentLine] | None = None) -> None:
        super().__init__("; ".join(t % f if f else t for t, f in problems))
        self.problems = problems
        self.lines = lines or []  # the lines read, good or not: what they name is checked too


def _pct(text: str) -> Decimal | None:
    """"10", "10%" or "12.5 %" as a share (0.1000); None when it is not a number."""
    if not re.fullmatch(r"\d{1,3}(\.\d{1,2})?", text.removesuffix("%").strip()):
        return None
    return (Decimal(text.removesuffix("%").strip()) / 100).quantize(Decimal("0.0001"))


def parse_components(text: str) -> list[ComponentLine]:
    """A kit's components as edited: one a line, "SKU or name | quantity | deduction %", the
    quantity 1 and the deduction by value when left out, blank lines skipped, in order; none at all
    makes the product a plain one again. ComponentsInvalid names every line at fault."""
    if len(text) > MAX_COMPONENTS_TEXT:
        raise ComponentsInvalid([(N_("Keep the components under %(limit)s characters."), {"limit": MAX_COMPONENTS_TEXT})])
    lines: list[ComponentLine] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        parts = [" ".join(p.split()) for p in raw.split("|")]
        if len(parts) > 3:
            problems.append((N_("Line %(line)s: write it as SKU or name | quantity | deduction, at most two bars."),
                             {"line": n}))
            continue
        ref, qty, ded = (parts + ["", ""])[:3]
        if not ref or len(ref) > MAX_COMPONENT_NAME or not ref.isprintable():
            problems.append((N_("Line %(line)s: a SKU or name is 1-%(limit)s printable characters."),
                             {"line": n, "limit": MAX_COMPONENT_NAME}))
        elif ref.lower() in seen:
            problems.append((N_("Line %(line)s: %(name)s is on line %(other)s already: give it one line with its quantity."),
                             {"line": n, "name": ref, "other": seen[ref.lower()]}))
        qty = qty or "1"
        quantity = int(qty) if re.fullmatch(r"\d{1,3}", qty) and 1 <= int(qty) <= MAX_QUANTITY else None
        if quantity is None:
            problems.append((N_("Line %(line)s: a quantity is a whole number from 1 to %(limit)s."),
                             {"line": n, "limit": MAX_QUANTITY}))
        pct = _pct(ded) if ded else None
        if ded and (pct is None or not 0 < pct <= 1):
            problems.append((N_("Line %(line)s: a deduction is a percentage above 0 and at most 100 (write 10 or 10%%), "
                                "or nothing to deduct the component's value."), {"line": n}))
        seen.setdefault(ref.lower(), n)
        lines.append(ComponentLine(n, ref, quantity or 1, pct))
    if len(lines) > MAX_COMPONENTS:
        problems.append((N_("A kit has at most %(limit)s components."), {"limit": MAX_COMPONENTS}))
    total = sum((c.pct for c in lines if c.pct is not None), Decimal(0))
    if not problems and total > 1:
        problems.append((N_("The deductions set add up to %(total)s, more than the whole refund."),
                         {"total": pct_words(total)}))
    if problems:
        raise ComponentsInvalid(problems, lines)
    return lines


def components_text(rows: list[tuple[str, int, Decimal | None]]) -> str:
    """The editor's text of a kit's components, each (its SKU, else its name; quantity; deduction or
    None): parse_components reads it back."""
    return "\n".join(f"{ref} | {qty}" + (f" | {pct_words(pct)}" if pct is not None else "") for ref, qty, pct in rows)
