"""Intake rules as plain Python: what a carrier can say about a parcel, and reading a CSV file of
products, orders or returns (RMAs) into the items the use cases take, each bad row named by its
line number and column. No Flask, no database: what only the database knows (is this SKU in the
catalog?) is checked by the services."""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from app.catalog.domain import normalize_gtin
from app.errors import ValidationFailed
from app.refunds.domain import RESOLUTIONS

CARRIER_STATUSES = ("label_created", "in_transit", "out_for_delivery", "delivered", "exception")
CODE = re.compile(r"^[A-Z0-9][A-Z0-9._/-]{0,63}$")  # SKUs, numbers, merchant / channel / warehouse codes
CODE_RULE = "1-64 letters, digits, '.', '_', '/' or '-'"

KINDS = ("products", "orders", "rmas")
KIND_LABELS = {"products": "Products with barcodes", "orders": "Orders with shipped serials",
               "rmas": "Returns (RMAs) with lines and tracking numbers"}
NOUNS = {"products": ("product", "products"), "orders": ("order", "orders"), "rmas": ("return", "returns")}
# The columns of each kind, named as the API's fields (one row per product; per order line; per
# return line). True: required.
COLUMNS: dict[str, tuple[tuple[str, bool], ...]] = {
    "products": (("sku", True), ("name", True), ("category", True), ("unit_value", True), ("merchant", False),
                 ("serial_tracked", False), ("lot_tracked", False), ("barcodes", False)),
    "orders": (("number", True), ("merchant", True), ("channel", True), ("customer_ref", True), ("customer_name", False),
               ("currency", False), ("placed_at", False), ("sku", True), ("quantity", True), ("unit_price", True),
               ("serials", False)),
    "rmas": (("number", True), ("merchant", True), ("channel", True), ("warehouse", True), ("order_number", False),
             ("customer_ref", False), ("customer_name", False), ("carrier", False), ("tracking_numbers", False),
             ("sku", True), ("quantity", True), ("reason_code", True), ("resolution", False), ("exchange_sku", False)),
}
# What a file with a bad row does, per kind (said on the preview screen).
REFUSED_WHOLE = frozenset({"products", "orders"})
POLICY = {
    "products": "Refused whole: if any row is bad, nothing of the file is applied. Products are what orders and "
                "returns name: fix the rows listed and upload the file again.",
    "orders": "Refused whole: if any row is bad, nothing of the file is applied (an order is not changed once "
              "written). Fix the rows listed and upload the file again.",
    "rmas": "Applied in part: each return is applied on its own. A return with a bad row is left out whole (all its "
            "rows); the other returns are applied. Fix the rows listed and upload them again. A row that cannot be read "
            "(or has the wrong number of cells) refuses the whole file: it cannot be told which return it belongs to.",
}
EXAMPLES = {
    "products": [["TEE-RED-S", "Tee red S", "apparel", "25.00", "ACME", "false", "false", "012345678905"],
                 ["PHN-X2-256", "Phone X2 256GB", "electronics", "899.00", "ACME", "true", "false", "5901234123457"]],
    "orders": [["SO-2001", "ACME", "web", "C-77", "Dana Buyer", "USD", "2026-11-30T10:00:00Z", "TEE-RED-S", "2", "20.00", ""],
               ["SO-2001", "ACME", "web", "C-77", "Dana Buyer", "USD", "2026-11-30T10:00:00Z", "PHN-X2-256", "1", "849.00",
                "SN-0001"]],
    "rmas": [["RMA-9001", "ACME", "web", "WH1", "SO-2001", "C-77", "Dana Buyer", "UPS", "1Z999AA10123456785", "TEE-RED-S", "1",
              "wrong_size", "refund", ""],
             ["RMA-9001", "ACME", "web", "WH1", "SO-2001", "C-77", "Dana Buyer", "UPS", "1Z999AA10123456785", "PHN-X2-256", "1",
              "defective", "exchange", "PHN-X2-256"]],
}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would run as a formula
MAX_ERRORS_KEPT = 1000  # bad rows listed (all are counted)
MAX_ROWS = 100_000
MAX_RMA_LINES = 200
LIST_SPLIT = re.compile(r"[\s;,|]+")
_TRUE, _FALSE = {"true", "yes", "y", "1"}, {"false", "no", "n", "0", ""}


