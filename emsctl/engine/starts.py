"""Pass: may each load that is off (or arming) start? Rules 1, 2, 6, 7, 8, 9, 13, 15, 17, 18,
and the on-delay that makes a start a candidate for the tick's start slot (rules 3, 4)."""

from __future__ import annotations

from collections.abc import Mapping

from emsctl import units
from emsctl.engine import exclusion
from emsctl.engine.budget import phase_or_note
from emsctl.engine.facts import Facts, Judgement, Reason, elapsed
from emsctl.engine.target import plan_note
from emsctl.model import ChargeMode, LoadId, ReasonCode, State


def judge_starts(js: Mapping[LoadId, Judgement], facts: Facts) -> None:
    """Sets `start_ok` and `candidate_start`; candidates in priority order reserve their start
    threshold from the budget."""
    budget = facts.budget
    for load in facts.order:
        j = js[load]
        if j.status.state not in (State.OFF, State.ARMING):
            continue
        why = _held_back(load, js, facts)
        must = facts.must.get(load)
        if not why and budget is not None:
            phase = phase_or_note(load, j.cfg, facts)
            avail = budget if phase is None else min(budget, phase)
            need = _threshold(j)
            if must is not None:
                j.add(must.code, must.text)
            elif avail < need:
                label = f"{j.cfg.phase} export" if phase is not None else "surplus"
                text = f"{label} {units.power(avail)} < start {units.power(need)}"
                why.append((ReasonCode.NO_SURPLUS, text))
        if why:
            j.extend(why)
            continue
        j.start_ok = True
        if budget is not None and must is None:
            need = _threshold(j)
            j.add(ReasonCode.SURPLUS, f"surplus {units.power(budget)} >= start {units.power(need)}")
            budget -= need
        _on_delay(j, facts)


def _threshold(j: Judgement) -> float:
    """Rule 2's start threshold, or rule 19's lower one in a slot the plan has the load on."""
    need = j.cfg.start_threshold_w
    word = j.status.planned
    if word is not None and word.on and word.start_w < need:
        return word.start_w
    return need


def _held_back(load: LoadId, js: Mapping[LoadId, Judgement], facts: Facts) -> list[Reason]:
    """Every reason besides the surplus that keeps the load from starting now."""
    j = js[load]
    st, cfg = j.status, j.cfg
    c = facts.config.control
    soc = facts.soc
    must = facts.must.get(load)
    why: list[Reason] = []

    def add(code: ReasonCode, text: str) -> None:
        why.append((code, text))

    plan = st.plan
    if plan is not None and cfg.car_charging is not None:
        if plan.mode is ChargeMode.OFF:
            add(ReasonCode.MODE_OFF, "charging mode off")
        elif must is None:
            note = plan_note(st, cfg, facts.now, c.tz)
            if note is not None:
                # Not a reason to hold back: shown with the verdict, before the surplus's.
                j.add(*note)

    if not facts.fresh:
        add(
            ReasonCode.STALE_DATA, f"no fresh grid/soc data for {units.duration(facts.missing_for)}"
        )
    beats_brake = must is not None and must.beats_brake
    if facts.brake and soc is not None and not beats_brake:
        add(ReasonCode.BRAKE, f"soc {units.percent(soc)} < brake {units.percent(c.brake_soc)}")
    elif soc is not None and soc < j.gate and must is None:
        add(ReasonCode.SOC_GATE, f"soc {units.percent(soc)} < gate {units.percent(j.gate)}")
    limit = cfg.outdoor_limit_c
    outdoor = facts.snapshot.outdoor_c
    if limit is not None and outdoor is None:
        add(ReasonCode.OUTDOOR_UNKNOWN, "outdoor temperature unknown")
    elif limit is not None and outdoor is not None and outdoor > limit:
        add(ReasonCode.OUTDOOR_LIMIT, f"outdoor {outdoor:.1f}°C > {limit:g}°C")
    why.extend(_device_and_timers(j, facts, must is not None))
    for peer in exclusion.peers_on(load, js, facts, exempt_peers=True):
        add(ReasonCode.EXCLUSION, f"exclusive with {peer.value}, which is running")
    word = st.planned
    if word is not None and must is None:
        if word.on:
            j.add(ReasonCode.PLANNED, word.text)
        elif word.hold and (soc is None or soc < facts.config.planner.full_soc_pct):
            add(ReasonCode.PLAN_HOLD, word.text)
    return why


def _device_and_timers(j: Judgement, facts: Facts, must: bool) -> list[Reason]:
    """The device's reachability, the minimum off time (rule 5) and the starts per day (18)."""
    st, cfg = j.status, j.cfg
    why: list[Reason] = []
    if not st.reading.available:
        why.append((ReasonCode.UNAVAILABLE, st.reading.error or "device unavailable"))
    elif not st.reading.reachable:
        error = st.reading.error or "no reading"
        why.append((ReasonCode.UNREACHABLE, f"device unreachable: {error}"))
    off_for = elapsed(st.off_since, facts.now)
    if cfg.min_off_s > 0 and st.off_since is not None and off_for < cfg.min_off_s:
        text = f"off for {units.duration(off_for)} < min_off {units.duration(cfg.min_off_s)}"
        why.append((ReasonCode.MIN_OFF, text))
    most = cfg.max_starts_per_day
    starts = st.starts_on(facts.today)
    if most is not None and not must and starts >= most:
        why.append((ReasonCode.MAX_STARTS, f"started {starts} times today (max {most})"))
    return why


def _on_delay(j: Judgement, facts: Facts) -> None:
    """Rule 3: an arming load becomes a start candidate once the condition held on_delay_s."""
    if j.status.state is not State.ARMING:
        return
    armed = elapsed(j.status.since, facts.now)
    if armed >= j.cfg.on_delay_s:
        j.candidate_start = True
        j.add(ReasonCode.START_READY, f"start condition held {units.duration(armed)}")
    else:
        j.add(
            ReasonCode.ON_DELAY,
            f"start condition held {units.duration(armed)} of {units.duration(j.cfg.on_delay_s)}",
        )
