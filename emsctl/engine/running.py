"""Pass: the rules' transition for each load nobody else decided — the cooldown (rule 10/11),
the emergency brake (rule 6), the early releases (rules 10, 11), the fail-safe (rule 13),
hysteresis and minimum runtimes (rule 3), and arming."""

from __future__ import annotations

from collections.abc import Mapping

from emsctl import units
from emsctl.engine.facts import Facts, Judgement, elapsed, idle_key, no_car_key
from emsctl.model import EMS_RUNNING, Event, LoadId, ReasonCode, Release, State


def running(js: Mapping[LoadId, Judgement], facts: Facts) -> None:
    for load in facts.order:
        j = js[load]
        if j.decided:
            continue
        state = j.status.state
        if state is State.COOLDOWN:
            _cooldown(j, facts)
        elif state in EMS_RUNNING:
            if not _brake(j, facts) and not _release(load, j, facts):
                _stop(j, facts)
        elif state is State.OFF and j.start_ok:
            j.event = Event.ARM
        elif state is State.ARMING and not j.start_ok:
            j.event = Event.DISARM_START


def _cooldown(j: Judgement, facts: Facts) -> None:
    until = j.status.cooldown_until
    if until is None or facts.now >= until:
        j.event = Event.COOL_DOWN_END
        j.add(ReasonCode.COOLDOWN_OVER, "cooldown over")
    else:
        j.add(ReasonCode.COOLDOWN, f"cooldown: {units.duration(elapsed(facts.now, until))} left")


def _brake(j: Judgement, facts: Facts) -> bool:
    """Rule 6: below brake_soc every running load stops at once (minimum runtime or not),
    except a wallbox charging in a window or for a target that beats the brake (15, 17)."""
    must = facts.must.get(j.load)
    if not facts.brake or (must is not None and must.beats_brake):
        return False
    j.event = Event.BRAKE
    j.release = Release.BRAKE
    j.first(ReasonCode.BRAKE, facts.brake_reason)
    return True


def _release(load: LoadId, j: Judgement, facts: Facts) -> bool:
    """Rules 10, 11 and 17: a heat-pump load whose compressor idles, a wallbox that draws
    nothing, or a car that came to a relay kept on for it and need not charge now, is
    released early into a cooldown (no minimum runtime)."""
    plan = j.status.plan
    if plan is not None and plan.hold and not j.keep_ok and load not in facts.must:
        j.event = Event.RELEASE
        j.release = Release.HOLD
        j.cooldown_s = 0.0
        j.first(ReasonCode.CAR_HELD, "a car came: held, it need not charge now")
        return True
    on_for = elapsed(j.status.on_since or j.status.since, facts.now)
    idle = j.cfg.idle_rule
    since = facts.watch.get(idle_key(load))
    idle_for = elapsed(since, facts.now)
    if idle is not None and since is not None and on_for >= idle.grace_s and idle_for >= idle.for_s:
        j.event = Event.RELEASE
        j.release = Release.COMPRESSOR_IDLE
        j.cooldown_s = idle.cooldown_s
        j.first(
            ReasonCode.COMPRESSOR_IDLE,
            f"compressor idle {units.duration(idle_for)} (< {units.power(idle.below_w)}): "
            f"target reached, releasing; cooldown {units.duration(idle.cooldown_s)}",
        )
        return True
    no_car = j.cfg.no_car_rule
    since = facts.watch.get(no_car_key(load))
    low_for = elapsed(since, facts.now)
    if no_car is None or since is None or on_for < no_car.grace_s or low_for < no_car.for_s:
        return False
    j.event = Event.RELEASE
    j.release = Release.CAR_NOT_CHARGING
    must = facts.must.get(load)
    charging = j.cfg.car_charging
    # A target's start found no car: it may come (back) before the target, so look again
    # sooner than after a run on surplus.
    probe = must is not None and must.watch_draw and charging is not None
    j.cooldown_s = charging.probe_retry_s if probe and charging else no_car.retry_after_s
    drew = (
        units.power(j.status.reading.power_w or 0.0)
        if j.cfg.power_source == "meter"
        else "no draw seen"
    )
    j.first(
        ReasonCode.CAR_NOT_CHARGING,
        f"car not charging: {drew} < {units.power(no_car.below_w)} for "
        f"{units.duration(low_for)}; retry in {units.duration(j.cooldown_s)}",
    )
    return True


def _stop(j: Judgement, facts: Facts) -> None:
    """Rules 3 and 13: weaken, recover, or become a candidate for the shed slot."""
    if j.event is Event.BRAKE:
        return  # making way for a peer the owner forced on
    st, cfg = j.status, j.cfg
    min_on_left = cfg.min_on_s - elapsed(st.on_since or st.since, facts.now)
    in_state = elapsed(st.since, facts.now)
    if facts.failsafe:
        j.keep_ok = False
        j.add(
            ReasonCode.FAILSAFE,
            f"fail-safe: no fresh grid/soc data for {units.duration(facts.missing_for)}",
        )
        if min_on_left > 0:
            j.add(ReasonCode.MIN_RUNTIME, f"min runtime: {units.duration(min_on_left)} left")
        elif st.state is State.DISARMING and in_state < cfg.off_delay_s:
            # The machine's guard on disarming -> off; only reachable with an off_delay_s
            # longer than failsafe_after_s, since a disarming load holds while data is gone.
            j.add(
                ReasonCode.OFF_DELAY,
                f"fail-safe: stop condition held {units.duration(in_state)} of "
                f"{units.duration(cfg.off_delay_s)}",
            )
        else:
            j.failsafe_shed = True
        return
    if not facts.fresh:
        return  # holding (the reason is already given)
    if st.state is State.ON:
        if not j.keep_ok:
            j.event = Event.WEAKEN
        return
    # disarming
    if j.keep_ok:
        j.event = Event.RECOVER
        j.add(ReasonCode.RECOVERED, "stop condition cleared")
    elif in_state < cfg.off_delay_s:
        j.add(
            ReasonCode.OFF_DELAY,
            f"stop condition held {units.duration(in_state)} of {units.duration(cfg.off_delay_s)}",
        )
    elif min_on_left > 0:
        j.add(ReasonCode.MIN_RUNTIME, f"min runtime: {units.duration(min_on_left)} left")
    else:
        j.candidate_shed = True
        j.add(ReasonCode.SHED_READY, f"stop condition held {units.duration(in_state)}")