@dataclass(frozen=True)
class RowError:
    """What is wrong with one line of the file (line 1 is the header); `column` may be empty."""

    line: int
    column: str
    message: str


@dataclass(frozen=True)
class Item:
    """One thing a use case takes: a product, an order or a return, from the lines it was read
    from. `fields` are the item's values; `rows` the values of each of its lines (orders, returns)."""

    key: str
    lines: tuple[int, ...]
    fields: dict[str, Any]
    rows: tuple[dict[str, Any], ...] = ()


@dataclass
class Parsed:
    """A file read: its data rows, its items, and every bad row. `fatal`: the file as a whole could
    not be read (not UTF-8, wrong columns, empty); `torn`: a row could not be read or has the wrong
    number of cells, so it cannot be told which item it belongs to (a return applied without it
    would lack a line). Either way no item is applied."""

    kind: str
    rows: int = 0
    items: list[Item] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    fatal: bool = False
    torn: bool = False

    def bad_lines(self) -> set[int]:
        return {e.line for e in self.errors}

    @property
    def refused_whole(self) -> bool:
        """Nothing of the file is applied: it cannot be read, a row is torn, or a bad row is in a
        file of a kind that is refused whole."""
        return self.fatal or self.torn or (bool(self.errors) and self.kind in REFUSED_WHOLE)

    def good_items(self) -> list[tuple[int, Item]]:
        """The items applied, with their place among the file's items: none when the file is refused
        whole, else those without a bad line."""
        if self.refused_whole:
            return []
        bad = self.bad_lines()
        return [(n, it) for n, it in enumerate(self.items) if not bad.intersection(it.lines)]


def template_rows(kind: str) -> list[list[str]]:
    """The header and example rows of a kind's template file."""
    return [[name for name, _ in COLUMNS[kind]], *EXAMPLES[kind]]


class _Row:
    """One data row's cells by column, collecting its errors."""

    def __init__(self, line: int, cells: dict[str, str], errors: list[RowError]) -> None:
        self.line, self.cells, self.errors, self.ok = line, cells, errors, True

    def fail(self, column: str, message: str) -> None:
        self.ok = False
        self.errors.append(RowError(self.line, column, message))

    def text(self, column: str, *, required: bool = False, limit: int = 200) -> str:
        value = " ".join(self.cells.get(column, "").split())
        if not value:
            if required:
                self.fail(column, "is empty")
            return ""
        if value.startswith(FORMULA_START):
            self.fail(column, f"starts with {value[0]!r}: a spreadsheet formula is not accepted")
            return ""
        if len(value) > limit:
            self.fail(column, f"has {len(value)} characters; at most {limit}")
            return ""
        return value

    def code(self, column: str, *, required: bool = False) -> str:
        value = self.text(column, required=required, limit=64)
        if value and not CODE.match(value.upper()):
            self.fail(column, f"{value!r} is not a code: {CODE_RULE}")
            return ""
        return value.upper()

    def codes(self, column: str, limit: int = 20) -> tuple[str, ...]:
        raw = self.cells.get(column, "").strip()
        if raw.startswith(FORMULA_START):
            self.fail(column, f"starts with {raw[0]!r}: a spreadsheet formula is not accepted")
            return ()
        found = [c.upper() for c in LIST_SPLIT.split(raw) if c]
        bad = [c for c in found if not CODE.match(c)]
        if bad:
            self.fail(column, f"{bad[0]!r} is not a code: {CODE_RULE}")
        elif len(found) > limit:
            self.fail(column, f"{len(found)} values; at most {limit}")
        return tuple(dict.fromkeys(found)) if not bad else ()

    def quantity(self, column: str = "quantity") -> int:
        raw = self.cells.get(column, "").strip()
        try:
            value = int(raw)
        except ValueError:
            self.fail(column, "is empty" if not raw else f"{raw!r} is not a whole number")
            return 0
        if not 1 <= value <= 10_000:
            self.fail(column, f"{value} is not a quantity: 1 to 10000")
            return 0
        return value

    def money(self, column: str) -> Decimal:
        raw = self.cells.get(column, "").strip()
        try:
            value = Decimal(raw)
        except InvalidOperation:
            self.fail(column, "is empty" if not raw else f"{raw!r} is not an amount such as 25.00")
            return Decimal(0)
        if not value.is_finite() or value < 0 or value >= Decimal("1e8") or value != value.quantize(Decimal("0.01")):
            self.fail(column, f"{raw} is not an amount of at least 0.00 with at most 2 decimals")
            return Decimal(0)
        return value

    def flag(self, column: str) -> bool:
        raw = self.cells.get(column, "").strip().lower()
        if raw in _TRUE:
            return True
        if raw not in _FALSE:
            self.fail(column, f"{raw!r} is not true or false")
        return False


