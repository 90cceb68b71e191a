"""Rules 2 and 8, the surplus budget: which running loads the surplus still covers (running
loads first, no preemption), and what is left for loads that want to start; per phase where
the load's phase is measured."""

from __future__ import annotations

from collections.abc import Mapping

from emsctl import units
from emsctl.config import LoadConfig
from emsctl.engine.facts import Facts, Judgement
from emsctl.model import EMS_RUNNING, LoadId, ReasonCode, Snapshot


def own_power(j: Judgement, snapshot: Snapshot, compressor_taken: bool) -> tuple[float, bool]:
    """Power the load draws now by the EMS's best knowledge, and whether it used the compressor.

    The compressor serves both heat-pump loads: its power is counted once.
    """
    src = j.cfg.power_source
    if src == "meter" and j.status.reading.power_w is not None:
        return j.status.reading.power_w, compressor_taken
    plan = j.status.plan
    if src == "none" and plan is not None and plan.drawing is not None:
        # A wallbox without a meter whose draw charging by target estimates.
        return (j.cfg.nominal_w if plan.drawing else 0.0), compressor_taken
    if src == "compressor":
        if compressor_taken:
            return 0.0, True
        if snapshot.compressor_w is not None:
            return snapshot.compressor_w, True
        return j.cfg.nominal_w, True
    return j.cfg.nominal_w, compressor_taken


def phase_surplus(cfg: LoadConfig, snapshot: Snapshot) -> float | None:
    """Rule 8: export on the load's phase plus a third of battery charging (the hybrid
    inverter feeds all three phases evenly), or None when there is no per-phase data."""
    if cfg.phase is None:
        return None
    phase_w = snapshot.phase_w(cfg.phase)
    if phase_w is None:
        return None
    battery = snapshot.battery_w or 0.0
    return -phase_w + battery / 3.0


def phase_or_note(load: LoadId, cfg: LoadConfig, facts: Facts) -> float | None:
    """The load's phase surplus; a note for the log when its phase is set but not measured."""
    phase = phase_surplus(cfg, facts.snapshot)
    if cfg.phase is not None and phase is None:
        facts.notes.append(f"{load.value}: no {cfg.phase} data, judging the total export")
    return phase


def running_budget(js: Mapping[LoadId, Judgement], facts: Facts) -> None:
    """Pass: may each running load stay on the surplus? Sets `facts.budget` for the starts.

    A running load may use the surplus plus its own power and that of every running load
    below it; one that cannot be covered even with every lower one gone leaves, and the loads
    below are judged as if it had.
    """
    if not facts.fresh or facts.surplus is None:
        if not facts.failsafe:
            held = units.duration(facts.missing_for)
            for j in js.values():
                if j.status.state in EMS_RUNNING:
                    j.add(ReasonCode.STALE_DATA, f"no fresh grid/soc data for {held}; holding")
        return
    # The shared compressor is owned by the lowest-priority running heat-pump load: that is
    # the one shedding reaches first, and the compressor only stops once every heat-pump
    # load has gone, so a higher one must not look free to leave (or costly to keep).
    compressor_taken = False
    owns: dict[LoadId, float] = {}
    for load in reversed(facts.order):
        if js[load].status.state in EMS_RUNNING:
            owns[load], compressor_taken = own_power(js[load], facts.snapshot, compressor_taken)
    budget = facts.surplus + sum(owns.values())
    for load in (x for x in facts.order if x in owns):
        j, own = js[load], owns[load]
        # The phase is measured with the load running, like the total: what it may import
        # while running is max_import_w.
        phase = phase_or_note(load, j.cfg, facts)
        avail = budget if phase is None else min(budget, phase + own)
        tolerated = j.cfg.max_import_w
        word = j.status.planned
        if word is not None and word.on and word.tolerated_w > tolerated:
            # Rule 19: a planned run goes on while the surplus gives its planned start share.
            tolerated = word.tolerated_w
        if avail - own >= -tolerated:
            budget -= own
            j.add(ReasonCode.SURPLUS, f"surplus covers the load ({units.power(own)})")
        else:
            j.keep_ok = False
            label = "surplus" if avail == budget else f"{j.cfg.phase} surplus"
            j.add(
                ReasonCode.NO_SURPLUS,
                f"{label} {units.power(avail)} < load {units.power(own)} - tolerated import "
                f"{units.power(tolerated)}",
            )
    # What is left for loads that want to start is the surplus measured now: the power of a
    # running load that is leaving is not free until it has left (no start on it).
    facts.budget = facts.surplus
