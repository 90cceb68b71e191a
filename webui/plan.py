"""The plan page: the day-ahead plan the daemon stored (rule 19), as a chart and in words.

The daemon stores its latest plan under `emsctl.plan_worker.PLAN_KEY` (the format of
`plan_json`); this page reads it with the measured samples of the last hours, and says why
there is no plan, or that the one stored is stale, as far as the UI can know it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from emsctl.plan_worker import PLAN_KEY
from webui import chart, plan_chart
from webui import format as fmt
from webui.context import UiContext, ui
from webui.plan_chart import WH_TO_W, PlanRun, PlanSlot

bp = Blueprint("plan", __name__)

OFF = "No plan: the planner is off in the config (planner.enabled); the rules act alone."
NOT_YET = (
    "No plan yet: the planner makes one when the forecast gives the day's shape and the "
    "battery's SOC is known. Until then the rules act alone."
)
UNREADABLE = "The stored plan cannot be read; the rules act alone until the next one is stored."


@dataclass(frozen=True, slots=True)
class StoredPlan:
    """The plan as stored by the daemon, read."""

    made_at: datetime
    slots: list[PlanSlot]
    runs: list[PlanRun]
    spare_wh: list[float]


@dataclass(frozen=True, slots=True)
class RunLine:
    """A planned run as the page lists it."""

    load: str
    label: str
    when: str
    spare: str
    now: bool


@dataclass(frozen=True, slots=True)
class PlanView:
    """What the page shows: the chart, and either the plan's age and runs or why none."""

    chart: Markup
    made: str | None
    stale: str | None
    missing: str | None
    runs: list[RunLine]


def parse(text: str) -> StoredPlan:
    """The stored JSON read (KeyError, TypeError or ValueError when it is not a plan)."""
    data: dict[str, Any] = json.loads(text)
    slots = [
        PlanSlot(
            at=datetime.fromisoformat(s["at"]),
            pv_w=float(s["pv_wh"]) * WH_TO_W,
            use_w=float(s["load_wh"]) * WH_TO_W,
            soc_pct=float(s["soc_pct"]),
        )
        for s in data["slots"]
    ]
    runs = [
        PlanRun(
            load=str(r["load"]),
            start=datetime.fromisoformat(r["from"]),
            until=datetime.fromisoformat(r["until"]),
        )
        for r in data["runs"]
    ]
    spare = [float(r["spare_wh"]) for r in data["runs"]]
    return StoredPlan(datetime.fromisoformat(data["made_at"]), slots, runs, spare)


def load_plan(ctx: UiContext) -> tuple[StoredPlan | None, str | None]:
    """The stored plan, or None and the sentence saying why there is none to show."""
    if not ctx.config.planner.enabled:
        return None, OFF
    text = ctx.store.kv_get(PLAN_KEY)
    if text is None:
        return None, NOT_YET
    try:
        return parse(text), None
    except (KeyError, TypeError, ValueError):
        return None, UNREADABLE


def _run_line(run: PlanRun, spare_wh: float, now: datetime, ctx: UiContext) -> RunLine:
    end = run.until.astimezone(ctx.tz)
    return RunLine(
        load=run.load,
        label=fmt.LOAD_LABELS.get(run.load, run.load),
        when=f"{fmt.clock_time(run.start, now, ctx.tz)}\N{EN DASH}{end:%H:%M}",
        spare=f"{spare_wh / 1000:.1f} kWh spare",
        now=run.start <= now < run.until,
    )


def _age(seconds: float) -> str:
    """A plan's age in whole minutes: it is made every quarter hour, seconds do not matter."""
    return "just now" if seconds < 60 else f"{fmt.duration(seconds // 60 * 60)} ago"


def _stale(plan: StoredPlan, now: datetime, ctx: UiContext) -> str | None:
    limit = ctx.config.planner.stale_s
    age = (now - plan.made_at).total_seconds()
    if age <= limit:
        return None
    return (
        f"Stale: this plan was made {_age(age)}, more than planner.stale_s "
        f"({fmt.duration(limit)}); the rules act alone until a new plan is made."
    )


def _drawings(
    plan: StoredPlan | None, missing: str | None, now: datetime, ctx: UiContext
) -> Markup:
    start, _ = plan_chart.window(now)
    samples = ctx.store.samples(start, now)
    loads = [x.value for x in ctx.loads]
    no_plan = {OFF: "Planner off", NOT_YET: "No plan yet"}.get(missing or "", "No plan")
    return chart.wide_and_narrow(
        lambda width, name: plan_chart.render(
            plan.slots if plan else [],
            plan.runs if plan else [],
            samples,
            loads,
            now,
            ctx.tz,
            interval_s=ctx.config.control.interval_s,
            width=width,
            ident=f"plan-{name}",
            no_plan=no_plan,
        )
    )


def build_view(ctx: UiContext, now: datetime) -> PlanView:
    plan, missing = load_plan(ctx)
    svg = _drawings(plan, missing, now, ctx)
    if plan is None:
        return PlanView(chart=svg, made=None, stale=None, missing=missing, runs=[])
    age = max(0.0, (now - plan.made_at).total_seconds())
    made = f"Made {fmt.clock_time(plan.made_at, now, ctx.tz)} ({_age(age)})"
    _, end = plan_chart.window(now)
    runs = [
        _run_line(r, spare, now, ctx)
        for r, spare in zip(plan.runs, plan.spare_wh, strict=True)
        if r.until > now and r.start < end
    ]
    return PlanView(chart=svg, made=made, stale=_stale(plan, now, ctx), missing=None, runs=runs)


@bp.get("/plan")
def index() -> ResponseReturnValue:
    ctx = ui()
    return render_template("plan.html", view=build_view(ctx, ctx.controller.now()))