def _header(names: list[str], kind: str) -> tuple[list[str], str | None]:
    """The header's column names (trimmed, lower case), or why the file cannot be read."""
    cols = [n.strip().lower().replace(" ", "_") for n in names]
    known = [name for name, _ in COLUMNS[kind]]
    expected = f"A {kind} file has the columns {', '.join(known)} (a template is on the import page)."
    unknown = [c for c in cols if c not in known]
    if unknown:
        return cols, f"Unknown column {', '.join(repr(c) for c in unknown)}. {expected}"
    repeated = sorted({c for c in cols if cols.count(c) > 1})
    if repeated:
        return cols, f"Column {', '.join(repeated)} appears twice. {expected}"
    missing = [name for name, required in COLUMNS[kind] if required and name not in cols]
    if missing:
        return cols, f"Missing column {', '.join(missing)}. {expected}"
    return cols, None


def parse(kind: str, data: bytes, *, categories: tuple[str, ...]) -> Parsed:
    """Read a CSV file of `kind` (UTF-8, a BOM allowed, comma-separated, a header row) into its
    items, naming every bad row. Nothing here looks anything up: unknown SKUs and merchants are the
    services' to find."""
    out = Parsed(kind)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        out.fatal = True
        out.errors.append(RowError(line, "", f"is not UTF-8 text (byte 0x{data[exc.start]:02X}): save the file as "
                                             "'CSV UTF-8' and upload it again. Nothing of the file was read."))
        return out
    if "\x00" in text:
        out.fatal = True
        out.errors.append(RowError(text.count("\n", 0, text.index("\x00")) + 1, "",
                                   "holds a NUL character (\\0), which is not text: the file is not a CSV file. "
                                   "Nothing of the file was read."))
        return out
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[_Row] = []
    cols: list[str] | None = None
    line = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.errors.append(RowError(line, "", f"cannot be read as CSV ({exc}): the file is refused whole, as "
                                                  "this row cannot be told which item it belongs to"))
            out.torn = True
            if cols is None or len(out.errors) > MAX_ERRORS_KEPT:
                out.fatal = True
                break
            line = reader.line_num + 1
            continue
        start, line = line, reader.line_num + 1
        if cols is None:
            if not any(c.strip() for c in cells):
                continue
            cols, why = _header(cells, kind)
            if why:
                out.fatal = True
                out.errors.append(RowError(start, "", why))
                return out
            continue
        if not any(c.strip() for c in cells):
            continue  # a blank row (spreadsheets add them at the end)
        out.rows += 1
        if out.rows > MAX_ROWS:
            out.fatal = True
            out.errors.append(RowError(start, "", f"The file has more than {MAX_ROWS} rows: split it."))
            return out
        if len(cells) != len(cols):
            out.errors.append(RowError(start, "", f"has {len(cells)} cells; the header has {len(cols)}: the file is "
                                                   "refused whole, as this row cannot be told which item it belongs to"))
            out.torn = True
            continue
        rows.append(_Row(start, dict(zip(cols, cells)), out.errors))
    if cols is None:
        out.fatal = True
        out.errors.append(RowError(1, "", "The file is empty: it needs a header row and at least one row."))
        return out
    if not out.rows:
        out.fatal = True
        out.errors.append(RowError(line, "", "The file has a header but no rows."))
        return out
    {"products": _products, "orders": _orders, "rmas": _rmas}[kind](rows, out, categories)
    out.errors.sort(key=lambda e: e.line)
    return out


