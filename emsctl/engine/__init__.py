"""The pure decision engine: (snapshot, load statuses, config, now) -> a Verdict per load.

No I/O, no wall clock, no globals. `evaluate` runs a short sequence of named passes over one
working record per load (`Judgement`); each rule of docs/decision-logic.md lives in one
module: the budget (rules 2, 8), keeping a running load (1, 7, 9, 15), starts (1-4, 6-9, 13,
15), people and overrides (5, 7), the running load's transition (3, 6, 10, 11, 13), and the
tick's start and shed slots with the exclusion over their outcome (4, 7). The machines only
check the timers the engine relies on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from emsctl.config import Config
from emsctl.engine.budget import own_power, phase_surplus, running_budget
from emsctl.engine.facts import (
    DATA_MISSING,
    Facts,
    Judgement,
    effective_gate,
    elapsed,
    forecast_shift,
    idle_key,
    no_car_key,
    read_facts,
)
from emsctl.engine.keep import keep_running
from emsctl.engine.people import manual_change, people, relay_expected
from emsctl.engine.running import running
from emsctl.engine.slots import hand_out_slots, note_forecast
from emsctl.engine.starts import judge_starts
from emsctl.model import Decision, LoadId, LoadStatus, Snapshot, Verdict

Pass = Callable[[Mapping[LoadId, Judgement], Facts], None]

#: The passes in the order they run; each reads what the earlier ones wrote.
PASSES: tuple[Pass, ...] = (
    running_budget,  # may each running load stay on the surplus? what is left to start on
    keep_running,  # the other stop conditions of a running load
    judge_starts,  # may each load that is off start? which are candidates for the slot
    people,  # a lost device, a person's hand, the owner's overrides decide first
    running,  # the rules' transition of each load nobody decided
    hand_out_slots,  # one start and one shed per tick; the exclusion over the outcome
    note_forecast,  # the forecast's shifted gate, where it decides
)


def evaluate(
    snapshot: Snapshot,
    loads: Mapping[LoadId, LoadStatus],
    config: Config,
    now: datetime,
    watch: Mapping[str, datetime] | None = None,
) -> Decision:
    """Judge every enabled load. `watch` is the previous Decision's `watch` (empty at start)."""
    facts = read_facts(snapshot, loads, config, now, watch or {})
    js = {
        load: Judgement(
            load=load,
            status=loads[load],
            cfg=config.loads.get(load),
            gate=effective_gate(config.loads.get(load), config, facts.shift),
        )
        for load in facts.order
    }
    for run in PASSES:
        run(js, facts)
    verdicts = {
        load: Verdict(
            load=load,
            event=j.event,
            start_ok=j.start_ok,
            keep_ok=j.keep_ok,
            reasons=tuple(j.reasons),
            codes=tuple(j.codes),
            gate_pct=j.gate,
            surplus_w=facts.surplus,
            release=j.release,
            cooldown_s=j.cooldown_s,
            hold_until=j.hold_until,
        )
        for load, j in js.items()
    }
    return Decision(
        verdicts=verdicts, watch=facts.watch, surplus_w=facts.surplus, notes=tuple(facts.notes)
    )


__all__ = [
    "DATA_MISSING",
    "PASSES",
    "effective_gate",
    "elapsed",
    "evaluate",
    "forecast_shift",
    "idle_key",
    "manual_change",
    "no_car_key",
    "own_power",
    "phase_surplus",
    "relay_expected",
]
