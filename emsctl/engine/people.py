"""Pass: what people and devices decide before any rule is asked — a device that needs a
person (unavailable), a person's hand on a device (manual hold), and the owner's overrides
(Force on / Force off, and their end). Rule 5 and docs/decision-logic.md "People first"."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from emsctl import units
from emsctl.engine import exclusion
from emsctl.engine.facts import Facts, Judgement, elapsed
from emsctl.model import (
    EMS_RUNNING,
    OUTPUT_ON,
    Event,
    LoadId,
    LoadStatus,
    Mode,
    ReasonCode,
    Release,
    State,
)


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


def people(js: Mapping[LoadId, Judgement], facts: Facts) -> None:
    """Decide the loads that a device, a person or the owner decides this tick; then make
    way for an owner's Force on that an exclusive peer blocks."""
    waiting: dict[LoadId, list[LoadId]] = {}
    for load in facts.order:
        if not _device_and_hand(js[load], facts):
            blocked_by = _override(load, js, facts)
            if blocked_by:
                waiting[load] = blocked_by
    for load, blocked_by in waiting.items():
        _make_way(load, blocked_by, js)


def _device_and_hand(j: Judgement, facts: Facts) -> bool:
    """A device that needs a person, or a person's hand: their reason is the only one left."""
    st = j.status
    if not st.reading.available:
        j.decide(
            Event.LOSE if st.state is not State.UNAVAILABLE else None,
            ReasonCode.UNAVAILABLE,
            st.reading.error or "device unavailable",
        )
        return True
    if st.state is State.UNAVAILABLE:
        still = st.reading.relay_on is True and st.commanded_on is True
        j.decided = True
        j.event = Event.REGAIN
        j.add(
            ReasonCode.AVAILABLE_AGAIN,
            "device available again" + (", still running" if still else ""),
        )
        return True
    hold_s = facts.config.control.manual_hold_s
    manual = manual_change(st)
    if manual is not None:
        j.decide(
            Event.DETECT_MANUAL,
            ReasonCode.MANUAL,
            f"{manual}; leaving it alone for {units.duration(hold_s)}",
        )
        j.hold_until = facts.now + timedelta(seconds=hold_s)
        return True
    if st.state is not State.MANUAL:
        return False
    j.decided = True
    # A hold restored without its end lasts manual_hold_s from when it began.
    until = st.manual_until or st.since + timedelta(seconds=hold_s)
    if facts.now < until:
        left = units.duration(elapsed(facts.now, until))
        j.add(ReasonCode.MANUAL, f"manual: EMS leaves it alone ({left} left)")
    elif not st.reading.reachable:
        # The load is adopted as the device is; an unreadable device is not "off".
        j.add(
            ReasonCode.UNREACHABLE,
            "manual hold expired; waiting for a reading of the device "
            f"({st.reading.error or 'no reading'})",
        )
    else:
        j.event = Event.MANUAL_END
        j.add(ReasonCode.MANUAL_ENDED, "manual hold expired")
    return True


def _override(load: LoadId, js: Mapping[LoadId, Judgement], facts: Facts) -> list[LoadId]:
    """The owner's Force on / Force off, and the return to automatic when it ends. Returns
    the exclusive peers a Force on waits for."""
    j = js[load]
    st = j.status
    ov = st.override if st.override is not None and st.override.active(facts.now) else None
    if ov is None:
        _override_ended(j, facts)
        return []
    j.decided = True
    # A wallbox charging in a window exempt from the exclusion neither waits for its peer
    # nor makes it stop, as in automatic operation (rule 15).
    blocked_by = exclusion.peers_on(load, js, facts, exempt_peers=False)
    if ov.mode is Mode.FORCE_OFF:
        if st.state is not State.FORCED_OFF:
            j.event = Event.FORCE_OFF
        j.add(ReasonCode.FORCED_OFF, "forced off by the owner")
    elif facts.brake and not facts.config.control.force_beats_brake:
        if st.state in OUTPUT_ON:
            j.event = Event.BRAKE
            j.release = Release.BRAKE
        j.add(ReasonCode.BRAKE, f"force on held back: {facts.brake_reason}")
    elif st.state is State.FORCED_ON:
        j.add(ReasonCode.FORCED_ON, "forced on by the owner")
    elif blocked_by:
        names = ", ".join(p.value for p in blocked_by)
        j.add(ReasonCode.EXCLUSION, f"force on waits: exclusive with {names}")
        return blocked_by
    else:
        j.event = Event.FORCE_ON
        j.add(ReasonCode.FORCED_ON, "forced on by the owner")
    return []


def _override_ended(j: Judgement, facts: Facts) -> None:
    st = j.status
    if st.state not in (State.FORCED_ON, State.FORCED_OFF):
        return
    j.decided = True
    if facts.brake and st.state is State.FORCED_ON:
        # Adopting it as `on` would only brake it next tick.
        j.event = Event.BRAKE
        j.release = Release.BRAKE
        j.add(ReasonCode.BRAKE, f"override ended; {facts.brake_reason}")
    else:
        j.event = Event.AUTO
        j.add(ReasonCode.OVERRIDE_ENDED, "override ended")


def _make_way(load: LoadId, blocked_by: list[LoadId], js: Mapping[LoadId, Judgement]) -> None:
    """An exclusive peer the EMS runs stops at once for the owner's Force on (rule 7). A peer
    a person, the owner or a lost device decides keeps its own transition."""
    for peer in blocked_by:
        pj = js[peer]
        if pj.status.state in EMS_RUNNING and not pj.decided:
            pj.event = Event.BRAKE
            pj.release = Release.EXCLUSION
            pj.add(ReasonCode.EXCLUSION, f"making way for {load.value}, forced on by the owner")