def _products(rows: list[_Row], out: Parsed, categories: tuple[str, ...]) -> None:
    seen: dict[str, int] = {}
    owner: dict[str, tuple[str, int]] = {}
    for r in rows:
        sku = r.code("sku", required=True)
        if sku and sku in seen:
            r.fail("sku", f"{sku} is also on line {seen[sku]}: one row per product")
        elif sku:
            seen[sku] = r.line
        name = r.text("name", required=True)
        category = r.text("category", required=True).lower()
        if category and category not in categories:
            r.fail("category", f"{category!r} is not one of {', '.join(categories)}")
        value = r.money("unit_value")
        merchant = r.code("merchant")
        serial, lot = r.flag("serial_tracked"), r.flag("lot_tracked")
        barcodes = []
        raw = r.cells.get("barcodes", "").strip()
        if raw.startswith(FORMULA_START):
            r.fail("barcodes", f"starts with {raw[0]!r}: a spreadsheet formula is not accepted")
            raw = ""
        for code in (c for c in LIST_SPLIT.split(raw) if c):
            gtin = normalize_gtin(code)
            if gtin is None:
                r.fail("barcodes", f"{code!r} is not a GTIN, UPC or EAN with a valid check digit")
            elif owner.setdefault(gtin, (sku, r.line))[0] != sku:
                r.fail("barcodes", f"{code} is also the barcode of {owner[gtin][0]} on line {owner[gtin][1]}")
            else:
                barcodes.append(gtin)
        out.items.append(Item(sku, (r.line,), {"sku": sku, "name": name, "category": category, "unit_value": value,
                                               "merchant": merchant or None, "serial_tracked": serial, "lot_tracked": lot,
                                               "barcodes": tuple(sorted(set(barcodes)))}))


