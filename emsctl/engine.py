"""The pure decision engine: (snapshot, load statuses, config, now) -> a Verdict per load.

No I/O, no wall clock, no globals. Every rule of docs/decision-logic.md lives here; the
machines only check the timers the engine relies on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from emsctl.config import (
    CarFallback,
    Config,
    IdleRelease,
    LoadConfig,
    NoCarRelease,
    WallboxConfig,
)
from emsctl.model import (
    EMS_RUNNING,
    OUTPUT_ON,
    Decision,
    Event,
    LoadId,
    LoadStatus,
    Mode,
    Release,
    Snapshot,
    State,
    Verdict,
)

#: Watch keys (conditions whose start time the engine remembers between ticks).
DATA_MISSING = "data_missing"


def idle_key(load: LoadId) -> str:
    return f"{load.value}.compressor_idle"


def no_car_key(load: LoadId) -> str:
    return f"{load.value}.not_drawing"


def fmt_w(watts: float) -> str:
    """Human power: '1.9 kW' or '250 W'."""
    return f"{watts / 1000:.1f} kW" if abs(watts) >= 1000 else f"{watts:.0f} W"


def fmt_s(seconds: float) -> str:
    """Human duration: '3m12s', '45s', '2h05m'."""
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def fmt_pct(pct: float) -> str:
    """Human percentage: '62%', '49.9%' (a decimal only where it decides: 49.96 is not 50)."""
    return f"{pct:.1f}".removesuffix(".0") + "%"


def elapsed(since: datetime | None, now: datetime) -> float:
    """Seconds from `since` to `now` (0 when never)."""
    return 0.0 if since is None else (now - since).total_seconds()


def relay_expected(status: LoadStatus) -> bool:
    """The output the EMS believes the device has."""
    if status.commanded_on is not None:
        return status.commanded_on
    return status.state in OUTPUT_ON


def manual_change(status: LoadStatus) -> str | None:
    """Why the device's state shows a person's hand, or None.

    A read-back that differs from what the EMS last commanded (no command in flight) is a
    person's doing, except: a relay that went off by itself (source "timer": our dead-man ran
    out; "init": the device restarted after a power cut), which the EMS switches back on if
    it should run; and a change the device reports as the EMS's own (source "ems": e.g. the
    DHW boost still set after a restart), which the EMS corrects by command.
    """
    r = status.reading
    if status.command_pending or status.state in (State.MANUAL, State.UNAVAILABLE):
        return None
    if r.foreign_setpoint is not None:
        return f"target set to {r.foreign_setpoint:g} by someone else"
    if r.relay_on is None or r.relay_on == relay_expected(status):
        return None
    if r.source == "ems" or (r.source in ("timer", "init") and not r.relay_on):
        return None
    how = f" ({r.source})" if r.source else ""
    return f"switched {'on' if r.relay_on else 'off'} by hand{how}"


@dataclass
class _Judgement:
    """Working notes for one load during one evaluation."""

    status: LoadStatus
    cfg: LoadConfig
    gate: float
    reasons: list[str] = field(default_factory=list)
    start_ok: bool = False
    keep_ok: bool = True
    event: Event | None = None
    release: Release | None = None
    cooldown_s: float = 0.0
    hold_until: datetime | None = None
    candidate_start: bool = False  # arming long enough; competes for the tick's start slot
    candidate_shed: bool = False  # off_delay and min_on satisfied; competes for the shed slot
    failsafe_shed: bool = False


@dataclass
class _Tick:
    """Facts shared by every load during one evaluation."""

    snapshot: Snapshot
    config: Config
    now: datetime
    #: `now` as local time of day (control.timezone), for the car charging windows.
    local: time
    watch: Mapping[str, datetime]
    fresh: bool
    brake: bool
    failsafe: bool
    missing_for: float
    budget: float | None = None
    notes: list[str] = field(default_factory=list)


def forecast_shift(snapshot: Snapshot, config: Config) -> tuple[float, str | None]:
    """Rule 14: how many percent to lower the gates, and why."""
    fc = snapshot.forecast
    c = config.control
    if fc is None or snapshot.soc_pct is None or c.forecast_gate_shift_pct <= 0:
        return 0.0, None
    room_wh = c.battery_capacity_wh * max(0.0, 100.0 - snapshot.soc_pct) / 100.0
    need_wh = room_wh * c.forecast_margin
    if fc.remaining_today_wh < need_wh:
        return 0.0, None
    return c.forecast_gate_shift_pct, (
        f"forecast {fc.remaining_today_wh / 1000:.1f} kWh left today >= "
        f"{c.forecast_margin:g} x battery room {room_wh / 1000:.1f} kWh"
    )


def effective_gate(cfg: LoadConfig, config: Config, shift: float) -> float:
    """The load's SOC gate after the forecast shift, never within reach of the brake."""
    if shift <= 0:
        return cfg.gate_pct
    floor = config.control.brake_soc + 2 * config.control.gate_hysteresis_pct
    return max(cfg.gate_pct - shift, min(cfg.gate_pct, floor))


