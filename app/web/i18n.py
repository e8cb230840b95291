"""The languages Dockhand speaks (Flask-Babel): which one a request is answered in, and the
filters that write numbers, money, dates and ages the way that language does.

A signed-in person's profile choice (`users.locale`, set from the header) wins; otherwise the
browser's Accept-Language picks among the languages we have; otherwise English. The catalogues are
`translations/<lang>/LC_MESSAGES/messages.po`, compiled to `.mo` by `make assets`
(`pybabel compile`); `tests/unit/test_catalogue.py` fails when a handheld template has text outside
them."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from collections.abc import Iterator, Mapping
from typing import Any

from flask import Flask, request
from flask_babel import (Babel, format_date, format_datetime, format_decimal, format_percent, get_locale, gettext,
                         lazy_gettext, lazy_pgettext)
from flask_login import current_user

from app.anomalies.domain import CUSTOMER_NORM, EMPTY_BOX, KIND_LABELS, MISSING_COMPONENT, RETURNED_BEFORE, SWAP
from app.errors import DomainError
from app.exceptions.domain import BOX_PROBLEMS
from app.exceptions.models import EXCEPTION_LABELS
from app.exceptions.services import RESOLUTION_LABELS
from app.ledger.domain import STATE_LABELS
from app.refunds.domain import STATUS_LABELS
from app.words import Said

# Each language we have, named in itself (how a picker shows it).
LANGUAGES = {"en": "English", "es": "Español"}
DEFAULT = "en"
# The dispositions the rules decide (app.disposition.domain).
DISPOSITION_NAMES = {"restock": lazy_gettext("restock"), "refurbish": lazy_gettext("refurbish"),
                     "quarantine": lazy_gettext("quarantine"), "return_to_vendor": lazy_gettext("return to vendor"),
                     "liquidate": lazy_gettext("liquidate"), "dispose": lazy_gettext("dispose")}
# The roles as the header names them.
ROLE_NAMES = {"worker": lazy_gettext("worker"), "supervisor": lazy_gettext("supervisor"),
              "admin": lazy_gettext("admin"), "partner": lazy_gettext("partner")}

# What a return, a carrier's tracking and a parcel are at, and what a customer asked for, as the desk names them
# (a parcel and a return are of different genders in Spanish: said in their context).
RMA_STATUS_NAMES = {"authorized": lazy_pgettext("return", "authorised"), "in_transit": lazy_pgettext("return", "in transit"),
                    "receiving": lazy_pgettext("return", "receiving"), "closed": lazy_pgettext("return", "closed"),
                    "cancelled": lazy_pgettext("return", "cancelled")}
CARRIER_STATUS_NAMES = {"label_created": lazy_gettext("label created"), "in_transit": lazy_gettext("in transit"),
                        "out_for_delivery": lazy_gettext("out for delivery"), "delivered": lazy_gettext("delivered"),
                        "exception": lazy_gettext("carrier exception")}
PARCEL_STATUS_NAMES = {"open": lazy_pgettext("parcel", "open"), "closed": lazy_pgettext("parcel", "closed")}
ASKED_NAMES = {"refund": lazy_gettext("refund"), "store_credit": lazy_gettext("store credit"),
               "exchange": lazy_gettext("exchange")}

# A unit's packaging, its serial's check and its refund's action, as the handheld and the desk name them.
PACKAGING_NAMES = {"sealed": lazy_gettext("sealed"), "opened": lazy_gettext("opened"), "damaged": lazy_gettext("damaged"),
                   "missing": lazy_gettext("missing")}
SERIAL_NAMES = {"match": lazy_gettext("matches"), "mismatch": lazy_gettext("serial mismatch"),
                "missing": lazy_gettext("missing"), "not_tracked": lazy_gettext("not tracked")}
REFUND_ACTION_NAMES = {"full": lazy_gettext("full"), "less_restocking_fee": lazy_gettext("less restocking fee"),
                       "less_damage": lazy_gettext("less damage"), "none": lazy_gettext("none"), "hold": lazy_gettext("hold")}

babel = Babel()


class Translated(Mapping[str, str]):
    """Codes and their English labels (kept where the rule is, marked with `app.words.N_`),
    read in the request's language: `state_names["quarantine"]`, `.get(code, default)`."""

    def __init__(self, english: Mapping[str, str]) -> None:
        self._english = english

    def __getitem__(self, code: str) -> str:
        return str(gettext(self._english[code]))

    def __iter__(self) -> Iterator[str]:
        return iter(self._english)

    def __len__(self) -> int:
        return len(self._english)


