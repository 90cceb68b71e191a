"""The history page: the 24-hour chart, then transitions and overrides, filtered and paged."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from emsctl.store.records import HistoryRow
from webui import chart
from webui import format as fmt
from webui.context import UiContext, ui
from webui.query import PAGE_SIZE, BadQuery, history_query

bp = Blueprint("history", __name__)

CHART_HOURS = 24


@dataclass(frozen=True, slots=True)
class Line:
    """One history row as the table shows it."""

    when: str
    load: str
    what: str
    colour: str
    reasons: str
    kind: str


def _local_reason(reason: str, ctx: UiContext) -> str:
    """The store writes an override's end as "until <UTC ISO time>"; show it in local time."""
    if reason.startswith("until ") and reason != "until released":
        try:
            return "until " + fmt.timestamp(
                datetime.fromisoformat(reason[6:]), ctx.tz, seconds=False
            )
        except ValueError:
            return reason
    return reason


def describe(row: HistoryRow, ctx: UiContext) -> Line:
    when = fmt.timestamp(row.at, ctx.tz, seconds=False)
    load = fmt.LOAD_LABELS.get(row.load, row.load)
    reasons = "; ".join(_local_reason(r, ctx) for r in row.reasons)
    if row.kind == "transition":
        src = fmt.STATE_LABELS.get(row.source or "", row.source or "?")
        dst = fmt.STATE_LABELS.get(row.target or "", row.target or "?")
        what = f"{src} → {dst}"
        if row.event:
            what += f" ({row.event.replace('_', ' ')})"
        colour = fmt.state_colour(row.target or "")
    else:
        detected = row.event == "detected" or row.target == "manual"
        mode = "switched by hand" if detected else fmt.MODE_LABELS.get(row.target or "", "?")
        by = f" {fmt.by_whom(row.by)}" if row.by else ""
        if row.kind == "override_cleared":
            what = f"{mode} ended{by}"
        elif row.kind == "override_expired":
            what = f"{mode} expired"
        elif detected:
            what = f"{mode} (seen at the device{', ' + row.by if row.by else ''})"
        else:
            what = f"{mode}{by}"
        colour = "purple" if detected else "blue"
        if row.kind != "override":
            colour = "grey"
    return Line(when=when, load=load, what=what, colour=colour, reasons=reasons, kind=row.kind)


_chart_lock = threading.Lock()


def _chart(ctx: UiContext, now: datetime) -> Markup:
    """The chart, drawn at most once per control interval: samples arrive once per tick, and
    paging through the history should not redraw a day of them each time."""
    interval = max(1.0, ctx.config.control.interval_s)
    slot = now.timestamp() // interval
    with _chart_lock:
        cache: dict[str, tuple[float, Markup]] = current_app.extensions.setdefault("ems_chart", {})
        hit = cache.get("svg")
        if hit is not None and hit[0] == slot:
            return hit[1]
    samples = ctx.store.samples(now - timedelta(hours=CHART_HOURS), now)
    loads = [x.value for x in ctx.loads]
    svg = chart.wide_and_narrow(
        lambda width, name: chart.render(
            samples,
            loads,
            now,
            ctx.tz,
            hours=CHART_HOURS,
            interval_s=ctx.config.control.interval_s,
            width=width,
            ident=f"chart-{name}",
        )
    )
    with _chart_lock:
        cache["svg"] = (slot, svg)
    return svg


@bp.get("/history")
def index() -> ResponseReturnValue:
    ctx = ui()
    now = ctx.controller.now()
    svg = _chart(ctx, now)
    args = {k: v for k, v in request.args.items() if k in ("load", "since", "until", "offset")}
    try:
        q = history_query(args, ctx.tz, ctx.loads, default_limit=PAGE_SIZE)
    except BadQuery as exc:
        return render_template(
            "history.html", chart=svg, lines=[], error=str(exc), args=args, loads=ctx.loads
        ), 400
    rows = ctx.store.history(
        load=q.load, since=q.since, until=q.until, limit=q.limit + 1, offset=q.offset
    )
    lines = [describe(r, ctx) for r in rows[: q.limit]]
    newer = None if q.offset == 0 else max(0, q.offset - q.limit)
    older = q.offset + q.limit if len(rows) > q.limit else None
    return render_template(
        "history.html",
        chart=svg,
        lines=lines,
        args=args,
        loads=ctx.loads,
        newer=newer,
        older=older,
        first=q.offset + 1,
        error=None,
    )