def own_power(j: _Judgement, snapshot: Snapshot, compressor_taken: bool) -> tuple[float, bool]:
    """Power the load draws now by the EMS's best knowledge, and whether it used the compressor.

    The compressor serves both heat-pump loads: its power is counted once.
    """
    src = j.cfg.power_source
    if src == "meter" and j.status.reading.power_w is not None:
        return j.status.reading.power_w, compressor_taken
    if src == "compressor":
        if compressor_taken:
            return 0.0, True
        if snapshot.compressor_w is not None:
            return snapshot.compressor_w, True
        return j.cfg.nominal_w, True
    return j.cfg.nominal_w, compressor_taken


def _phase_surplus(cfg: LoadConfig, snapshot: Snapshot) -> float | None:
    """Rule 8: export on the load's phase plus a third of battery charging (the hybrid
    inverter feeds all three phases evenly), or None when there is no per-phase data."""
    if cfg.phase is None:
        return None
    phase_w = snapshot.phase_w(cfg.phase)
    if phase_w is None:
        return None
    battery = snapshot.battery_w or 0.0
    return -phase_w + battery / 3.0


def _no_phase_note(load: LoadId, phase: str) -> str:
    return f"{load.value}: no {phase} data, judging the total export"


def _window(cfg: LoadConfig, local: time) -> CarFallback | None:
    """The load's car charging window if `local` (the tick's local time of day) lies in it."""
    if not isinstance(cfg, WallboxConfig) or not cfg.fallback.enabled:
        return None
    return cfg.fallback if cfg.fallback.covers(local) else None


def _in_fallback(cfg: LoadConfig, local: time) -> bool:
    """Whether `local` lies in the load's car charging window."""
    return _window(cfg, local) is not None


def _fallback_exempt(cfg: LoadConfig, local: time, what: str) -> bool:
    """Whether the load is in its car charging window and the window is exempt from
    `what` ("beats_brake" or "ignores_exclusion")."""
    if not _in_fallback(cfg, local):
        return False
    assert isinstance(cfg, WallboxConfig)  # only wallboxes have a fallback window
    return bool(getattr(cfg.fallback, what))


def _exclusive_peers(load: LoadId, config: Config) -> set[LoadId]:
    peers: set[LoadId] = set()
    for group in config.control.exclusive:
        if load in group:
            peers.update(x for x in group if x is not load)
    return peers


def _output_is_on(status: LoadStatus) -> bool:
    """Whether the load is (or is about to be) drawing power, as far as exclusion is concerned.

    The read-back counts as well as the state: a relay a person switched on is on now, even
    in the tick before the machine learns of it as `manual`.
    """
    return status.state in OUTPUT_ON or status.reading.relay_on is True


def _update_watch(
    snapshot: Snapshot,
    statuses: Mapping[LoadId, LoadStatus],
    config: Config,
    now: datetime,
    local: time,
    watch: Mapping[str, datetime],
) -> dict[str, datetime]:
    """Remember since when each timed condition holds (rules 10, 11, 13)."""
    out: dict[str, datetime] = {}

    def hold(key: str, holds: bool) -> None:
        if holds:
            out[key] = watch.get(key, now)

    hold(DATA_MISSING, snapshot.grid_w is None or snapshot.soc_pct is None)
    for load in config.enabled_loads():
        st = statuses[load]
        cfg = config.loads.get(load)
        running = st.state in EMS_RUNNING
        idle = getattr(cfg, "idle_release", None)
        if isinstance(idle, IdleRelease) and idle.enabled:
            c = snapshot.compressor_w
            hold(idle_key(load), running and c is not None and c < idle.below_w)
        no_car = getattr(cfg, "no_car", None)
        if isinstance(no_car, NoCarRelease) and no_car.enabled and cfg.power_source == "meter":
            # In its fallback window the wallbox is not on surplus, so there is nothing to
            # hand on; the relay stays on and a car plugged in later starts at once.
            p = st.reading.power_w
            low = running and p is not None and p < no_car.below_w
            hold(no_car_key(load), low and not _in_fallback(cfg, local))
    return out


