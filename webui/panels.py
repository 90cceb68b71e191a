"""What the status page shows, built from the controller's last report and the stored overrides.

Templates only format these plain objects; every decision about staleness, colours and what a
card says lives here, where the unit tests can reach it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from emsctl.model import LoadId, Mode, Override, State
from emsctl.status import LoadView, StatusReport
from webui import format as fmt
from webui.car_panel import CarPanel, panel
from webui.context import UiContext

log = logging.getLogger(__name__)

#: The power of a load whose device could not be read this tick.
DASH_UNREAD = "not read"


@dataclass(frozen=True, slots=True)
class Figure:
    """One of the house's current figures."""

    key: str
    label: str
    value: str
    #: "12 s old"; None when the value has no sample age.
    age: str | None = None
    #: The value exists but is older than max_age_s: the engine treats it as missing.
    stale: bool = False
    #: No value at all (not configured, or never seen).
    missing: bool = False
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Card:
    """One load's card."""

    load: str
    label: str
    state: str
    state_label: str
    colour: str
    since: str
    output_on: bool
    power: str
    reasons: tuple[str, ...]
    #: `power` is a measurement (not "no power meter").
    power_measured: bool
    #: The mode the owner chose (from the store), for the pressed button.
    mode: str
    #: "Force on until 18:32 (in 4 h) · by anna", or None under Auto.
    override: str | None = None
    #: The stored override is not yet in the controller's report.
    pending: str | None = None
    blocked_by: str | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None
    #: A wallbox's charging by target (webui.car_panel.CarPanel), None for other loads.
    car: CarPanel | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """Everything the live part of the status page shows."""

    now: datetime
    has_report: bool
    updated: str = ""
    #: The last report is older than a few intervals: the controller may be stuck.
    report_late: bool = False
    dry_run: bool = False
    figures: list[Figure] = field(default_factory=list)
    cards: list[Card] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _effective(mode: Mode | None) -> Mode:
    return Mode.AUTO if mode is None else mode


def stored_overrides(ctx: UiContext, now: datetime) -> Mapping[LoadId, Override] | None:
    """The active overrides as stored, or None when the store cannot answer right now."""
    try:
        return ctx.store.active_overrides(now)
    except Exception:
        log.exception("cannot read the active overrides from the store")
        return None


def build_page(
    ctx: UiContext,
    report: StatusReport | None,
    now: datetime,
    overrides: Mapping[LoadId, Override] | None,
) -> Page:
    tz = ctx.tz
    if report is None:
        cards = [_card_without_report(ctx, load, now, overrides) for load in ctx.loads]
        return Page(now=now, has_report=False, cards=cards)
    age_s = (now - report.at).total_seconds()
    late = age_s > 3 * ctx.config.control.interval_s + 30
    updated = f"{fmt.clock_time(report.at, now, tz)} ({fmt.duration(age_s)} ago)"
    if report.tick_ms is not None:
        updated += f", tick {report.tick_ms:.0f} ms"
    cards = []
    for load in ctx.loads:
        view = report.loads.get(load)
        if view is None:
            cards.append(_card_without_report(ctx, load, now, overrides))
        else:
            cards.append(_card(ctx, view, now, overrides))
    errors = [f"{k}: {v}" for k, v in sorted(report.errors.items())]
    return Page(
        now=now,
        has_report=True,
        updated=updated,
        report_late=late,
        dry_run=report.dry_run,
        figures=figures(report, now),
        cards=cards,
        errors=errors,
    )


def _override_text(
    mode: Mode, until: datetime | None, by: str | None, now: datetime, ctx: UiContext
) -> str:
    text = f"{fmt.MODE_LABELS[mode]} {fmt.until(until, now, ctx.tz)}"
    return f"{text} · by {by}" if by else text


