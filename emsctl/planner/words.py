"""What a plan says of one load now, in the engine's terms (a PlanWord) and a person's."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from emsctl.model import LoadId, PlanWord
from emsctl.planner.types import SLOT_H, Block, Plan


def word(
    plan: Plan,
    load: LoadId,
    now: datetime,
    *,
    nominal_w: float,
    start_fraction: float,
    min_spare: float,
    tz: ZoneInfo,
) -> PlanWord | None:
    """The plan's word on `load` at `now`; None when `now` lies outside the plan."""
    i = plan.slot_of(now)
    if i < 0 or i >= len(plan.spare_wh):
        return None
    start_w = start_fraction * nominal_w
    blocks = plan.blocks_of(load)
    for b in blocks:
        if b.first <= i <= b.last:
            text = f"planned {_span(plan, b, tz)}: {_why(plan, b, tz)}"
            return PlanWord(True, False, start_w, nominal_w - start_w, text)
    if plan.spare_wh[i] >= min_spare * nominal_w * SLOT_H:
        return PlanWord(False, False, start_w, 0.0, "plan: energy to spare now")
    later = [b for b in blocks if b.first > i and plan.slot_start(b.first).date() == now.date()]
    if later:
        text = f"plan: the battery needs the surplus now; planned {_span(plan, later[0], tz)}"
    elif plan.full_slot is None:
        best = max(plan.soc_pct, default=0.0)
        text = f"plan: the battery needs the surplus (it will not fill, {best:.0f}% at best)"
    else:
        at = _hhmm(plan, plan.full_slot + 1, tz)
        text = f"plan: the battery needs the surplus now (full by {at})"
    return PlanWord(False, True, start_w, 0.0, text)


def _hhmm(plan: Plan, slot: int, tz: ZoneInfo) -> str:
    return plan.slot_start(slot).astimezone(tz).strftime("%H:%M")


def _span(plan: Plan, b: Block, tz: ZoneInfo) -> str:
    return f"{_hhmm(plan, b.first, tz)}-{_hhmm(plan, b.last + 1, tz)}"


def _why(plan: Plan, b: Block, tz: ZoneInfo) -> str:
    full = plan.full_slot
    if full is not None and full <= b.last + 8:
        return f"battery full by {_hhmm(plan, full + 1, tz)} anyway"
    if any(plan.curtailed_wh[k] > 0 for k in range(b.first, b.last + 1)):
        return "the inverter clips the sun then"
    return "the sunniest hours with energy to spare"
