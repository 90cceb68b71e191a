"""The KPIs of a simulated run (energy flows, ratios, cost, per-load switching, cars, comfort)
and their side-by-side presentation; definitions in docs/simulator.md.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from emsctl.config import TariffConfig
from emsctl.model import LoadId
from emsctl.sim.plant import Plant

if TYPE_CHECKING:
    from emsctl.sim.optimum import OptimumResult

#: The run that `gap_captured` measures from (0 %).
BASELINE = "baseline"


@dataclass(frozen=True, slots=True)
class LoadKpi:
    """One load's output over a run: hours on, energy drawn while on, switch-ons, and cycles
    that ended before the load's minimum runtime."""

    runtime_h: float
    energy_kwh: float
    switch_ons: int
    short_cycles: int
    #: Cycles shorter than the minimum runtime that ended by an early release or the brake
    #: (which the rules allow; not counted in short_cycles).
    released_early: int = 0
    #: The most switch-ons on one local day (rule 18's max_starts_per_day bounds the rules').
    max_switch_ons_per_day: int = 0


@dataclass(frozen=True, slots=True)
class CarKpi:
    """One wallbox's car over a run: its sessions (plug-ins), the energy it took and how much
    of that the PV covered, and the sessions that left short (targets missed)."""

    sessions: int
    delivered_kwh: float
    from_surplus_kwh: float
    missed: int
    missed_kwh: float


