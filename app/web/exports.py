"""CSV downloads: UTF-8 with a byte order mark (so a spreadsheet opens accents right), a header
row, and no cell a spreadsheet would run as a formula (OWASP's CSV injection advice: a leading
=, +, -, @, tab or carriage return is quoted with an apostrophe)."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from flask import Response

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """One cell as text, neutralised: a date in ISO 8601, None as empty; a number as it is (a
    negative figure is a number to a spreadsheet, not a formula: it keeps its minus sign)."""
    if value is None:
        return ""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return str(value)
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_download(filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Response:
    """A CSV attachment of `rows` under `header`."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([cell(v) for v in row] for row in rows)
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={filename}"})