def evaluate(
    snapshot: Snapshot,
    loads: Mapping[LoadId, LoadStatus],
    config: Config,
    now: datetime,
    watch: Mapping[str, datetime] | None = None,
) -> Decision:
    """Judge every enabled load. `watch` is the previous Decision's `watch` (empty at start)."""
    c = config.control
    local = now.astimezone(c.tz).time()
    order = config.enabled_loads()
    new_watch = _update_watch(snapshot, loads, config, now, local, watch or {})
    notes: list[str] = []

    soc = snapshot.soc_pct
    fresh = snapshot.grid_w is not None and soc is not None
    missing_since = new_watch.get(DATA_MISSING)
    missing_for = elapsed(missing_since, now)
    failsafe = not fresh and missing_for >= c.failsafe_after_s
    # The brake also judges the last plausible SOC while the current value is a glitch (rule 16).
    brake_soc = soc if soc is not None else snapshot.soc_held_pct
    brake = brake_soc is not None and brake_soc < c.brake_soc
    surplus: float | None = None
    if snapshot.grid_w is not None:
        surplus = -snapshot.grid_w + (snapshot.battery_w or 0.0)

    shift, shift_reason = forecast_shift(snapshot, config)
    last_switch = max(
        (t for st in loads.values() for t in (st.on_since, st.off_since) if t is not None),
        default=None,
    )
    settling = last_switch is not None and elapsed(last_switch, now) < c.settle_s
    settle_note = (
        f"settling {fmt_s(elapsed(last_switch, now))} < {fmt_s(c.settle_s)} after the last switch"
        if settling
        else None
    )

    js: dict[LoadId, _Judgement] = {}
    for load in order:
        cfg = config.loads.get(load)
        js[load] = _Judgement(status=loads[load], cfg=cfg, gate=effective_gate(cfg, config, shift))

    # Rule 2: surplus budget, running loads first (no preemption), then candidates in order.
    # `budget` is what a load may use: for a running load, the surplus plus its own power and
    # that of every running load below it; for a candidate, the surplus minus what the
    # candidates above it reserved.
    budget: float | None = None
    if fresh and surplus is not None:
        # The shared compressor is owned by the lowest-priority running heat-pump load: that is
        # the one shedding reaches first, and the compressor only stops once every heat-pump
        # load has gone, so a higher one must not look free to leave (or costly to keep).
        compressor_taken = False
        owns: dict[LoadId, float] = {}
        for load in reversed(order):
            if js[load].status.state in EMS_RUNNING:
                owns[load], compressor_taken = own_power(js[load], snapshot, compressor_taken)
        budget = surplus + sum(owns.values())
        for load in (x for x in order if x in owns):
            j = js[load]
            own = owns[load]
            # The phase is measured with the load running, like the total: what it may import
            # while running is max_import_w.
            phase = _phase_surplus(j.cfg, snapshot)
            if j.cfg.phase is not None and phase is None:
                notes.append(_no_phase_note(load, j.cfg.phase))
            avail = budget if phase is None else min(budget, phase + own)
            if avail - own >= -j.cfg.max_import_w:
                budget -= own
                j.reasons.append(f"surplus covers the load ({fmt_w(own)})")
            else:
                # A load that cannot be covered even with every lower one gone leaves; the
                # loads below are judged as if it had (its power is not taken from them).
                j.keep_ok = False
                label = "surplus" if avail == budget else f"{j.cfg.phase} surplus"
                j.reasons.append(
                    f"{label} {fmt_w(avail)} < load {fmt_w(own)} - tolerated import "
                    f"{fmt_w(j.cfg.max_import_w)}"
                )
        # What is left for loads that want to start is the surplus measured now: the power of
        # a running load that is leaving is not free until it has left (no start on it).
        budget = surplus
    elif not failsafe:
        for j in js.values():
            if j.status.state in EMS_RUNNING:
                j.reasons.append(f"no fresh grid/soc data for {fmt_s(missing_for)}; holding")

    for load in order:
        j = js[load]
        st = j.status
        cfg = j.cfg
        if st.state not in EMS_RUNNING or not fresh:
            continue  # rule 13: without fresh data a running load holds its state
        fallback = _window(cfg, local)
        if fallback is not None:
            j.keep_ok = True
            j.reasons.append(fallback.reason)
        elif soc is not None and soc < j.gate - c.gate_hysteresis_pct:
            j.keep_ok = False
            j.reasons.append(
                f"soc {fmt_pct(soc)} < gate {fmt_pct(j.gate)} - {c.gate_hysteresis_pct:g}"
            )
        max_out = getattr(cfg, "max_outdoor_c", None)
        if max_out is not None and snapshot.outdoor_c is not None and snapshot.outdoor_c > max_out:
            j.keep_ok = False
            j.reasons.append(f"outdoor {snapshot.outdoor_c:.1f}°C > {max_out:g}°C")
        # Rule 7 while running: two exclusive loads can only both be on by a person's doing
        # (adopted after a manual hold). The EMS gives way, by the ordinary stop: to a load
        # it does not drive, and to a higher-priority one it does.
        exempt = _fallback_exempt(cfg, local, "ignores_exclusion")
        for peer in sorted(_exclusive_peers(load, config)):
            pst = js[peer].status if peer in js else None
            if exempt or pst is None or not _output_is_on(pst):
                continue
            if pst.state not in EMS_RUNNING or order.index(peer) < order.index(load):
                j.keep_ok = False
                j.reasons.append(f"exclusive with {peer.value}, which is running")

    tick = _Tick(
        snapshot=snapshot,
        config=config,
        now=now,
        local=local,
        watch=new_watch,
        fresh=fresh,
        brake=brake,
        failsafe=failsafe,
        missing_for=missing_for,
        budget=budget,
        notes=notes,
    )
    _judge_starts(js, order, tick)
    # Immediate releases, overrides and manual detection per load.
    for load in order:
        _decide_event(load, js, tick)

    # A person's hand, the owner's override or a lost device decided this tick for the load
    # already: it does not compete for the start or shed slot.
    for j in js.values():
        if j.event is not None:
            j.candidate_start = j.candidate_shed = j.failsafe_shed = False
    # Rule 4: one start and one shed per tick, not while the last switch settles.
    if not settling:
        for load in order:
            if js[load].candidate_start:
                js[load].event = Event.START
                break
        for load in reversed(order):
            j = js[load]
            if j.candidate_shed or j.failsafe_shed:
                j.event = Event.SHED
                if j.failsafe_shed:
                    j.release = Release.FAILSAFE
                break
    _enforce_exclusion(js, order, config, tick.local)
    for j in js.values():
        if j.candidate_start and j.event is not Event.START:
            j.reasons.append(settle_note or "waiting: another load takes this tick's start")
        if (j.candidate_shed or j.failsafe_shed) and j.event is not Event.SHED:
            j.reasons.append(settle_note or "waiting: another load is shed this tick")

    if shift_reason:
        for j in js.values():
            # Only where the gate is what decides: not for a person's or the owner's doing.
            automatic = j.status.state in (State.OFF, State.ARMING, *EMS_RUNNING)
            if j.gate != j.cfg.gate_pct and automatic and j.event not in _BY_PEOPLE:
                j.reasons.append(
                    f"{shift_reason}: gate {fmt_pct(j.cfg.gate_pct)} -> {fmt_pct(j.gate)}"
                )

    verdicts = {
        load: Verdict(
            load=load,
            event=j.event,
            start_ok=j.start_ok,
            keep_ok=j.keep_ok,
            reasons=tuple(j.reasons),
            gate_pct=j.gate,
            surplus_w=surplus,
            release=j.release,
            cooldown_s=j.cooldown_s,
            hold_until=j.hold_until,
        )
        for load, j in js.items()
    }
    return Decision(verdicts=verdicts, watch=new_watch, surplus_w=surplus, notes=tuple(notes))


