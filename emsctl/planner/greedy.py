"""Placing the loads' runs: each load in priority order, each run where the most of its
energy is spare, as long as enough of it is; the house is simulated again after each run.

Chosen over an LP for its cost (a plan in a few milliseconds of pure Python, so that a
year's replay can plan every 15 minutes) and because its runs are whole: on/off blocks of at
least the minimum runtime, never more than the day's starts. docs/decision-logic.md (rule 19)
says what this leaves out.
"""

from __future__ import annotations

from datetime import datetime

from emsctl.planner.battery import Flows, simulate, spare
from emsctl.planner.types import SLOT_H, Block, CarClaim, FlexLoad, Plan, PlanInput


def make_plan(inp: PlanInput, made_at: datetime) -> Plan:
    """The plan for `inp`: blocks per load and day, and the house's expected flows."""
    load = list(inp.load_wh)
    busy = [False] * len(load)  # the compressor is one: heat-pump runs never overlap
    blocks: list[Block] = []
    for flex in inp.loads:
        if flex.running_slots > 0:
            size = min(flex.running_slots, len(load))
            blocks.append(Block(flex.load, 0, size, 0.0))
            for k in range(size):
                load[k] += flex.power_w * SLOT_H
                busy[k] = True
    flows = simulate(inp.pv_wh, load, inp.stored_wh, inp.battery)
    for car in inp.cars:
        flows = _reserve(car, load, flows, inp)
    for flex in inp.loads:
        for day, count in enumerate(flex.blocks):
            for _ in range(count):
                free = spare(flows, inp.battery)
                choices = _best(flex, day, free, busy, blocks, inp, flows.stored)
                if not choices:
                    break
                found, flows, load = _cheapest(choices, flex, load, flows, inp)
                blocks.append(found)
                for k in range(found.first, found.last + 1):
                    busy[k] = True
    return _plan(inp, made_at, blocks, load, flows)


def _reserve(car: CarClaim, load: list[float], flows: Flows, inp: PlanInput) -> Flows:
    """A waiting car's need, put into the slots before its deadline with the most spare
    energy: what the car keeper counts on when it waits for the sun is not planned away."""
    free = spare(flows, inp.battery)
    step = car.power_w * SLOT_H
    left = car.need_wh
    for k in sorted(range(min(car.until, len(free))), key=lambda k: -free[k]):
        if left <= 0 or free[k] <= 0:
            break
        take = min(step, free[k], left)
        load[k] += take
        left -= take
    return simulate(inp.pv_wh, load, inp.stored_wh, inp.battery)


def _cheapest(
    choices: list[Block], flex: FlexLoad, load: list[float], flows: Flows, inp: PlanInput
) -> tuple[Block, Flows, list[float]]:
    """Of equally spare runs, the one that leaves the house the cheapest (a run before noon
    can make room for PV the inverter would clip; at a tie, the later: heat made later is
    made warmer and lost less). Returns it with the house's flows and load with it."""
    energy = flex.power_w * SLOT_H
    best: tuple[float, Block, Flows, list[float]] | None = None
    for block in choices:
        trial = load[:]
        for k in range(block.first, block.last + 1):
            trial[k] += energy
        f = simulate(inp.pv_wh, trial, inp.stored_wh, inp.battery, block.first, flows)
        cost = (sum(f.imported) * inp.import_eur_kwh - sum(f.exported) * inp.feed_in_eur_kwh) / 1e3
        if best is None or cost <= best[0] + 1e-9:
            best = (cost, block, f, trial)
    assert best is not None
    return best[1], best[2], best[3]


def _best(
    flex: FlexLoad,
    day: int,
    free: list[float],
    busy: list[bool],
    placed: list[Block],
    inp: PlanInput,
    stored: list[float],
) -> list[Block]:
    """The blocks of `flex` on `day` with the most spare energy: the earliest and the latest
    of the nearly best (98 %), in time order; none if no block has `min_spare` of its
    energy spare."""
    size = flex.block_slots
    energy = flex.power_w * SLOT_H
    need = inp.min_spare * energy * size
    days = inp.day
    n = len(free)
    # Slots a block may not touch: another heat-pump run, or too close to one of its own.
    blocked = busy[:]
    for b in placed:
        if b.load is flex.load:
            for k in range(max(0, b.first - flex.gap_slots), min(n, b.last + flex.gap_slots + 1)):
                blocked[k] = True
    cover = [0.0] * (n + 1)  # prefix sums of the spare energy a block slot can use
    stop = [0] * (n + 1)  # prefix counts of blocked slots
    pv, base = inp.pv_wh, inp.load_wh
    startable = inp.start_fraction * energy
    for k in range(n):
        f = free[k]
        cover[k + 1] = cover[k] + (energy if f > energy else f)
        dark = pv[k] - base[k] < startable
        # The SOC gate (rule 1) at the slot's start: the engine would not start it below.
        low = (stored[k - 1] if k else inp.stored_wh) < flex.gate_wh
        stop[k + 1] = stop[k] + (1 if blocked[k] or dark or low or days[k] != day else 0)
    fits = [
        (first, cover[first + size] - cover[first])
        for first in range(0, n - size + 1)
        if stop[first + size] == stop[first] and cover[first + size] - cover[first] >= need
    ]
    if not fits:
        return []
    top = max(c for _, c in fits) * 0.98
    near = [first for first, c in fits if c >= top]
    picks = sorted({near[0], near[-1]})
    return [Block(flex.load, f, size, cover[f + size] - cover[f]) for f in picks]


def _plan(
    inp: PlanInput, made_at: datetime, blocks: list[Block], load: list[float], f: Flows
) -> Plan:
    cap = inp.battery.capacity_wh
    full = next((k for k, s in enumerate(f.stored) if s >= cap - 1.0), None)
    return Plan(
        made_at=made_at,
        start=inp.start,
        blocks=tuple(sorted(blocks, key=lambda b: (b.first, b.load))),
        pv_wh=inp.pv_wh,
        load_wh=tuple(load),
        soc_pct=tuple(100.0 * s / cap for s in f.stored),
        import_wh=tuple(f.imported),
        export_wh=tuple(f.exported),
        curtailed_wh=tuple(f.curtailed),
        spare_wh=tuple(spare(f, inp.battery)),
        full_slot=full,
    )
