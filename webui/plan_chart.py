"""The plan's chart as inline SVG: the hours before now as measured, the day ahead as planned.

Left of "now": the measured PV and SOC from the stored samples. Right of it: the stored plan's
forecast PV, expected consumption and expected SOC (15-minute slots, W = Wh x 4), and a band
per load with its planned runs. The scale, axes, tracks and legend are the history chart's
(webui/chart.py), so both read alike and follow the page's light or dark scheme.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

from markupsafe import Markup

from emsctl.model import FORECAST_SLOT_S
from emsctl.store.records import SampleRecord
from webui import chart
from webui.chart import BUCKET_S, PLOT_H, TOP, Scale, f

#: Hours of measurements before now, and hours of plan after it.
BEFORE_H = 6
AHEAD_H = 24
SLOT = timedelta(seconds=FORECAST_SLOT_S)
#: A slot's energy in Wh times this is its mean power in W.
WH_TO_W = 3600.0 / FORECAST_SLOT_S

LEGEND: tuple[chart.LegendItem, ...] = (
    ("ch-pv", "PV measured", False),
    ("ch-fc-pv", "PV forecast", False),
    ("ch-use", "consumption expected", True),
    ("ch-soc", "SOC measured", True),
    ("ch-plan-soc", "SOC expected", True),
    ("ch-band-plan", "planned run", False),
)


@dataclass(frozen=True, slots=True)
class PlanSlot:
    """One 15-minute slot of the plan, in mean watts."""

    at: datetime
    pv_w: float
    use_w: float
    soc_pct: float


@dataclass(frozen=True, slots=True)
class PlanRun:
    """A load's planned run."""

    load: str
    start: datetime
    until: datetime


def window(now: datetime) -> tuple[datetime, datetime]:
    """The chart's span: BEFORE_H hours before `now` to AHEAD_H hours after it."""
    return now - timedelta(hours=BEFORE_H), now + timedelta(hours=AHEAD_H)


def _measured(
    samples: Sequence[SampleRecord], start: datetime, now: datetime
) -> tuple[list[float | None], list[float | None], list[datetime]]:
    """The measured PV and SOC per 5-minute bucket from `start` to `now`, and the buckets'
    middles (the last one not after now)."""
    n = math.ceil((now - start).total_seconds() / BUCKET_S)
    past = [s for s in samples if start <= s.at <= now]
    pv = chart.buckets(past, "pv_w", start, n)
    soc = chart.buckets(past, "soc_pct", start, n)
    mids = [min(now, start + timedelta(seconds=(i + 0.5) * BUCKET_S)) for i in range(n)]
    return pv, soc, mids


def _ahead(slots: Sequence[PlanSlot], now: datetime, end: datetime) -> list[PlanSlot]:
    """The slots not over by `now` and starting before `end`."""
    return [s for s in slots if s.at + SLOT > now and s.at < end]


def _plan_lines(sc: Scale, slots: Sequence[PlanSlot], now: datetime) -> list[str]:
    """Forecast PV, expected consumption and SOC at the slots' middles (none left of now)."""
    xs = [sc.x(max(now, s.at + SLOT / 2)) for s in slots]
    return [
        chart.path("ch-fc-pv", chart.series(xs, [s.pv_w for s in slots], sc.y_w, 0), sc),
        chart.path("ch-use", chart.series(xs, [s.use_w for s in slots], sc.y_w, 0)),
        chart.path("ch-plan-soc", chart.series(xs, [s.soc_pct for s in slots], sc.y_pct, 0)),
    ]


def _now_line(sc: Scale, now: datetime) -> str:
    """A shade over the measured part and a line at now."""
    x = sc.x(now)
    return (
        f'<rect class="ch-past" x="{sc.x0}" y="{TOP}" width="{f(x - sc.x0)}" height="{PLOT_H}"/>'
        f'<line class="ch-now" x1="{f(x)}" x2="{f(x)}" y1="{TOP - 4}" y2="{TOP + PLOT_H}"/>'
        f'<text class="ch-label ch-now-label" x="{f(x + 3)}" y="{TOP + 8}">now</text>'
    )


def _bands(sc: Scale, loads: Sequence[str], runs: Sequence[PlanRun], tz: ZoneInfo) -> list[str]:
    out = []
    for i, load in enumerate(loads):
        out.append(chart.band_track(sc, i, load))
        label = escape(chart.band_label(load))
        for r in runs:
            if r.load != load or r.until <= sc.start or r.start >= sc.end:
                continue
            tip = (
                f"{label} planned {r.start.astimezone(tz):%H:%M} to {r.until.astimezone(tz):%H:%M}"
            )
            out.append(chart.band_rect(sc, i, "plan", r.start, r.until, tip))
    return out


def render(
    slots: Sequence[PlanSlot],
    runs: Sequence[PlanRun],
    samples: Sequence[SampleRecord],
    loads: Sequence[str],
    now: datetime,
    tz: ZoneInfo,
    *,
    interval_s: float = 60.0,
    width: int = chart.WIDE,
    ident: str = "plan",
    no_plan: str = "No plan",
) -> Markup:
    """The chart from BEFORE_H hours before `now` to AHEAD_H hours after, as an <svg>.

    Empty `slots` leave the right part empty but for `no_plan`; `width` and `ident` as in
    `chart.render`.
    """
    start, end = window(now)
    ahead = _ahead(slots, now, end)
    pv, soc, mids = _measured(samples, start, now)
    watts = [v for v in pv if v is not None] + [w for s in ahead for w in (s.pv_w, s.use_w)]
    fr = chart.frame(start, end, watts, width, loads)
    sc = fr.scale
    xs = [sc.x(t) for t in mids]
    out = [_now_line(sc, now), *chart.axes(fr, tz)]
    bridge = max(0, math.ceil(3 * interval_s / BUCKET_S) - 1)
    out.append(chart.path("ch-pv", chart.series(xs, pv, sc.y_w, bridge), sc))
    out += _plan_lines(sc, ahead, now)
    out.append(chart.path("ch-soc", chart.series(xs, soc, sc.y_pct, bridge)))
    if not ahead:
        out.append(chart.empty_note(sc, no_plan, sc.x(now)))
    out += _bands(sc, loads, runs, tz)
    tail, height = chart.legend_and_close(sc, LEGEND, len(loads))
    title = (
        f"Measured PV and SOC over the last {BEFORE_H} hours; forecast PV, expected "
        f"consumption and SOC and each load's planned runs for the next {AHEAD_H} hours"
    )
    return Markup(chart.svg_open(ident, width, height, title) + "".join(out) + tail)
