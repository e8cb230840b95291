"""Reconciliation rules as plain Python: a source's bucket names mapped to Dockhand's states,
reading a stock snapshot (CSV) into its rows, the zero-out guard, variance lines (match, over,
short) with their likely cause, and the roll-forward check. No Flask, no database: what only the
database knows (is this SKU in the catalog? the ledger at T) the services look up."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from app.intake.domain import CODE, CODE_RULE, FORMULA_START, MAX_ERRORS_KEPT, RowError
from app.ledger.domain import ON_HAND, STATES

COLUMNS = ("warehouse", "merchant", "sku", "bucket", "quantity")
REQUIRED = frozenset({"warehouse", "sku", "bucket", "quantity"})
MAX_ROWS = 200_000
MAX_QUANTITY = 1_000_000
EXAMPLE = [["WH1", "ACME", "TEE-RED-S", "SELLABLE", "12"], ["WH1", "ACME", "TEE-RED-S", "DAMAGED", "1"]]

# A variance line's kind: the source counts as many (match), more (over) or fewer (short) than the ledger.
MATCH, OVER, SHORT = "match", "over", "short"
KINDS = (MATCH, OVER, SHORT)
RESOLUTIONS = {
    "timing": "Timing: posted on one side after the snapshot",
    "count_error": "Count error at the partner",
    "lost_unit": "Lost unit (marked missing in the ledger)",
    "found_unit": "Found unit (back from missing in the ledger)",
    "data_error": "Data error (wrong SKU, merchant or bucket)",
}
# The zero-out guard: a snapshot that leaves out (or counts zero of) at least this many of the
# ledger's items, and at least this share of them, is refused unless the person confirms it.
ZERO_OUT_MIN_ITEMS = 5
ZERO_OUT_SHARE = Decimal("0.2")

Key = tuple[int, int | None, int, str]  # (warehouse_id, merchant_id, product_id, state)


class MappingError(ValueError):
    """A bucket mapping that cannot be read; the message says which line and why."""


def parse_mapping(text: str) -> dict[str, str]:
    """'BUCKET = state' per line (blank lines and '#' comments skipped) into {BUCKET: state}.
    Bucket names are kept upper case; each state must be one of Dockhand's."""
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        bucket, eq, state = (p.strip() for p in line.partition("="))
        bucket = bucket.upper()
        if not eq or not bucket or not state:
            raise MappingError(f"Line {n}: write 'BUCKET = state', e.g. 'SELLABLE = available'.")
        if not CODE.match(bucket):
            raise MappingError(f"Line {n}: {bucket!r} is not a bucket name: {CODE_RULE}.")
        if state.lower() not in STATES:
            raise MappingError(f"Line {n}: {state!r} is not a state. States: {', '.join(STATES)}.")
        if bucket in out:
            raise MappingError(f"Line {n}: bucket {bucket} is mapped twice.")
        out[bucket] = state.lower()
    if not out:
        raise MappingError("Map at least one bucket: 'BUCKET = state', one a line.")
    return out


def mapping_text(mapping: Mapping[str, str]) -> str:
    """A mapping as the text parse_mapping reads."""
    return "\n".join(f"{bucket} = {state}" for bucket, state in sorted(mapping.items()))


@dataclass(frozen=True)
class SnapshotRow:
    """One row of a snapshot as read: codes, the bucket's state, the quantity."""

    line: int
    warehouse: str
    merchant: str | None
    sku: str
    bucket: str
    state: str
    quantity: int