#: Events that come from a person, the owner or a device that needs one.
_BY_PEOPLE = (Event.DETECT_MANUAL, Event.LOSE, Event.FORCE_ON, Event.FORCE_OFF, Event.AUTO)


def _enforce_exclusion(
    js: dict[LoadId, _Judgement], order: list[LoadId], config: Config, local: time
) -> None:
    """Rule 7: at most one load of an exclusive group is on after this tick.

    A load already on keeps its place; then an owner's force beats an automatic start; then
    priority decides. A wallbox charging in its exempt night window is not counted.
    """
    leaving = (Event.BRAKE, Event.SHED, Event.RELEASE, Event.FORCE_OFF, Event.DETECT_MANUAL)

    def rank(load: LoadId) -> int:
        j = js[load]
        if _output_is_on(j.status) and j.event not in leaving:
            return 0
        return {Event.FORCE_ON: 1, Event.START: 2}.get(j.event or Event.ARM, 3)

    for group in config.control.exclusive:
        members = sorted(
            (
                x
                for x in order
                if x in group
                and x in js
                and not _fallback_exempt(js[x].cfg, local, "ignores_exclusion")
            ),
            key=rank,
        )
        holder: LoadId | None = None
        for load in members:
            if rank(load) == 3:
                continue
            if holder is None:
                holder = load
                continue
            if rank(load) == 0:
                continue  # both on already (a person's doing): not ours to undo here
            j = js[load]
            j.event = None
            j.candidate_start = False
            j.reasons.append(f"exclusive with {holder.value}, which is switching on")


