"""The returns dashboard (/reports): thin views. Each parses the filters (a bad value: 400 with
what is allowed), calls the read functions in queries.py, and renders the page, or with
`?export=<table>` that table as CSV (app.web.exports: UTF-8 with a BOM, a header row, formula
cells neutralised)."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from decimal import Decimal
from typing import Any

from flask import Blueprint, current_app, request, url_for
from werkzeug.wrappers import Response

from app.db import db, utcnow
from app.errors import NotPermitted
from app.ledger.domain import STATE_LABELS
from app.reports import charts, domain
from app.reports import queries as q
from app.reports.domain import BadFilter, Filters
from app.settings.queries import setting
from app.web import actor, render, require
from app.web.exports import csv_download

bp = Blueprint("reports", __name__, url_prefix="/reports")

Table = tuple[Sequence[str], Iterable[Sequence[object]]]


def _filters() -> tuple[Filters, q.Choices]:
    choices = q.filter_choices(db.session, actor())
    return domain.parse_filters(request.args, utcnow().date(), choices.codes()), choices


def _rates() -> dict[str, Decimal]:
    return domain.recovery_rates({name: setting(db.session, name, current_app.config)
                                  for name in domain.RATE_SETTINGS.values()})


def _no_money() -> None:
    if actor().is_partner:
        raise NotPermitted("Partners see their warehouses' operational figures, not money.")


def _layout() -> str:
    return "admin/_layout.html" if actor().role == "admin" else "desk/_layout.html"


def _page(template: str, f: Filters, choices: q.Choices | None, tables: dict[str, Callable[[], Table]],
          **context: Any) -> Response:
    """The page, or the table named by `?export=` as a CSV download."""
    wanted = request.args.get("export")
    if wanted is not None:
        if wanted not in tables:
            raise BadFilter(f"'export' must be one of {', '.join(tables)}, not '{wanted[:40]}'.")
        header, rows = tables[wanted]()
        return csv_download(f"dockhand-{request.endpoint.split('.')[-1]}-{wanted}-{f.start}-{f.end}.csv", header, rows)
    return render(template, f=f, choices=choices, layout=_layout(), exports=list(tables), money=not actor().is_partner,
                  dimension_labels=dict(zip(domain.DIMENSIONS, ("Warehouse", "Merchant", "Channel", "Category", "Carrier"))),
                  **context)


def _links(row: q.DrillRow) -> dict[str, str | None]:
    """Where a drill-down row opens for this role: the desk's unit case, return page and exception
    case, else the handheld's unit screen (None: nowhere this role may go)."""
    who = actor()
    views = current_app.view_functions
    unit = None
    if row.unit_id and who.can("view_desk"):
        unit = url_for("desk.unit_case", unit_id=row.unit_id)
    elif row.unit_id and who.can("inspect") and "receiving.unit_page" in views:
        unit = url_for("receiving.unit_page", unit_id=row.unit_id)
    rma = url_for("desk.return_page", rma_id=row.rma_id) if row.rma_id and who.can("look_up") and "desk.return_page" in views else None
    exc = url_for("desk.exception_case", exception_id=row.exception_id) if row.exception_id and who.can("view_desk") else None
    return {"unit": unit, "rma": rma, "exception": exc}


# --------------------------------------------------------------------------- overview