def _card(
    ctx: UiContext,
    v: LoadView,
    now: datetime,
    overrides: Mapping[LoadId, Override] | None,
) -> Card:
    tz = ctx.tz
    reported = _effective(v.override_mode)
    stored = overrides.get(v.load) if overrides is not None else None
    if overrides is None:
        mode = reported
    else:
        mode = _effective(stored.mode) if stored is not None and stored.active(now) else Mode.AUTO
    pending = None
    if mode is not reported:
        pending = f"{fmt.MODE_LABELS[mode]} stored; waiting for the controller to apply it"
    override = None
    if stored is not None and mode is not Mode.AUTO:
        override = _override_text(mode, stored.expires_at, stored.created_by, now, ctx)
    elif v.override_mode is not None and reported is not Mode.AUTO:
        override = _override_text(reported, v.override_until, v.override_by, now, ctx)
    notes = []
    if v.manual_until is not None:
        notes.append(f"Switched by hand; EMS leaves it alone {fmt.until(v.manual_until, now, tz)}")
    if v.cooldown_until is not None:
        notes.append(f"Cooldown {fmt.until(v.cooldown_until, now, tz)}")
    if v.relay_on is not None and v.relay_on != v.output_on:
        notes.append(f"Device reports {'on' if v.relay_on else 'off'}")
    if v.source and v.state is State.MANUAL:
        notes.append(f"Switched at the device by: {v.source}")
    if v.power_w is not None:
        power = fmt.power(v.power_w)
    else:
        power = "no power meter" if v.error is None else DASH_UNREAD
    return Card(
        load=v.load.value,
        label=fmt.LOAD_LABELS.get(v.load.value, v.load.value),
        state=v.state.value,
        state_label=fmt.STATE_LABELS.get(v.state, v.state.value),
        colour=fmt.state_colour(v.state, v.error),
        since=fmt.since(v.since, now, tz),
        output_on=v.output_on,
        power=power,
        power_measured=v.power_w is not None,
        reasons=v.reasons,
        mode=mode.value,
        override=override,
        pending=pending,
        blocked_by=v.blocked_by,
        notes=tuple(notes),
        error=v.error,
        car=None if v.car is None else panel(v.car, now, ctx, v.load),
    )


def _card_without_report(
    ctx: UiContext,
    load: LoadId,
    now: datetime,
    overrides: Mapping[LoadId, Override] | None,
) -> Card:
    stored = overrides.get(load) if overrides is not None else None
    active = stored is not None and stored.active(now)
    mode = stored.mode if stored is not None and active else Mode.AUTO
    return Card(
        load=load.value,
        label=fmt.LOAD_LABELS.get(load.value, load.value),
        state="unknown",
        state_label="no report yet",
        colour="grey",
        since="",
        output_on=False,
        power="",
        power_measured=False,
        reasons=(),
        mode=mode.value,
        override=None
        if stored is None or not active
        else _override_text(mode, stored.expires_at, stored.created_by, now, ctx),
    )


def _age(snapshot_ages: Mapping[str, float], key: str) -> str | None:
    age = snapshot_ages.get(key)
    return None if age is None else f"{fmt.duration(age)} old"


def figures(report: StatusReport, now: datetime) -> list[Figure]:
    """The house's figures in display order, each with its age and staleness."""
    snap = report.snapshot
    ages = snap.ages_s

    def fig(key: str, label: str, text: str | None, detail: str | None = None) -> Figure:
        value = getattr(snap, key)
        stale = value is None and key in ages
        missing = value is None and key not in ages
        shown = fmt.DASH if value is None or text is None else text
        if stale:
            shown = "stale"
        return Figure(
            key=key,
            label=label,
            value=shown,
            age=_age(ages, key),
            stale=stale,
            missing=missing,
            detail=detail,
        )

    def signed(w: float | None, pos: str, neg: str) -> tuple[str, str | None]:
        """The direction goes into the label, so the value fits a phone's half-width tile."""
        if w is None:
            return "", None
        if abs(w) < 0.5:
            return "", "0 W"
        return (pos if w > 0 else neg), fmt.power(abs(w))

    phases = [
        f"{name} {fmt.power(w)}"
        for name, w in (("L1", snap.grid_l1_w), ("L2", snap.grid_l2_w), ("L3", snap.grid_l3_w))
        if w is not None
    ]
    grid_dir, grid_text = signed(snap.grid_w, "import", "export")
    batt_dir, batt_text = signed(snap.battery_w, "charging", "discharging")
    out = [
        fig("pv_w", "PV", fmt.power(snap.pv_w)),
        fig(
            "grid_w",
            f"Grid {grid_dir}".strip(),
            grid_text,
            " · ".join(phases) if phases else None,
        ),
        fig("soc_pct", "Battery SOC", None if snap.soc_pct is None else f"{snap.soc_pct:.0f} %"),
        fig("battery_w", f"Battery {batt_dir}".strip(), batt_text),
        fig("compressor_w", "Compressor", fmt.power(snap.compressor_w)),
        fig("outdoor_c", "Outdoor", None if snap.outdoor_c is None else f"{snap.outdoor_c:.1f} °C"),
        fig("dhw_c", "Hot water", None if snap.dhw_c is None else f"{snap.dhw_c:.1f} °C"),
    ]
    out.append(
        Figure(
            key="surplus_w",
            label="Surplus",
            value=fmt.power(report.surplus_w),
            missing=report.surplus_w is None,
        )
    )
    if report.forecast_remaining_wh is not None:
        fetched = report.forecast_fetched_at
        out.append(
            Figure(
                key="forecast",
                label="Forecast",
                value=f"{fmt.energy(report.forecast_remaining_wh)} left today",
                age=None
                if fetched is None
                else f"{fmt.duration((now - fetched).total_seconds())} old",
            )
        )
    else:
        out.append(Figure(key="forecast", label="Forecast", value=fmt.DASH, missing=True))
    return out
