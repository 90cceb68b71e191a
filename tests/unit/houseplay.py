"""A small fake house for playing whole situations through the real Site minute by minute.

The plant keeps the relays (they follow the Site's commands, or a person's hand), computes the
grid from a PV and house-load profile minus what the relays switched on, and takes the SOC
from a profile, so a test can say exactly when a gate is crossed. Time really travels:
`play` runs under freezegun and reads `emsctl.clock.now()` every minute.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from freezegun import freeze_time

from emsctl import clock
from emsctl.config import Config
from emsctl.model import Command, LoadId, LoadReading, LoadStatus, Snapshot, State, Transition
from emsctl.site import Site

SG, DHW, WA, WB = LoadId.SG_READY, LoadId.DHW, LoadId.WB_A, LoadId.WB_B

Profile = Callable[[datetime], float]
Action = Callable[["Site", "Plant", datetime], None]


def const(value: float) -> Profile:
    return lambda _t: value


def steps(first: float, changes: Mapping[time, float]) -> Profile:
    """`first` until the first change, then each value from its (UTC) time of day on."""
    ordered = sorted(changes.items())

    def at(t: datetime) -> float:
        value = first
        for when, v in ordered:
            if t.time() >= when:
                value = v
        return value

    return at


def between(start: time, end: time) -> Callable[[datetime], bool]:
    """True from `start` (inclusive) to `end` (exclusive), UTC time of day."""
    return lambda t: start <= t.time() < end


def never(_t: datetime) -> bool:
    return False


@dataclass
class Plant:
    """The house around the EMS. Powers in W, positive = drawn; the SOC is a profile."""

    config: Config
    pv_w: Profile = field(default_factory=lambda: const(0.0))
    house_w: Profile = field(default_factory=lambda: const(300.0))
    soc_pct: Profile = field(default_factory=lambda: const(60.0))
    outdoor_c: Profile = field(default_factory=lambda: const(5.0))
    #: The compressor while SG-Ready or the DHW boost is on (given the time).
    compressor_on_w: Profile = field(default_factory=lambda: const(2000.0))
    #: What a car on each wallbox draws while its relay is on.
    car_a_w: Profile = field(default_factory=lambda: const(2000.0))
    car_b_w: Profile = field(default_factory=lambda: const(4000.0))
    #: When grid and SOC readings are missing (stale in Prometheus).
    stale: Callable[[datetime], bool] = never
    #: Publish grid_l1_w..grid_l3_w; single-phase loads and the house's share per phase.
    per_phase: bool = False
    load_phase: dict[LoadId, int] = field(default_factory=lambda: {WA: 1})
    house_share: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)
    max_battery_w: float = 4000.0
    relays: dict[LoadId, bool] = field(default_factory=lambda: dict.fromkeys(LoadId, False))
    sources: dict[LoadId, str | None] = field(default_factory=lambda: dict.fromkeys(LoadId))

    # -- the physics -----------------------------------------------------------------------

    def compressor_w(self, now: datetime) -> float:
        return self.compressor_on_w(now) if (self.relays[SG] or self.relays[DHW]) else 0.0

    def load_w(self, load: LoadId, now: datetime) -> float:
        if load is WA:
            return self.car_a_w(now) if self.relays[WA] else 0.0
        if load is WB:
            return self.car_b_w(now) if self.relays[WB] else 0.0
        return 0.0  # the heat-pump loads draw through the shared compressor

    def snapshot(self, now: datetime) -> Snapshot:
        pv = self.pv_w(now)
        house = self.house_w(now)
        compressor = self.compressor_w(now)
        wallboxes = {x: self.load_w(x, now) for x in (WA, WB)}
        consumption = house + compressor + sum(wallboxes.values())
        net = pv - consumption
        battery = max(-self.max_battery_w, min(self.max_battery_w, net))  # + = charging
        grid = consumption - pv + battery
        phases: list[float | None] = [None, None, None]
        if self.per_phase:
            for i in range(3):
                single = sum(w for x, w in wallboxes.items() if self.load_phase.get(x) == i + 1)
                spread = sum(w for x, w in wallboxes.items() if x not in self.load_phase)
                phases[i] = (
                    house * self.house_share[i] + single + (spread + compressor - pv + battery) / 3
                )
        stale = self.stale(now)
        return Snapshot(
            at=now,
            grid_w=None if stale else grid,
            grid_l1_w=None if stale else phases[0],
            grid_l2_w=None if stale else phases[1],
            grid_l3_w=None if stale else phases[2],
            soc_pct=None if stale else self.soc_pct(now),
            pv_w=pv,
            battery_w=battery,
            compressor_w=compressor,
            outdoor_c=self.outdoor_c(now),
        )

    def readings(self, now: datetime) -> dict[LoadId, LoadReading]:
        out = {}
        for load in LoadId:
            power = self.load_w(load, now) if load is WA else None
            out[load] = LoadReading(
                relay_on=self.relays[load], power_w=power, source=self.sources[load]
            )
        return out

    # -- hands on the relays -----------------------------------------------------------------

    def apply(self, cmd: Command) -> LoadReading:
        """The device does what the EMS asked and reports back."""
        self.relays[cmd.load] = cmd.on
        self.sources[cmd.load] = "http"
        return LoadReading(relay_on=cmd.on, source="http")

    def press(self, load: LoadId, on: bool) -> None:
        """A person switches the device at the button."""
        self.relays[load] = on
        self.sources[load] = "button"


@dataclass
class Play:
    """What happened during a play: transitions and the commands that switched something."""

    transitions: list[Transition] = field(default_factory=list)
    commands: list[tuple[datetime, Command]] = field(default_factory=list)
    renewals: list[tuple[datetime, Command]] = field(default_factory=list)

    def on_transition(self, t: Transition) -> None:
        self.transitions.append(t)

    def switched_on(self, load: LoadId) -> list[time]:
        """UTC times at which the EMS switched the load on."""
        return [at.time() for at, c in self.commands if c.load is load and c.on]

    def switched_off(self, load: LoadId) -> list[time]:
        return [at.time() for at, c in self.commands if c.load is load and not c.on]

    def moves(self, load: LoadId) -> list[tuple[time, str, State]]:
        """(time, event, new state) of each transition of the load."""
        return [(t.at.time(), t.event, t.target) for t in self.transitions if t.load is load]

    def when(self, load: LoadId, event: str) -> list[time]:
        return [t.at.time() for t in self.transitions if t.load is load and t.event == event]


def play(
    plant: Plant,
    start: datetime,
    until: time,
    *,
    restored: Mapping[LoadId, LoadStatus] | None = None,
    actions: Mapping[time, Action] | None = None,
    record: Play | None = None,
) -> tuple[Site, Play]:
    """Run a Site against the plant once a minute from `start` to `until` (UTC, inclusive).

    At each minute, first the actions planned for it (a person, the owner), then one tick:
    snapshot and readings, `Site.step`, every command applied to the plant and confirmed.
    """
    rec = record or Play()
    actions = actions or {}
    with freeze_time(start) as frozen:
        site = Site(plant.config, clock.now(), restored=restored, listeners=[rec])
        while True:
            now = clock.now()
            if now.time() > until:
                break
            action = actions.get(now.time().replace(second=0, microsecond=0))
            if action is not None:
                action(site, plant, now)
            result = site.step(plant.snapshot(now), plant.readings(now), now)
            for cmd in result.commands:
                (rec.renewals if cmd.renew else rec.commands).append((now, cmd))
                site.confirm(cmd.load, cmd, plant.apply(cmd), None, now)
            frozen.tick(timedelta(minutes=1))
    return site, rec


def running(load: LoadId, since: datetime, *, on_since: datetime | None = None) -> LoadStatus:
    """A restored status: the EMS has been running `load` (confirmed) since `since`."""
    return LoadStatus(
        load=load, state=State.ON, since=since, on_since=on_since or since, commanded_on=True
    )
