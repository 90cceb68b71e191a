"""Pass: rule 4, one start and one shed per tick, not while the last switch settles
(`control.settle_s`); then rule 7 over the tick's outcome, and the notes of loads that wait."""

from __future__ import annotations

from collections.abc import Mapping

from emsctl import units
from emsctl.engine import exclusion
from emsctl.engine.facts import Facts, Judgement
from emsctl.model import EMS_RUNNING, Event, LoadId, ReasonCode, Release, State

#: Events that come from a person, the owner or a device that needs one.
BY_PEOPLE = (Event.DETECT_MANUAL, Event.LOSE, Event.FORCE_ON, Event.FORCE_OFF, Event.AUTO)


def hand_out_slots(js: Mapping[LoadId, Judgement], facts: Facts) -> None:
    # A load that has its transition already (a person's hand, the owner's override, a lost
    # device, a release) does not compete for the start or shed slot.
    for j in js.values():
        if j.event is not None:
            j.candidate_start = j.candidate_shed = j.failsafe_shed = False
    if facts.settle_note is None:
        starter = next((js[x] for x in facts.order if js[x].candidate_start), None)
        if starter is not None:
            starter.event = Event.START
        shed = next(
            (js[x] for x in reversed(facts.order) if js[x].candidate_shed or js[x].failsafe_shed),
            None,
        )
        if shed is not None:
            shed.event = Event.SHED
            if shed.failsafe_shed:
                shed.release = Release.FAILSAFE
    exclusion.enforce(js, facts)
    for j in js.values():
        if j.candidate_start and j.event is not Event.START:
            _wait(j, facts, "waiting: another load takes this tick's start")
        if (j.candidate_shed or j.failsafe_shed) and j.event is not Event.SHED:
            _wait(j, facts, "waiting: another load is shed this tick")


def _wait(j: Judgement, facts: Facts, other: str) -> None:
    """Why a candidate did not get its slot: the last switch settles, or `other` load has it."""
    if facts.settle_note is not None:
        j.add(ReasonCode.SETTLING, facts.settle_note)
    else:
        j.add(ReasonCode.WAITING_FOR_SLOT, other)


def note_forecast(js: Mapping[LoadId, Judgement], facts: Facts) -> None:
    """Rule 14's reason, where the shifted gate is what decides: not for a person's or the
    owner's doing."""
    if not facts.shift_reason:
        return
    for j in js.values():
        automatic = j.status.state in (State.OFF, State.ARMING, *EMS_RUNNING)
        if j.gate != j.cfg.gate_pct and automatic and j.event not in BY_PEOPLE:
            j.add(
                ReasonCode.FORECAST,
                f"{facts.shift_reason}: gate {units.percent(j.cfg.gate_pct)} -> "
                f"{units.percent(j.gate)}",
            )