def _judge_starts(js: dict[LoadId, _Judgement], order: list[LoadId], tick: _Tick) -> None:
    """Rules 1, 2, 7, 8, 9, 13, 15: may each load that is off (or arming) start?"""
    snapshot, config, now, budget = tick.snapshot, tick.config, tick.now, tick.budget
    local = tick.local
    fresh, brake, missing_for, notes = tick.fresh, tick.brake, tick.missing_for, tick.notes
    c = config.control
    soc = snapshot.soc_pct
    for load in order:
        j = js[load]
        st = j.status
        cfg = j.cfg
        if st.state not in (State.OFF, State.ARMING):
            continue
        why: list[str] = []
        fallback = _window(cfg, local)
        if not fresh:
            why.append(f"no fresh grid/soc data for {fmt_s(missing_for)}")
        if brake and soc is not None and not _fallback_exempt(cfg, local, "beats_brake"):
            why.append(f"soc {fmt_pct(soc)} < brake {fmt_pct(c.brake_soc)}")
        elif soc is not None and soc < j.gate and fallback is None:
            why.append(f"soc {fmt_pct(soc)} < gate {fmt_pct(j.gate)}")
        max_out = getattr(cfg, "max_outdoor_c", None)
        if max_out is not None:
            if snapshot.outdoor_c is None:
                why.append("outdoor temperature unknown")
            elif snapshot.outdoor_c > max_out:
                why.append(f"outdoor {snapshot.outdoor_c:.1f}°C > {max_out:g}°C")
        if not st.reading.available:
            why.append(st.reading.error or "device unavailable")
        elif not st.reading.reachable:
            why.append(f"device unreachable: {st.reading.error or 'no reading'}")
        if cfg.min_off_s > 0 and st.off_since is not None:
            off_for = elapsed(st.off_since, now)
            if off_for < cfg.min_off_s:
                why.append(f"off for {fmt_s(off_for)} < min_off {fmt_s(cfg.min_off_s)}")
        exempt = _fallback_exempt(cfg, local, "ignores_exclusion")
        for peer in sorted(_exclusive_peers(load, config)):
            if not exempt and peer in js and _output_is_on(js[peer].status):
                why.append(f"exclusive with {peer.value}, which is running")
        if not why and budget is not None:
            need = cfg.start_threshold_w
            phase = _phase_surplus(cfg, snapshot)
            if cfg.phase is not None and phase is None:
                notes.append(_no_phase_note(load, cfg.phase))
            avail = budget if phase is None else min(budget, phase)
            if fallback is not None:
                j.reasons.append(fallback.reason)
            elif avail < need:
                label = f"{cfg.phase} export" if phase is not None else "surplus"
                why.append(f"{label} {fmt_w(avail)} < start {fmt_w(need)}")
        if why:
            j.reasons.extend(why)
            continue
        j.start_ok = True
        if budget is not None and fallback is None:
            j.reasons.append(f"surplus {fmt_w(budget)} >= start {fmt_w(cfg.start_threshold_w)}")
            budget -= cfg.start_threshold_w
        if st.state is State.ARMING:
            armed = elapsed(st.since, now)
            if armed >= cfg.on_delay_s:
                j.candidate_start = True
                j.reasons.append(f"start condition held {fmt_s(armed)}")
            else:
                j.reasons.append(f"start condition held {fmt_s(armed)} of {fmt_s(cfg.on_delay_s)}")


