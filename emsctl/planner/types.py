"""The planner's inputs and its plan: slots of FORECAST_SLOT_S from a slot boundary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from emsctl.model import FORECAST_SLOT_S, LoadId

SLOT = timedelta(seconds=FORECAST_SLOT_S)
#: One slot in hours (W x SLOT_H = Wh).
SLOT_H = FORECAST_SLOT_S / 3600.0


@dataclass(frozen=True, slots=True)
class BatteryModel:
    """The hybrid inverter and its battery as the plan sees them (Wh, W)."""

    capacity_wh: float
    reserve_wh: float
    max_charge_w: float
    max_discharge_w: float
    efficiency: float
    inverter_ac_w: float


@dataclass(frozen=True, slots=True)
class FlexLoad:
    """A load the plan places: `blocks[d]` runs of `block_slots` slots on local day d of the
    horizon (0: today), at least `gap_slots` apart."""

    load: LoadId
    power_w: float
    block_slots: int
    gap_slots: int
    blocks: tuple[int, ...]
    #: A run going on now: it holds the slots from the first on for this many.
    running_slots: int = 0
    #: The load's SOC gate as stored energy: a run starts only where the plan expects this.
    gate_wh: float = 0.0


@dataclass(frozen=True, slots=True)
class CarClaim:
    """A car waiting for the sun (rule 17): it has first claim on the spare energy before
    slot `until`, up to `need_wh`, at `power_w`."""

    power_w: float
    need_wh: float
    until: int


@dataclass(frozen=True, slots=True)
class PlanInput:
    """Everything one plan is made from. Per-slot tuples have the same length."""

    start: datetime
    pv_wh: tuple[float, ...]
    load_wh: tuple[float, ...]
    #: Local day of each slot, 0 for today.
    day: tuple[int, ...]
    stored_wh: float
    battery: BatteryModel
    loads: tuple[FlexLoad, ...]
    min_spare: float
    #: A run is placed only where the forecast surplus (PV - consumption) gives this share
    #: of the load's power: where the engine could start it (rule 19's start_fraction).
    start_fraction: float = 0.25
    #: Prices that decide between equally spare runs (clipped energy is worth nothing).
    import_eur_kwh: float = 0.35
    feed_in_eur_kwh: float = 0.08
    #: Cars charging by target that wait for surplus: served before any heat-pump run.
    cars: tuple[CarClaim, ...] = ()


@dataclass(frozen=True, slots=True)
class Block:
    """One planned run: `slots` slots from slot `first`; `spare_wh` of its energy is spare
    (would have been exported, curtailed or put into a battery that fills anyway)."""

    load: LoadId
    first: int
    slots: int
    spare_wh: float

    @property
    def last(self) -> int:
        return self.first + self.slots - 1


@dataclass(frozen=True, slots=True)
class Plan:
    """A plan made at `made_at` for the slots from `start`. Per-slot tuples describe the
    house with the planned blocks: expected SOC at each slot's end, grid and curtailment,
    and the energy still spare."""

    made_at: datetime
    start: datetime
    blocks: tuple[Block, ...]
    pv_wh: tuple[float, ...]
    load_wh: tuple[float, ...]
    soc_pct: tuple[float, ...]
    import_wh: tuple[float, ...]
    export_wh: tuple[float, ...]
    curtailed_wh: tuple[float, ...]
    spare_wh: tuple[float, ...]
    #: The first slot whose end finds the battery full (None: not in the horizon).
    full_slot: int | None

    def slot_of(self, at: datetime) -> int:
        """The index of the slot holding `at` (may lie outside the plan)."""
        return int((at - self.start).total_seconds() // FORECAST_SLOT_S)

    def slot_start(self, index: int) -> datetime:
        return self.start + index * SLOT

    def blocks_of(self, load: LoadId) -> list[Block]:
        return [b for b in self.blocks if b.load is load]
