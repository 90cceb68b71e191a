"""The battery over the plan's slots: self-consumption dispatch behind the inverter's AC limit,
and the energy each slot has to spare (what a load there costs nobody)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from emsctl.planner.types import SLOT_H, BatteryModel


@dataclass(slots=True)
class Flows:
    """Per slot, Wh: stored energy at the slot's end, import, export, curtailment."""

    stored: list[float]
    imported: list[float]
    exported: list[float]
    curtailed: list[float]


def simulate(
    pv: Sequence[float],
    load: Sequence[float],
    stored_wh: float,
    b: BatteryModel,
    first: int = 0,
    before: Flows | None = None,
) -> Flows:
    """Charge from surplus (and from DC PV the AC side cannot take), discharge on deficit.

    PV is DC: the inverter's AC output (PV - charge + discharge) is limited to
    `inverter_ac_w`, what neither the AC side nor the battery takes is curtailed. With
    `before` (the flows of the same inputs up to slot `first`), only the slots from `first`
    on are simulated again.
    """
    eta = b.efficiency
    ac_max = b.inverter_ac_w * SLOT_H
    ch_max = b.max_charge_w * SLOT_H
    dis_max = b.max_discharge_w * SLOT_H
    cap, reserve = b.capacity_wh, b.reserve_wh
    n = len(pv)
    if before is not None and first > 0:
        stored, imp = before.stored[:], before.imported[:]
        exp, cur = before.exported[:], before.curtailed[:]
        s = stored[first - 1]
    else:
        first = 0
        s = min(max(stored_wh, 0.0), cap)
        stored, imp, exp, cur = [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n
    for k in range(first, n):
        p, ld = pv[k], load[k]
        if p >= ld:
            room = max(0.0, (cap - s) / eta)
            # DC PV above the AC limit must go to the battery (or be curtailed).
            forced = max(0.0, p - ac_max)
            charge = min(max(p - ld, forced), ch_max, room)
            s += charge * eta
            ac = min(p - charge, ac_max)
            cur[k] = p - charge - ac
            if ac >= ld:
                exp[k], imp[k] = ac - ld, 0.0
            else:
                exp[k], imp[k] = 0.0, ld - ac
        else:
            deficit = ld - p
            avail = max(0.0, (s - reserve) * eta)
            dis = min(deficit, dis_max, avail, max(0.0, ac_max - p))
            s -= dis / eta
            imp[k], exp[k], cur[k] = deficit - dis, 0.0, 0.0
        stored[k] = s
    return Flows(stored, imp, exp, cur)


def spare(f: Flows, b: BatteryModel) -> list[float]:
    """Wh a load could take in each slot at no cost: the slot's own export and curtailment,
    plus what the battery would lose to spill later (before it next runs empty) and can give
    up without running empty before then."""
    stored, imported, exported, curtailed = f.stored, f.imported, f.exported, f.curtailed
    reserve = b.reserve_wh
    n = len(stored)
    out = [0.0] * n
    later = 0.0  # spill after slot k, until the battery next runs short
    reach = math.inf  # the least margin from slot k until the next slot that spills
    next_spill = 0.0
    for k in range(n - 1, -1, -1):
        margin = stored[k] - reserve
        margin = max(margin, 0.0)
        reach = margin if next_spill > 1e-9 or reach == math.inf else min(margin, reach)
        spill = exported[k] + curtailed[k]
        out[k] = spill + (later if later < reach else reach)
        later = 0.0 if imported[k] > 1e-9 else spill + later
        next_spill = spill
    return out