def _grouped(rows: list[_Row], out: Parsed, head: tuple[str, ...], read: Any,
             required: tuple[str, ...]) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Rows of one number make one item: its head columns agree (or are left empty on later rows);
    a `required` one is given on one of its rows at least."""
    items: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for r in rows:
        number = r.code("number", required=True)
        values = read(r)
        if not number:
            continue
        line = dict(values["line"], line=r.line)
        if number not in items:
            items[number] = (dict(values["head"], first_line=r.line), [line])
            continue
        first, lines = items[number]
        for col in head:
            mine, theirs = values["head"].get(col), first.get(col)
            if col == "tracking_numbers":
                first[col] = tuple(dict.fromkeys((*theirs, *mine)))
            elif mine and theirs and mine != theirs:
                r.fail(col, f"{mine} differs from {theirs} on line {first['first_line']} of {number}")
            elif mine and not theirs:
                first[col] = mine
        lines.append(line)
    for number, (first, _lines) in items.items():
        for col in required:
            if not first.get(col):
                out.errors.append(RowError(first["first_line"], col, f"is empty on every row of {number}"))
    return items


def _orders(rows: list[_Row], out: Parsed, categories: tuple[str, ...]) -> None:
    def read(r: _Row) -> dict[str, Any]:
        placed_raw = r.text("placed_at")
        placed = None
        if placed_raw:
            try:
                placed = datetime.fromisoformat(placed_raw)
            except ValueError:
                r.fail("placed_at", f"{placed_raw!r} is not a time such as 2026-11-30T10:00:00Z")
            else:
                if placed.tzinfo is None:
                    r.fail("placed_at", "needs its offset (UTC: ...Z)")
                    placed = None
                elif not datetime(2000, 1, 1, tzinfo=timezone.utc) <= placed <= datetime(2100, 1, 1, tzinfo=timezone.utc):
                    r.fail("placed_at", "is not between 2000 and 2100")
                    placed = None
        currency = r.text("currency").upper()
        if currency and not re.fullmatch(r"[A-Z]{3}", currency):
            r.fail("currency", f"{currency!r} is not a currency code such as USD")
        serials = r.cells.get("serials", "").strip()
        if serials.startswith(FORMULA_START):
            r.fail("serials", f"starts with {serials[0]!r}: a spreadsheet formula is not accepted")
            serials = ""
        serial_list = tuple(sorted({s for s in LIST_SPLIT.split(serials) if s}))
        if any(len(s) > 64 for s in serial_list):
            r.fail("serials", "a serial has at most 64 characters")
        quantity = r.quantity()
        if quantity and len(serial_list) > quantity:
            r.fail("serials", f"{len(serial_list)} serials for a quantity of {quantity}")
        return {"head": {"merchant": r.code("merchant"), "channel": r.code("channel"),
                         "customer_ref": r.text("customer_ref", limit=64),
                         "customer_name": r.text("customer_name", limit=120), "currency": currency,
                         "placed_at": placed.astimezone(timezone.utc) if placed else None},
                "line": {"sku": r.code("sku", required=True), "quantity": quantity,
                         "unit_price": r.money("unit_price"), "serials": serial_list}}

    head = ("merchant", "channel", "customer_ref", "customer_name", "currency", "placed_at")
    for number, (first, lines) in _grouped(rows, out, head, read, ("merchant", "channel", "customer_ref")).items():
        seen: dict[str, int] = {}
        for ln in lines:
            if ln["sku"] in seen:
                out.errors.append(RowError(ln["line"], "sku", f"{ln['sku']} is also on line {seen[ln['sku']]} of order "
                                                              f"{number}: one row per SKU"))
            seen.setdefault(ln["sku"], ln["line"])
        if len(lines) > MAX_RMA_LINES:
            out.errors.append(RowError(first["first_line"], "number", f"order {number} has {len(lines)} rows; at most {MAX_RMA_LINES}"))
        out.items.append(Item(number, tuple(ln["line"] for ln in lines), dict(first, number=number, currency=first["currency"] or "USD"),
                              tuple(lines)))


def _rmas(rows: list[_Row], out: Parsed, categories: tuple[str, ...]) -> None:
    def read(r: _Row) -> dict[str, Any]:
        resolution = r.text("resolution").lower() or "refund"
        if resolution not in RESOLUTIONS:
            r.fail("resolution", f"{resolution!r} is not one of {', '.join(RESOLUTIONS)}")
        swap = r.code("exchange_sku")
        if resolution == "exchange" and not swap:
            r.fail("exchange_sku", "an exchange names the SKU to ship instead")
        elif swap and resolution != "exchange":
            r.fail("exchange_sku", "only an exchange names a SKU to ship instead")
        return {"head": {"merchant": r.code("merchant"), "channel": r.code("channel"),
                         "warehouse": r.code("warehouse"), "order_number": r.code("order_number"),
                         "customer_ref": r.text("customer_ref", limit=64), "customer_name": r.text("customer_name", limit=120),
                         "carrier": r.text("carrier", limit=32), "tracking_numbers": r.codes("tracking_numbers")},
                "line": {"sku": r.code("sku", required=True), "quantity": r.quantity(),
                         "reason_code": r.text("reason_code", required=True, limit=32), "resolution": resolution,
                         "exchange_sku": swap or None}}

    head = ("merchant", "channel", "warehouse", "order_number", "customer_ref", "customer_name", "carrier", "tracking_numbers")
    trackings: dict[str, tuple[str, int]] = {}
    for number, (first, lines) in _grouped(rows, out, head, read, ("merchant", "channel", "warehouse")).items():
        seen: dict[tuple[Any, ...], int] = {}
        for ln in lines:
            same = (ln["sku"], ln["reason_code"], ln["resolution"], ln["exchange_sku"])
            if same in seen:
                out.errors.append(RowError(ln["line"], "", f"repeats line {seen[same]}: the same SKU, reason and resolution "
                                                           f"of return {number} (a quantity of 2 is one row)"))
            seen.setdefault(same, ln["line"])
        if len(lines) > MAX_RMA_LINES:
            out.errors.append(RowError(first["first_line"], "number", f"return {number} has {len(lines)} rows; at most {MAX_RMA_LINES}"))
        if len(first["tracking_numbers"]) > 20:
            out.errors.append(RowError(first["first_line"], "tracking_numbers", f"return {number} has more than 20 tracking numbers"))
        for t in first["tracking_numbers"]:
            if trackings.setdefault(t, (number, first["first_line"]))[0] != number:
                out.errors.append(RowError(first["first_line"], "tracking_numbers",
                                           f"{t} is also a tracking number of {trackings[t][0]} on line {trackings[t][1]}"))
        out.items.append(Item(number, tuple(ln["line"] for ln in lines), dict(first, number=number), tuple(lines)))


def check_upload(content: bytes, max_bytes: int, *, limit: str, split: str) -> None:
    """Refuse an uploaded file that is empty or over `max_bytes` (the `limit` said as "the import
    takes files"), saying how to `split` it."""
    if not content:
        raise ValidationFailed("Choose a CSV file to upload: none was sent, or it is empty.")
    if len(content) > max_bytes:
        raise ValidationFailed(f"The file is {len(content) / 1048576:.1f} MB; {limit} up to "
                               f"{max_bytes / 1048576:.0f} MB. {split}")


def upload_name(name: str | None, default: str = "upload.csv") -> str:
    """An uploaded file's name as kept and shown: no folders, no control characters, 200 at most."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = "".join(c for c in base if c.isprintable()).strip()[:200]
    return base or default