@bp.get("")
@require("view_reports")
def overview() -> Response:
    """The KPI tiles with their trend, formula and date basis, and units received per day."""
    f, choices = _filters()
    figures = q.kpis(db.session, actor(), f, _rates())
    daily = q.daily_received(db.session, actor(), f)
    chart = charts.bar_chart("daily", "Units received per day",
                             f"Units received each day from {f.start} to {f.end}: {sum(n for _, n in daily)} in all.",
                             [(d.strftime("%d %b"), n) for d, n in daily], label_every=max(1, len(daily) // 10))
    tables = {
        "kpis": lambda: (["metric", "value", "unit", "previous period", "change", "rows", "formula", "date basis"],
                         [[x.metric.label, x.value, x.metric.unit, x.previous, x.change, x.count, x.metric.formula,
                           x.metric.basis] for x in figures]),
        "daily": lambda: (["day", "units received"], [[d.isoformat(), n] for d, n in daily]),
    }
    return _page("reports/overview.html", f, choices, tables, figures=figures, chart=chart)


@bp.get("/drill")
@require("view_reports")
def drill() -> Response:
    """The units, refunds or exceptions behind one tile's figure."""
    f, choices = _filters()
    metric = domain.METRIC_KEYS.get(request.args.get("metric", ""))
    if metric is None:
        raise BadFilter(f"'metric' must be one of {', '.join(domain.METRIC_KEYS)}.")
    if metric.money:
        _no_money()
    period = request.args.get("period", "current")
    if period not in ("current", "previous"):
        raise BadFilter("'period' must be current or previous.")
    result = q.drill(db.session, actor(), f, metric, period == "previous", _rates())
    money = not actor().is_partner
    tables = {"rows": lambda: (
        ["lpn", "rma", "sku", "state", "at", metric.unit or "figure"] + (["value"] if money else []) + (["exception"] if metric.drill == "exceptions" else []),
        [[r.lpn, r.rma_number, r.sku, r.state, r.at, r.figure] + ([r.value] if money else [])
         + ([r.label] if metric.drill == "exceptions" else []) for r in result.rows])}
    return _page("reports/drill.html", f, None, tables, drilled=result, links=_links, state_labels=STATE_LABELS,
                 period=period)


# --------------------------------------------------------------------------- reasons

@bp.get("/reasons")
@require("view_reports")
def reasons() -> Response:
    """The Pareto of returned units by a dimension, return rate, avoidable share, spikes, and the
    stated reason against what inspection found."""
    f, choices = _filters()
    by = domain.parse_dimension(request.args.get("by"))
    data = q.reasons(db.session, actor(), f, by)
    top = data.rows[:15]
    chart = charts.bar_chart("pareto", f"Returned units by {domain.REASON_DIMENSIONS[by].lower()}",
                             f"Pareto of {data.total} returned units by {domain.REASON_DIMENSIONS[by].lower()}, largest first; "
                             "the line is the running share.", [(r.key, r.units) for r in top], [r.cumulative for r in top])
    tables = {
        "pareto": lambda: ([by, "name", "units returned", "share %", "cumulative %", "units shipped", "return rate %",
                            "avoidable units", "avoidable %", "top reason"],
                           [[r.key, r.label, r.units, r.share, r.cumulative, r.shipped, r.return_rate, r.avoidable,
                             r.avoidable_share, data.top_reason.get(r.key, ("", 0))[0]] for r in data.rows]),
        "spikes": lambda: ([by, "reason", "units this week", "weekly baseline"],
                           [[s.key, s.reason, s.this_week, s.baseline] for s in data.spikes]),
        "stated": lambda: (["stated reason", *domain.FINDINGS],
                           [[reason, *[found.get(x, 0) for x in domain.FINDINGS]] for reason, found in sorted(data.stated_found.items())]),
        "nofault": lambda: (["sku", "channel", "stated reason", "units with no fault found"], data.no_fault),
    }
    return _page("reports/reasons.html", f, choices, tables, data=data, by=by, chart=chart,
                 dimensions=domain.REASON_DIMENSIONS, findings=domain.FINDINGS)


# --------------------------------------------------------------------------- recovery

@bp.get("/recovery")
@require("view_reports")
def recovery() -> Response:
    """Recovered value by disposition, refund leakage and value waiting: staff only (money)."""
    _no_money()
    f, choices = _filters()
    data = q.recovery(db.session, actor(), f, _rates())
    tables = {"dispositions": lambda: (["disposition", "units", "value paid", "rate", "recovered"],
                                       [[domain.RECOVERY_LABELS[r.state], r.units, r.paid, r.rate, r.recovered] for r in data.rows])}
    chart = charts.bar_chart("recovered", "Recovered value by disposition",
                             "Recovered value of the units decided in the period, by disposition.",
                             [(domain.RECOVERY_LABELS[r.state], r.recovered) for r in data.rows])
    return _page("reports/recovery.html", f, choices, tables, data=data, chart=chart, labels=domain.RECOVERY_LABELS)


# --------------------------------------------------------------------------- flow

@bp.get("/flow")
@require("view_reports")
def flow() -> Response:
    """Backlog by stage and age, throughput by hour, units per worker-hour, the inbound forecast."""
    f, choices = _filters()
    backlog = q.backlog(db.session, actor(), f)
    hours = q.throughput_by_hour(db.session, actor(), f)
    people = q.workers(db.session, actor(), f)
    rate = domain.ratio(sum(w.units for w in people), sum(w.hours for w in people))
    today = utcnow().date()
    outlook = domain.forecast(q.inbound(db.session, actor(), f), today, rate)
    chart = charts.bar_chart("hours", "Units received by hour of day (UTC)",
                             f"Units received in each hour of the day from {f.start} to {f.end}.",
                             [(f"{h:02d}", n) for h, n in enumerate(hours)], label_every=2)
    stages = dict(domain.STAGES)
    tables = {
        "backlog": lambda: (["stage", *domain.AGE_BUCKETS], [[stages[s], *b.values()] for s, b in backlog.items()]),
        "hours": lambda: (["hour (UTC)", "units received"], list(enumerate(hours))),
        "workers": _workers_table(people),
        "forecast": lambda: (["day", "units expected", "worker-hours needed"], [[d.day, d.units, d.hours] for d in outlook]),
    }
    return _page("reports/flow.html", f, choices, tables, backlog=backlog, stages=stages, chart=chart, people=people,
                 rate=rate, outlook=outlook, buckets=domain.AGE_BUCKETS)


def _workers_table(people: list[q.WorkerRow]) -> Callable[[], Table]:
    return lambda: (["worker", "units received", "worker-hours", "units per worker-hour"],
                    [[w.name, w.units, w.hours, w.per_hour] for w in people])


@bp.get("/workers")
@require("own_figures")
def workers() -> Response:
    """Units per worker-hour: everyone's for staff and partners, a worker's own for the worker."""
    choices = None if actor().role == "worker" else q.filter_choices(db.session, actor())
    f = domain.parse_filters(request.args, utcnow().date(), choices.codes() if choices else {})
    people = q.workers(db.session, actor(), f)
    return _page("reports/workers.html", f, choices, {"workers": _workers_table(people)}, people=people)