STATE_NAMES = Translated(STATE_LABELS)
EXCEPTION_NAMES = Translated(EXCEPTION_LABELS)
BOX_PROBLEM_NAMES = Translated(BOX_PROBLEMS)
REFUND_NAMES = Translated(STATUS_LABELS)
RESOLUTION_NAMES = Translated(RESOLUTION_LABELS)
FLAG_NAMES = Translated(KIND_LABELS)


def select_locale() -> str:
    """The person's profile choice, else the browser's best match, else English. The integration
    API (its programs read its messages, and its reference is English) always answers in English."""
    try:
        if request.path.startswith("/api/"):  # app.web.API_PREFIX (app.web imports this module)
            return DEFAULT
        chosen = getattr(current_user, "locale", None) if current_user.is_authenticated else None
    except RuntimeError:  # outside a request (the command line): English
        return DEFAULT
    if chosen in LANGUAGES:
        return str(chosen)
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT


def money(value: Any) -> str:
    """An amount with two decimals, grouped the language's way: 1,234.50 / 1.234,50."""
    if value is None:
        return ""
    return str(format_decimal(Decimal(value), format="#,##0.00"))


def number(value: Any) -> str:
    """A count or figure, grouped the language's way."""
    return "" if value is None else str(format_decimal(value))


def when(value: datetime | None) -> str:
    """A moment, short, in the language's order (UTC, as stored)."""
    return "" if value is None else str(format_datetime(value, "short"))


def day(value: date | None) -> str:
    """A calendar day, in the language's order."""
    return "" if value is None else str(format_date(value, "medium"))