@dataclass
class ReadSnapshot:
    """A snapshot file or body read: its rows and every bad row by line (line 1 is the header)."""

    rows: list[SnapshotRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0

    def fail(self, line: int, column: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(RowError(line, column, message))


def _code(cells: Mapping[str, str], column: str, line: int, out: ReadSnapshot) -> str | None:
    value = (cells.get(column) or "").strip().upper()
    if not value:
        if column in REQUIRED:
            out.fail(line, column, "is empty")
        return None
    if value.startswith(FORMULA_START) or not CODE.match(value):
        out.fail(line, column, f"{value[:40]!r} is not a code: {CODE_RULE}")
        return None
    return value


def _quantity(raw: str, line: int, out: ReadSnapshot) -> int | None:
    raw = (raw or "").strip()
    try:
        value = int(raw)
    except ValueError:
        out.fail(line, "quantity", "is empty" if not raw else f"{raw[:40]!r} is not a whole number")
        return None
    if value < 0:
        out.fail(line, "quantity", f"{value} is negative: a count is 0 or more")
        return None
    if value > MAX_QUANTITY:
        out.fail(line, "quantity", f"{value} is more than {MAX_QUANTITY}")
        return None
    return value


def read_rows(records: Iterable[tuple[int, Mapping[str, str]]], mapping: Mapping[str, str], out: ReadSnapshot) -> ReadSnapshot:
    """Check each (line, cells) and map its bucket; a repeated (warehouse, merchant, SKU, bucket) is
    an error naming the line it repeats. Unknown codes are the services' to find."""
    seen: dict[tuple[str, str | None, str, str], int] = {}
    for line, cells in records:
        before = out.error_count
        wh, merchant, sku = _code(cells, "warehouse", line, out), _code(cells, "merchant", line, out), _code(cells, "sku", line, out)
        bucket = _code(cells, "bucket", line, out)
        qty = _quantity(str(cells.get("quantity", "")), line, out)
        state = mapping.get(bucket or "")
        if bucket and state is None:
            out.fail(line, "bucket", f"{bucket} has no mapping for this source: map it first (known: "
                                     f"{', '.join(sorted(mapping)) or 'none'})")
        if out.error_count > before or wh is None or sku is None or bucket is None or qty is None or state is None:
            continue
        key = (wh, merchant, sku, bucket)
        if key in seen:
            out.fail(line, "", f"repeats line {seen[key]} (same warehouse, merchant, SKU and bucket): send each once")
            continue
        seen[key] = line
        if len(out.rows) >= MAX_ROWS:
            out.fail(line, "", f"The snapshot has more than {MAX_ROWS} rows: split it by warehouse.")
            break
        out.rows.append(SnapshotRow(line, wh, merchant, sku, bucket, state, qty))
    return out


def parse_csv(data: bytes, mapping: Mapping[str, str]) -> ReadSnapshot:
    """Read a snapshot CSV file (UTF-8, a BOM allowed, a header row naming the columns warehouse,
    merchant, sku, bucket, quantity) into its rows; every bad row by line number."""
    out = ReadSnapshot()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        out.fail(data.count(b"\n", 0, exc.start) + 1, "", f"is not UTF-8 text (byte 0x{data[exc.start]:02X}): save the "
                                                          "file as 'CSV UTF-8' and upload it again")
        return out
    if "\x00" in text:
        out.fail(text.count("\n", 0, text.index("\x00")) + 1, "", "holds a NUL character: the file is not a CSV file")
        return out
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 1
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        unknown = [h for h in header if h not in COLUMNS]
        missing = sorted(REQUIRED - set(header))
        if not header or unknown or missing or len(set(header)) != len(header):
            why = (f"unknown column {', '.join(map(repr, unknown))}" if unknown else
                   f"missing column {', '.join(missing)}" if missing else "a column appears twice")
            out.fail(1, "", f"The header has {why}: a snapshot has the columns {', '.join(COLUMNS)} (merchant may be "
                            "empty).")
            return out
        records = []
        line = 2
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                out.fail(start, "", f"has {len(cells)} cells; the header has {len(header)}")
                continue
            records.append((start, dict(zip(header, cells))))
    except csv.Error as exc:
        out.fail(line, "", f"cannot be read as CSV ({exc})")
        return out
    if not records and not out.errors:
        out.fail(2, "", "The file has a header but no rows.")
    return read_rows(records, mapping, out)


def classify(ledger_qty: int, snapshot_qty: int) -> str:
    """match when both count the same; over when the source counts more than the ledger; short when fewer."""
    return MATCH if snapshot_qty == ledger_qty else OVER if snapshot_qty > ledger_qty else SHORT


def likely_cause(ledger_qty: int, snapshot_qty: int, after_net: int, before_net: int) -> str:
    """Why a line differs, from the ledger's moves of its item around T: `after_net` the net change
    posted after T (a move posted late), `before_net` the net change in the hours before T (a move
    the source has not synced yet)."""
    if snapshot_qty == ledger_qty:
        return ""
    if after_net and snapshot_qty == ledger_qty + after_net:
        return "timing: moves posted in Dockhand after T explain it"
    if before_net and snapshot_qty == ledger_qty - before_net:
        return "timing: the source has not synced moves made just before T"
    return "unexplained by the ledger around T: count it"


@dataclass(frozen=True)
class Line:
    """One variance line: an item (warehouse, merchant, SKU, state) counted by both sides."""

    key: Key
    ledger_qty: int
    snapshot_qty: int

    @property
    def kind(self) -> str:
        return classify(self.ledger_qty, self.snapshot_qty)

    @property
    def difference(self) -> int:
        return self.snapshot_qty - self.ledger_qty


def compare(ledger: Mapping[Key, int], snapshot: Mapping[Key, int]) -> list[Line]:
    """Every item either side counts (zeros left out on both sides: nothing to say), sorted."""
    keys = {k for k, v in ledger.items() if v} | {k for k, v in snapshot.items() if v}
    return [Line(k, ledger.get(k, 0), snapshot.get(k, 0))
            for k in sorted(keys, key=lambda k: (k[0], k[1] or 0, k[2], k[3]))]


def zeroed_items(ledger: Mapping[Key, int], snapshot: Mapping[Key, int]) -> int:
    """How many items (warehouse, merchant, SKU) the ledger holds on hand that the snapshot counts zero of."""
    held = {k[:3] for k, v in ledger.items() if v > 0 and k[3] in ON_HAND}
    counted = {k[:3] for k, v in snapshot.items() if v > 0}
    return len(held - counted)


def guard_refuses(zeroed: int, held: int) -> bool:
    """True when a snapshot would zero out many items: at least ZERO_OUT_MIN_ITEMS and ZERO_OUT_SHARE of them."""
    return zeroed >= ZERO_OUT_MIN_ITEMS and Decimal(zeroed) >= ZERO_OUT_SHARE * held


@dataclass(frozen=True)
class RollForward:
    """Units on hand: opening (at the previous snapshot's T) + received - moved out = closing (at T)."""

    opening: int
    received: int
    moved_out: int
    closing: int

    @property
    def expected(self) -> int:
        return self.opening + self.received - self.moved_out

    @property
    def holds(self) -> bool:
        return self.expected == self.closing


def roll_forward(opening: int, moves: Iterable[tuple[str | None, str, int]], closing: int) -> RollForward:
    """The check from the ledger's moves between the two times: (from_state, to_state, count) each;
    into an on-hand state from outside it is received, out of one to outside is moved out."""
    received = moved_out = 0
    for from_state, to_state, n in moves:
        was, now = from_state in ON_HAND, to_state in ON_HAND
        if now and not was:
            received += n
        elif was and not now:
            moved_out += n
    return RollForward(opening, received, moved_out, closing)


def as_of(value: str) -> datetime:
    """A snapshot's time T from ISO 8601 text (a time without a zone is UTC); ValueError if unreadable."""
    text = (value or "").strip()
    if not text:
        raise ValueError("Give the snapshot's time (as of): e.g. 2026-12-01T06:00:00Z.")
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{text[:40]!r} is not a time: write e.g. 2026-12-01T06:00:00Z.") from exc
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