@dataclass(frozen=True, slots=True)
class Kpis:
    """One run's figures. Energies kWh, ratios 0..1, money EUR. The balance
    pv + import = house + heat_pump + wallbox + export + curtailed + battery_delta
    + battery_loss holds to rounding."""

    pv_kwh: float
    house_kwh: float
    heat_pump_kwh: float
    wallbox_kwh: float
    import_kwh: float
    export_kwh: float
    curtailed_kwh: float
    battery_delta_kwh: float
    battery_loss_kwh: float
    self_consumption: float
    autarky: float
    cost_eur: float
    cost_with_unmet_eur: float
    car_wanted_kwh: float
    car_delivered_kwh: float
    car_unmet_kwh: float
    heating_comfort_violation_min: int
    dhw_comfort_violation_min: int
    loads: Mapping[str, LoadKpi] = field(default_factory=dict)
    #: Part of heat_pump_kwh: the backup heater holding minimum temperatures.
    backup_heater_kwh: float = 0.0
    #: Energy still wanted by cars plugged in when the run ended (bought at the import
    #: price in cost_with_unmet_eur: a deferred charge is not free).
    car_pending_kwh: float = 0.0
    #: Sessions that left with energy still wanted, per wallbox's car.
    cars_missed: dict[str, int] = field(default_factory=dict)
    #: Per wallbox's car: sessions, energy, from surplus, missed (CarKpi).
    cars: Mapping[str, CarKpi] = field(default_factory=dict)

    def balance_error_kwh(self) -> float:
        """Left side minus right side of the energy balance (0 up to rounding)."""
        return (self.pv_kwh + self.import_kwh) - (
            self.house_kwh
            + self.heat_pump_kwh
            + self.wallbox_kwh
            + self.export_kwh
            + self.curtailed_kwh
            + self.battery_delta_kwh
            + self.battery_loss_kwh
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _most_in_a_day(minutes: list[int], plant: Plant) -> int:
    """The most of these scenario minutes that fall on one local day."""
    tz = plant.config.control.tz
    start = plant.scenario.start
    days = Counter((start + timedelta(minutes=m)).astimezone(tz).date() for m in minutes)
    return max(days.values(), default=0)


@dataclass(frozen=True, slots=True)
class Ratios:
    """The figures derived from a run's energies, defined once for the replay's runs and the
    optimum, so that the share of the gap compares like with like."""

    self_consumption: float
    autarky: float
    cost_eur: float
    cost_with_unmet_eur: float


def ratios(
    tariff: TariffConfig,
    *,
    pv: float,
    imported: float,
    exported: float,
    curtailed: float,
    consumption: float,
    unmet: float,
    pending: float,
) -> Ratios:
    """Self-consumption, autarky and cost from energies in kWh. Car energy a car lacked when
    it left costs `unmet_car_eur_kwh`; energy still wanted at the end, the import price."""
    cost = imported * tariff.import_eur_kwh - exported * tariff.feed_in_eur_kwh
    return Ratios(
        self_consumption=(pv - exported - curtailed) / pv if pv > 0 else 0.0,
        autarky=1.0 - imported / consumption if consumption > 0 else 0.0,
        cost_eur=cost,
        cost_with_unmet_eur=cost
        + unmet * tariff.unmet_car_eur_kwh
        + pending * tariff.import_eur_kwh,
    )


def kpis(plant: Plant, tariff: TariffConfig) -> Kpis:
    """The KPIs of a plant after its run."""
    t = plant.totals
    k = 1e-3
    pv = t.pv * k
    imp = t.imported * k
    exp = t.exported * k
    curt = t.curtailed * k
    consumption = (t.house + t.heat_pump + t.wallbox) * k
    # What cars lacked when they left; a car still plugged in at the end may yet get what it
    # wants, at the import price at worst.
    unmet = sum(car.missed_wh for car in plant.cars.values()) * k
    pending = (plant.car_a_left_wh + plant.car_b_left_wh) * k
    r = ratios(
        tariff,
        pv=pv,
        imported=imp,
        exported=exp,
        curtailed=curt,
        consumption=consumption,
        unmet=unmet,
        pending=pending,
    )
    loads = {
        load.value: LoadKpi(
            runtime_h=tally.minutes / 60.0,
            energy_kwh=tally.energy_wh * k,
            switch_ons=tally.switch_ons,
            short_cycles=tally.short_cycles,
            released_early=tally.released_early,
            max_switch_ons_per_day=_most_in_a_day(tally.on_minutes, plant),
        )
        for load, tally in plant.tallies.items()
    }
    return Kpis(
        pv_kwh=pv,
        house_kwh=t.house * k,
        heat_pump_kwh=t.heat_pump * k,
        wallbox_kwh=t.wallbox * k,
        import_kwh=imp,
        export_kwh=exp,
        curtailed_kwh=curt,
        battery_delta_kwh=(plant.stored_wh - plant.initial_stored_wh) * k,
        battery_loss_kwh=t.battery_loss * k,
        self_consumption=r.self_consumption,
        autarky=r.autarky,
        cost_eur=r.cost_eur,
        cost_with_unmet_eur=r.cost_with_unmet_eur,
        car_wanted_kwh=t.car_wanted * k,
        car_delivered_kwh=t.car_delivered * k,
        car_unmet_kwh=unmet,
        car_pending_kwh=pending,
        cars_missed={load.value: len(car.missed) for load, car in plant.cars.items()},
        cars={
            load.value: CarKpi(
                sessions=car.sessions,
                delivered_kwh=car.delivered_wh * k,
                from_surplus_kwh=car.solar_wh * k,
                missed=len(car.missed),
                missed_kwh=car.missed_wh * k,
            )
            for load, car in plant.cars.items()
        },
        heating_comfort_violation_min=t.heating_violation_min,
        dhw_comfort_violation_min=t.dhw_violation_min,
        loads=loads,
        backup_heater_kwh=t.backup * k,
    )


# --------------------------------------------------------------------------- presentation


@dataclass(frozen=True, slots=True)
class Report:
    """EMS and baseline on one scenario (the JSON written by `emsctl simulate --json`)."""

    scenario: str
    minutes: int
    runs: Mapping[str, Kpis]
    #: Wall time per run, seconds (not part of the JSON's comparison figures).
    wall_s: Mapping[str, float] = field(default_factory=dict)
    #: The perfect-foresight optimum of the same plant (`emsctl simulate --optimum`).
    optimum: OptimumResult | None = None

    def gap_captured(self) -> dict[str, float | None]:
        """Per run, its share of the cost gap between the baseline and the optimum:
        (baseline - run) / (baseline - optimum), costs including unmet car energy. Empty
        without an optimum; None where the gap is not positive."""
        base = self.runs.get(BASELINE)
        if self.optimum is None or base is None:
            return {}
        gap = base.cost_with_unmet_eur - self.optimum.cost_with_unmet_eur
        return {
            name: (base.cost_with_unmet_eur - k.cost_with_unmet_eur) / gap if gap > 1e-9 else None
            for name, k in self.runs.items()
        }

    def to_json(self) -> dict[str, Any]:
        runs = {name: k.to_json() for name, k in self.runs.items()}
        out: dict[str, Any] = {"scenario": self.scenario, "minutes": self.minutes, "runs": runs}
        if self.optimum is not None:
            for name, share in self.gap_captured().items():
                runs[name]["gap_captured"] = share
            out["optimum"] = self.optimum.to_json()
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"


# (label, attribute, format) rows of the side-by-side table; None separates sections.
_ROWS: tuple[tuple[str, str, str] | None, ...] = (
    ("PV potential kWh", "pv_kwh", "{:,.1f}"),
    ("house kWh", "house_kwh", "{:,.1f}"),
    ("heat pump kWh", "heat_pump_kwh", "{:,.1f}"),
    ("  of which backup heater kWh", "backup_heater_kwh", "{:,.1f}"),
    ("wallboxes kWh", "wallbox_kwh", "{:,.1f}"),
    ("import kWh", "import_kwh", "{:,.1f}"),
    ("export kWh", "export_kwh", "{:,.1f}"),
    ("curtailed kWh", "curtailed_kwh", "{:,.1f}"),
    ("battery change kWh", "battery_delta_kwh", "{:+,.2f}"),
    ("battery losses kWh", "battery_loss_kwh", "{:,.1f}"),
    None,
    ("self-consumption", "self_consumption", "{:.3f}"),
    ("autarky", "autarky", "{:.3f}"),
    ("cost EUR", "cost_eur", "{:,.2f}"),
    ("cost incl. unmet car energy EUR", "cost_with_unmet_eur", "{:,.2f}"),
    None,
    ("car energy wanted kWh", "car_wanted_kwh", "{:,.1f}"),
    ("car energy delivered kWh", "car_delivered_kwh", "{:,.1f}"),
    ("car energy unmet kWh", "car_unmet_kwh", "{:,.1f}"),
    ("car energy still wanted at the end kWh", "car_pending_kwh", "{:,.1f}"),
    ("heating below minimum, min", "heating_comfort_violation_min", "{:,d}"),
    ("DHW below minimum, min", "dhw_comfort_violation_min", "{:,d}"),
)
_CAR_ROWS: tuple[tuple[str, str, str], ...] = (
    ("sessions", "sessions", "{:,d}"),
    ("energy kWh", "delivered_kwh", "{:,.1f}"),
    ("  from surplus kWh", "from_surplus_kwh", "{:,.1f}"),
    ("left short (targets missed)", "missed", "{:,d}"),
    ("  short by kWh", "missed_kwh", "{:,.1f}"),
)
_LOAD_ROWS: tuple[tuple[str, str, str], ...] = (
    ("runtime h", "runtime_h", "{:,.1f}"),
    ("energy kWh", "energy_kwh", "{:,.1f}"),
    ("switch-ons", "switch_ons", "{:,d}"),
    ("  most in one day", "max_switch_ons_per_day", "{:,d}"),
    ("cycles < min runtime", "short_cycles", "{:,d}"),
    ("  ended early by a release", "released_early", "{:,d}"),
)


def table_rows(report: Report) -> list[list[str]]:
    """The side-by-side table as text cells: label, one column per run, and the difference
    of the first run to the second where both are numbers."""
    names = list(report.runs)
    runs = [report.runs[n] for n in names]
    rows: list[list[str]] = [["", *names, "difference" if len(runs) == 2 else ""]]

    def add(label: str, values: list[float | int], fmt: str) -> None:
        cells = [fmt.format(v) for v in values]
        diff = ""
        if len(values) == 2:
            d = values[0] - values[1]
            diff = fmt.replace("{:", "{:+").replace("{:++", "{:+").format(d)
        rows.append([label, *cells, diff])

    for row in _ROWS:
        if row is None:
            rows.append([])
            continue
        label, attr, fmt = row
        add(label, [getattr(k, attr) for k in runs], fmt)
    for load in LoadId:
        rows.append([])
        rows.append([load.value])
        for label, attr, fmt in _LOAD_ROWS:
            add(f"  {label}", [getattr(k.loads[load.value], attr) for k in runs], fmt)
        if all(load.value in k.cars for k in runs):
            rows.append([f"  {load.value}'s car"])
            for label, attr, fmt in _CAR_ROWS:
                add(f"    {label}", [getattr(k.cars[load.value], attr) for k in runs], fmt)
    return rows


#: (label, attribute, format) rows of the optimum's section, for the runs and the optimum.
_OPTIMUM_ROWS: tuple[tuple[str, str, str], ...] = (
    ("import kWh", "import_kwh", "{:,.1f}"),
    ("export kWh", "export_kwh", "{:,.1f}"),
    ("curtailed kWh", "curtailed_kwh", "{:,.1f}"),
    ("heat pump kWh", "heat_pump_kwh", "{:,.1f}"),
    ("battery losses kWh", "battery_loss_kwh", "{:,.1f}"),
    ("self-consumption", "self_consumption", "{:.3f}"),
    ("autarky", "autarky", "{:.3f}"),
    ("cost EUR", "cost_eur", "{:,.2f}"),
    ("cost incl. unmet car energy EUR", "cost_with_unmet_eur", "{:,.2f}"),
    ("car energy delivered kWh", "car_delivered_kwh", "{:,.1f}"),
    ("car energy unmet kWh", "car_unmet_kwh", "{:,.1f}"),
    ("car energy still wanted at the end kWh", "car_pending_kwh", "{:,.1f}"),
)


def optimum_rows(report: Report) -> list[list[str]]:
    """The runs beside the perfect-foresight optimum and each run's share of the cost gap
    (empty without an optimum)."""
    opt = report.optimum
    if opt is None:
        return []
    names = list(report.runs)
    rows: list[list[str]] = [
        [
            f"perfect-foresight optimum ({opt.slot_min}-min linear program, "
            f"{opt.horizon_h:g} h horizon keeping {opt.keep_h:g} h; {opt.windows:,} windows "
            f"in {opt.solve_s:.1f} s)"
        ],
        ["", *names, "optimum"],
    ]
    for label, attr, fmt in _OPTIMUM_ROWS:
        values = [getattr(report.runs[n], attr) for n in names] + [getattr(opt, attr)]
        rows.append([label, *(fmt.format(v) for v in values)])
    shares = report.gap_captured()
    cells = ["n/a" if shares.get(n) is None else f"{shares[n]:.1%}" for n in names]
    rows.append(["share of the cost gap captured", *cells, "100.0%"])
    return rows


def render_table(report: Report) -> str:
    """Plain-text table (aligned columns) for the terminal and logs."""
    rows = table_rows(report)
    extra = optimum_rows(report)
    if extra:
        rows += [[], *extra]
    width = max(len(r) for r in rows)
    # A row of one cell (a heading) is left out of the column widths.
    cols = [
        max((len(r[i]) for r in rows if len(r) > 1 and i < len(r)), default=0) for i in range(width)
    ]
    lines = [
        f"scenario {report.scenario}: {report.minutes:,} minutes ({report.minutes / 1440:.1f} days)"
    ]
    for r in rows:
        if not r:
            lines.append("")
            continue
        cells = [r[0].ljust(cols[0])] + [c.rjust(cols[i + 1]) for i, c in enumerate(r[1:])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"