def _decide_event(load: LoadId, js: dict[LoadId, _Judgement], tick: _Tick) -> None:
    """The transition this load wants, before the tick's start/shed slots are handed out."""
    snapshot, config, now, watch = tick.snapshot, tick.config, tick.now, tick.watch
    local = tick.local
    brake, failsafe, missing_for = tick.brake, tick.failsafe, tick.missing_for
    c = config.control
    j = js[load]
    st = j.status
    cfg = j.cfg
    soc = snapshot.soc_pct
    ov = st.override if st.override is not None and st.override.active(now) else None

    # A device that needs a person (revoked login, wrong password) is shown as unavailable.
    # Here and for a person's hand, the rules' judgement no longer matters: the one reason
    # left is the person's.
    if not st.reading.available:
        if st.state is not State.UNAVAILABLE:
            j.event = Event.LOSE
        j.release = None
        j.reasons = [st.reading.error or "device unavailable"]
        return
    if st.state is State.UNAVAILABLE:
        j.event = Event.REGAIN
        still = st.reading.relay_on is True and st.commanded_on is True
        j.reasons.append("device available again" + (", still running" if still else ""))
        return

    manual = manual_change(st)
    if manual is not None:
        j.event = Event.DETECT_MANUAL
        j.release = None
        j.hold_until = now + timedelta(seconds=c.manual_hold_s)
        j.reasons = [f"{manual}; leaving it alone for {fmt_s(c.manual_hold_s)}"]
        return
    if st.state is State.MANUAL:
        # A hold restored without its end lasts manual_hold_s from when it began.
        until = st.manual_until or st.since + timedelta(seconds=c.manual_hold_s)
        if now < until:
            j.reasons.append(f"manual: EMS leaves it alone ({fmt_s(elapsed(now, until))} left)")
        elif not st.reading.reachable:
            # The load is adopted as the device is; an unreadable device is not "off".
            j.reasons.append(
                "manual hold expired; waiting for a reading of the device "
                f"({st.reading.error or 'no reading'})"
            )
        else:
            j.event = Event.MANUAL_END
            j.reasons.append("manual hold expired")
        return

    braked = brake
    brake_reason = (
        f"emergency brake: soc {fmt_pct(soc)} < {fmt_pct(c.brake_soc)}"
        if soc is not None
        else f"emergency brake: last plausible soc {fmt_pct(snapshot.soc_held_pct or 0.0)} "
        f"< {fmt_pct(c.brake_soc)}"
    )

    # Owner overrides from the UI.
    if ov is not None:
        if ov.mode is Mode.FORCE_OFF:
            if st.state is not State.FORCED_OFF:
                j.event = Event.FORCE_OFF
            j.reasons.append("forced off by the owner")
            return
        # A wallbox charging in a window exempt from the exclusion neither waits for its
        # peer nor makes it stop, as in automatic operation (rule 15).
        blocked_by = (
            []
            if _fallback_exempt(cfg, local, "ignores_exclusion")
            else [
                p
                for p in sorted(_exclusive_peers(load, config))
                if p in js
                and _output_is_on(js[p].status)
                and not _fallback_exempt(js[p].cfg, local, "ignores_exclusion")
            ]
        )
        if braked and not c.force_beats_brake:
            if st.state in OUTPUT_ON:
                j.event = Event.BRAKE
                j.release = Release.BRAKE
            j.reasons.append(f"force on held back: {brake_reason}")
            return
        if st.state is State.FORCED_ON:
            j.reasons.append("forced on by the owner")
            return
        if blocked_by:
            for peer in blocked_by:
                pj = js[peer]
                # A peer already leaving (brake, early release) or switched by a person keeps
                # its own transition; a peer judged later sees the BRAKE set here.
                if pj.status.state in EMS_RUNNING and pj.event in (
                    None,
                    Event.WEAKEN,
                    Event.RECOVER,
                ):
                    pj.event = Event.BRAKE
                    pj.release = Release.EXCLUSION
                    pj.reasons.append(f"making way for {load.value}, forced on by the owner")
            j.reasons.append(
                f"force on waits: exclusive with {', '.join(p.value for p in blocked_by)}"
            )
            return
        j.event = Event.FORCE_ON
        j.reasons.append("forced on by the owner")
        return
    if st.state in (State.FORCED_ON, State.FORCED_OFF):
        if braked and st.state is State.FORCED_ON:
            # Adopting it as `on` would only brake it next tick.
            j.event = Event.BRAKE
            j.release = Release.BRAKE
            j.reasons.append(f"override ended; {brake_reason}")
            return
        j.event = Event.AUTO
        j.reasons.append("override ended")
        return

    if st.state is State.COOLDOWN:
        if st.cooldown_until is None or now >= st.cooldown_until:
            j.event = Event.COOL_DOWN_END
            j.reasons.append("cooldown over")
        else:
            j.reasons.append(f"cooldown: {fmt_s(elapsed(now, st.cooldown_until))} left")
        return

    if st.state in EMS_RUNNING:
        if braked and not _fallback_exempt(cfg, local, "beats_brake"):
            j.event = Event.BRAKE
            j.release = Release.BRAKE
            j.reasons.insert(0, brake_reason)
            return
        on_for = elapsed(st.on_since or st.since, now)
        idle = getattr(cfg, "idle_release", None)
        if isinstance(idle, IdleRelease) and idle.enabled:
            since = watch.get(idle_key(load))
            idle_for = elapsed(since, now)
            if since is not None and on_for >= idle.grace_s and idle_for >= idle.for_s:
                j.event = Event.RELEASE
                j.release = Release.COMPRESSOR_IDLE
                j.cooldown_s = idle.cooldown_s
                j.reasons.insert(
                    0,
                    f"compressor idle {fmt_s(idle_for)} (< {fmt_w(idle.below_w)}): "
                    f"target reached, releasing; cooldown {fmt_s(idle.cooldown_s)}",
                )
                return
        no_car = getattr(cfg, "no_car", None)
        if isinstance(no_car, NoCarRelease) and no_car.enabled:
            since = watch.get(no_car_key(load))
            low_for = elapsed(since, now)
            if since is not None and on_for >= no_car.grace_s and low_for >= no_car.for_s:
                j.event = Event.RELEASE
                j.release = Release.CAR_NOT_CHARGING
                j.cooldown_s = no_car.retry_after_s
                j.reasons.insert(
                    0,
                    f"car not charging: {fmt_w(st.reading.power_w or 0.0)} < "
                    f"{fmt_w(no_car.below_w)} for {fmt_s(low_for)}; "
                    f"retry in {fmt_s(no_car.retry_after_s)}",
                )
                return
        if j.event is Event.BRAKE:
            return  # making way for a peer the owner forced on
        min_on_left = cfg.min_on_s - on_for
        in_state = elapsed(st.since, now)
        if failsafe:
            j.keep_ok = False
            j.reasons.append(f"fail-safe: no fresh grid/soc data for {fmt_s(missing_for)}")
            if min_on_left > 0:
                j.reasons.append(f"min runtime: {fmt_s(min_on_left)} left")
            elif st.state is State.DISARMING and in_state < cfg.off_delay_s:
                # The machine's guard on disarming -> off; only reachable with an off_delay_s
                # longer than failsafe_after_s, since a disarming load holds while data is gone.
                j.reasons.append(
                    f"fail-safe: stop condition held {fmt_s(in_state)} of {fmt_s(cfg.off_delay_s)}"
                )
            else:
                j.failsafe_shed = True
            return
        if not tick.fresh:
            return  # holding (the reason is already given)
        if st.state is State.ON:
            if not j.keep_ok:
                j.event = Event.WEAKEN
            return
        # disarming
        if j.keep_ok:
            j.event = Event.RECOVER
            j.reasons.append("stop condition cleared")
            return
        if in_state < cfg.off_delay_s:
            j.reasons.append(f"stop condition held {fmt_s(in_state)} of {fmt_s(cfg.off_delay_s)}")
        elif min_on_left > 0:
            j.reasons.append(f"min runtime: {fmt_s(min_on_left)} left")
        else:
            j.candidate_shed = True
            j.reasons.append(f"stop condition held {fmt_s(in_state)}")
        return

    # off or arming
    if st.state is State.OFF and j.start_ok:
        j.event = Event.ARM
    elif st.state is State.ARMING and not j.start_ok:
        j.event = Event.DISARM_START