def age(seconds: int) -> str:
    """How long something has waited: minutes under an hour, hours under two days, then days."""
    if seconds < 3600:
        return gettext("%(num)s min", num=max(seconds // 60, 0))
    if seconds < 86400 * 2:
        return gettext("%(num)s h", num=seconds // 3600)
    return gettext("%(num)s d", num=seconds // 86400)


def said(value: Any) -> Any:
    """Words a rule or a query built (app.words.Said) in the request's language; anything else as it is."""
    return value.say(gettext, money) if isinstance(value, Said) else value


def spoken(exc: DomainError) -> str:
    """A refusal in the request's language: its English template translated, then its figures put in,
    each a marked label ("pending approval", "quarantine") said in the language too; a figure the
    catalogue lacks (an LPN, a name) and a message it lacks stay as they are."""
    if not exc.figures:
        return str(gettext(exc.template))
    figures = {k: gettext(v) if isinstance(v, str) and v else v for k, v in exc.figures.items()}
    return str(gettext(exc.template, **figures))


def flag_explanation(kind: str, details: Mapping[str, Any] | None, stored: str) -> str:
    """An anomaly flag's explanation in the request's language. The flag keeps it in English
    (app.anomalies.domain writes it); another language says it again from the facts the flag keeps
    (`details`), and a flag whose facts do not say enough keeps its English."""
    if str(get_locale() or DEFAULT) == DEFAULT or not details:
        return stored
    try:
        return _flag_words(kind, details) or stored
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return stored


def _flag_words(kind: str, d: Mapping[str, Any]) -> str | None:
    if kind == RETURNED_BEFORE:
        figures = {"serial": d["serial"], "lpn": d["prior_lpn"], "state": STATE_NAMES.get(d["prior_state"], d["prior_state"]),
                   "day": day(datetime.fromisoformat(d["prior_received_at"])),
                   "where": (gettext("on %(rma)s", rma=d["prior_rma"]) if d.get("prior_rma")
                             else gettext("in a parcel of no return"))}
        if d.get("resold"):
            return gettext("serial %(serial)s was returned before, %(where)s, on %(day)s (unit %(lpn)s, now %(state)s): "
                           "it was resold on this return's order since, so the refund is not held for it", **figures)
        return gettext("serial %(serial)s was returned before, %(where)s, on %(day)s (unit %(lpn)s, now %(state)s): "
                       "a second refund for the same item, check it", **figures)
    if kind == SWAP:
        if d.get("same_customer"):
            return gettext("serial %(serial)s was shipped on order %(order)s, to this same customer, not on this "
                           "return's order: the item sent back may not be the one bought", serial=d["serial"], order=d["order"])
        return gettext("serial %(serial)s was shipped on order %(order)s, to another customer, not on this return's "
                       "order: the item sent back may not be the one bought", serial=d["serial"], order=d["order"])
    if kind == EMPTY_BOX:
        if d.get("note"):
            return gettext("parcel %(label)s was reported empty (\u201c%(note)s\u201d): every refund of this return "
                           "waits for a supervisor", label=d["label"], note=d["note"])
        return gettext("parcel %(label)s was reported empty: every refund of this return waits for a supervisor",
                       label=d["label"])
    if kind == CUSTOMER_NORM:
        return _customer_words(d)
    if kind == MISSING_COMPONENT:
        names = [m["component"] for m in d["missing"]]
        said = names[0] if len(names) == 1 else gettext("%(some)s and %(last)s", some=", ".join(names[:-1]), last=names[-1])
        return gettext("%(components)s missing from kit %(kit)s (%(off)s off the refund)", components=said, kit=d["kit"],
                       off=format_percent(Decimal(d["pct"])))
    return None


def _customer_words(d: Mapping[str, Any]) -> str | None:
    """The customer_norm rule's reasons (app.anomalies.domain.customer_norm) said again from its figures."""
    returns, orders, factor = int(d["returns"]), int(d["orders"]), Decimal(d["factor"])
    value, merchant_rate, merchant_value = Decimal(d["value"]), Decimal(d["merchant_rate"]), Decimal(d["merchant_value"])
    rate = Decimal(returns) / Decimal(orders) if orders else Decimal(1)
    reasons = []
    if merchant_rate > 0 and rate > factor * merchant_rate:
        reasons.append(gettext("%(returns)s returns on %(orders)s orders (%(rate)s), %(times)sx the merchant's %(norm)s",
                               returns=returns, orders=orders, rate=format_percent(rate), norm=format_percent(merchant_rate),
                               times=format_decimal(rate / merchant_rate, format="0.0")))
    if merchant_value > 0 and value > factor * merchant_value:
        reasons.append(gettext("%(value)s asked back, %(times)sx the merchant's %(norm)s per returning customer",
                               value=money(value), norm=money(merchant_value),
                               times=format_decimal(value / merchant_value, format="0.0")))
    if not reasons:
        return None
    return gettext("this customer is far above the merchant's norm (more than %(factor)sx): %(reasons)s",
                   factor=format_decimal(factor), reasons="; ".join(reasons))


def register_i18n(app: Flask) -> None:
    """Attach Flask-Babel with our selector and catalogues, and the language's filters."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "UTC")
    babel.init_app(app, locale_selector=select_locale,
                   default_translation_directories=str(app.root_path + "/../translations"))
    app.add_template_filter(money, "money")
    app.add_template_filter(number, "number")
    app.add_template_filter(when, "when")
    app.add_template_filter(day, "day")
    app.add_template_filter(said, "said")
    app.add_template_global(lambda: str(get_locale() or DEFAULT), "current_language")
    app.add_template_global(LANGUAGES, "languages")
    app.add_template_global(ROLE_NAMES, "role_names")
    # A plain translator for the words pure rules build (`tr(message, **figures)`, e.g.
    # app.inspection.domain.Priority.words): gettext, giving str rather than the templates' Markup.
    app.add_template_global(gettext, "tr")
    app.add_template_global(STATE_NAMES, "state_names")
    app.add_template_global(RMA_STATUS_NAMES, "rma_status_names")
    app.add_template_global(PACKAGING_NAMES, "packaging_names")
    app.add_template_global(SERIAL_NAMES, "serial_names")
    app.add_template_global(REFUND_ACTION_NAMES, "refund_action_names")
    app.add_template_global(CARRIER_STATUS_NAMES, "carrier_status_names")
    app.add_template_global(PARCEL_STATUS_NAMES, "parcel_status_names")
    app.add_template_global(ASKED_NAMES, "asked_names")
    app.add_template_global(EXCEPTION_NAMES, "exception_names")
    app.add_template_global(BOX_PROBLEM_NAMES, "box_problem_names")
    app.add_template_global(DISPOSITION_NAMES, "disposition_names")
    app.add_template_global(FLAG_NAMES, "flag_names")
    app.add_template_global(flag_explanation, "flag_explanation")
