"""Input parsing for the label views: the printer form, print options, the remembered printer."""
from __future__ import annotations

from app.web import as_id, safe_next  # noqa: F401  - safe_next: one copy, re-exported for the labels views

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, IntegerField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange

from app.errors import ValidationFailed
from app.labels.domain import STOCKS
from app.labels.models import PRINTER_STOCKS

PRINTER_COOKIE = "dockhand_printer"
BROWSER_PREFIX = "browser:"
PRINTER_PREFIX = "p:"
SHEET_POSITIONS = 24


class PrinterForm(FlaskForm):
    """An admin's printer: where it stands, how to reach it, which stock it holds."""

    name = StringField("Name", validators=[DataRequired(message="Give the printer a name."), Length(max=80)])
    warehouse_id = SelectField("Warehouse", coerce=int, validate_choice=True)
    host = StringField("Host name or IP address", validators=[DataRequired(message="Enter the printer's address."),
                                                               Length(max=253)])
    port = IntegerField("Port", default=9100, validators=[NumberRange(1, 65535, message="Use a port from 1 to 65535.")])
    stock = SelectField("Label stock loaded", choices=[SelectChoice(s, STOCKS[s].title) for s in PRINTER_STOCKS])
    active = BooleanField("Active (workers can choose it)", default=True)
    idempotency_key = HiddenField()

    def first_error(self) -> str:
        """The first validation message, for the message bar."""
        for field in self:
            if field.errors:
                return f"{field.label.text}: {field.errors[0]}"
        return "Check the form."


@dataclass(frozen=True)
class Remembered:
    """What a handheld remembers: a network printer id, or a browser print size."""

    printer_id: int | None = None
    browser_stock: str = "4x6"


def parse_remembered(value: str | None) -> Remembered:
    """Read the `dockhand_printer` cookie; anything odd means "print from the browser, 4x6"."""
    value = (value or "").strip()
    if value.startswith(PRINTER_PREFIX) and (printer_id := as_id(value[len(PRINTER_PREFIX):])) is not None:
        return Remembered(printer_id=printer_id)
    if value.startswith(BROWSER_PREFIX) and value[len(BROWSER_PREFIX):] in STOCKS:
        return Remembered(browser_stock=value[len(BROWSER_PREFIX):])
    return Remembered()


def parse_choice(value: str | None) -> str:
    """Validate a printer choice from the picker; return the cookie value to store."""
    value = (value or "").strip()
    if value.startswith(PRINTER_PREFIX) and as_id(value[len(PRINTER_PREFIX):]) is not None:
        return value
    if value.startswith(BROWSER_PREFIX) and value[len(BROWSER_PREFIX):] in STOCKS:
        return value
    raise ValidationFailed("Choose a printer from the list.")


def parse_int(value: str | None, what: str, *, low: int = 1, high: int = 2**31 - 1) -> int:
    """A whole number in [low, high] or a clear refusal naming the field."""
    text = (value or "").strip()
    if not text.isdigit() or len(text) > 10 or not low <= int(text) <= high:
        raise ValidationFailed(f"{what} must be a number from {low} to {high}.")
    return int(text)


def parse_start(args: Mapping[str, str]) -> int:
    """The first free position on a partly used A4 sheet (1 = top left)."""
    if not args.get("start"):
        return 1
    return parse_int(args.get("start"), "The sheet position", high=SHEET_POSITIONS)


def path_of(url: str | None) -> str | None:
    """The path and query of an absolute URL (htmx's HX-Current-URL), if it is one of ours."""
    if not url:
        return None
    parts = urlsplit(url)
    return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))
