"""How wrong the simulated forecast is: its errors measured on a scenario (the year by default)
in the terms published PV forecast evaluations use. The figures go to docs/simulator.md
("How wrong the simulated forecast is").

For each local day of the scenario but the first, three forecasts are read, each from the
forecaster's public interface (SimForecast.forecast):

- day-ahead: the one issued at 12:00 the day before (leads of 12 to 36 h);
- intraday: the one issued at 06:00 on the day, for its hours from 06:00 on;
- next hour: for each hour, the one issued at its start (the hour just ahead).

Figures, over daylight hours (those with true or forecast PV):

- daily MAPE: mean of |forecast - true| / true per day, days of at least 1 kWh; also the
  energy-weighted form (sum of |error| / sum of true energy) and the spread of log(F/T);
- hourly nRMSE: RMSE of the hourly energies over the mean true hourly energy, and over the
  nameplate power (the planes' kWp from the config), the two normalisations in use.

    .venv/bin/python bench/forecast_error.py [scenario] [--config C] [--error S] [--shape S]
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from emsctl.config import Config, load_config, parse_config
from emsctl.model import FORECAST_SLOT_S, Forecast
from emsctl.sim.forecast import SimForecast
from emsctl.sim.scenario import read_scenario

ROOT = Path(__file__).resolve().parents[1]
YEAR = ROOT / "bench" / "data" / "year_2026.csv.gz"
HOUSE_CONFIG = ROOT / "configs" / "ems-config.yaml"
SLOT = timedelta(seconds=FORECAST_SLOT_S)
MIN_DAY_WH = 1000.0


@dataclass
class Errors:
    """Forecast and true energies of one kind of forecast: per day and per hour."""

    days: list[tuple[float, float]] = field(default_factory=list)
    hours: list[tuple[float, float]] = field(default_factory=list)

    def daily_mape(self) -> float:
        return statistics.fmean(abs(f - t) / t for f, t in self.days if t >= MIN_DAY_WH)

    def daily_weighted(self) -> float:
        return sum(abs(f - t) for f, t in self.days) / sum(t for _, t in self.days)

    def daily_log_spread(self) -> float:
        return statistics.pstdev(math.log(f / t) for f, t in self.days if t >= MIN_DAY_WH)

    def hourly_rmse(self) -> float:
        return math.sqrt(statistics.fmean((f - t) ** 2 for f, t in self.hours))

    def hourly_mean(self) -> float:
        return statistics.fmean(t for _, t in self.hours)


def with_error(config: Config, error: float | None, shape: float | None) -> Config:
    data = config.model_dump(by_alias=True)
    data["forecast"]["enabled"] = True
    if error is not None:
        data["sim"]["forecast_error"] = error
    if shape is not None:
        data["sim"]["forecast_shape_error"] = shape
    return parse_config(data, "forecast_error variant")


def slots_between(fc: Forecast, start: datetime, end: datetime) -> list[float]:
    """The slots of `fc` that start in [start, end) (zeros where it has none)."""
    assert fc.slots_start is not None
    lo = int((start - fc.slots_start) / SLOT)
    hi = int((end - fc.slots_start) / SLOT)
    return [fc.slot_wh[k] if 0 <= k < len(fc.slot_wh) else 0.0 for k in range(lo, hi)]


def hours(values: list[float]) -> list[float]:
    return [sum(values[k : k + 4]) for k in range(0, len(values), 4)]


def days_of(first: datetime, last: datetime, tz: object) -> Iterator[date]:
    day = first.astimezone(tz).date() + timedelta(days=1)  # type: ignore[arg-type]
    while datetime.combine(day + timedelta(days=1), time(0), tz) <= last:  # type: ignore[arg-type]
        yield day
        day += timedelta(days=1)


def add(errors: Errors, got: list[float], true: list[float], *, whole_day: bool) -> None:
    pairs = [(f, t) for f, t in zip(hours(got), hours(true), strict=True) if f > 0 or t > 0]
    errors.hours.extend(pairs)
    if whole_day and sum(true) > 0:
        errors.days.append((sum(got), sum(true)))


def measure(path: Path, config: Config) -> dict[str, Errors]:
    scenario = read_scenario(path)
    tz = config.control.tz
    noisy = SimForecast(scenario, config)
    exact = SimForecast(scenario, with_error(config, 0.0, None))
    out = {"day-ahead": Errors(), "intraday from 06:00": Errors(), "next hour": Errors()}
    for day in days_of(scenario.start, scenario.end, tz):
        # In UTC: the difference of two times of one zone would be wall-clock time.
        midnight = datetime.combine(day, time(0), tz).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), tz).astimezone(UTC)
        true = slots_between(exact.forecast(midnight) or _none(), midnight, end)
        issued = datetime.combine(day - timedelta(days=1), time(12), tz)
        got = slots_between(noisy.forecast(issued) or _none(), midnight, end)
        add(out["day-ahead"], got, true, whole_day=True)
        six = datetime.combine(day, time(6), tz).astimezone(UTC)
        k = int((six - midnight) / SLOT)
        got = slots_between(noisy.forecast(six) or _none(), six, end)
        add(out["intraday from 06:00"], got, true[k:], whole_day=True)
        hour = midnight
        while hour < end:
            k = int((hour - midnight) / SLOT)
            got = slots_between(noisy.forecast(hour) or _none(), hour, hour + 4 * SLOT)
            add(out["next hour"], got, true[k : k + 4], whole_day=False)
            hour += timedelta(hours=1)
    return out


def _none() -> Forecast:
    raise SystemExit("the simulated forecast gave nothing (is the scenario empty?)")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", default=str(YEAR))
    ap.add_argument("--config", default=str(HOUSE_CONFIG))
    ap.add_argument("--error", type=float, default=None, help="sim.forecast_error")
    ap.add_argument("--shape", type=float, default=None, help="sim.forecast_shape_error")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    path = Path(args.scenario)
    if not path.exists():
        print(f"scenario not found: {path}", file=sys.stderr)
        return 1
    config = with_error(load_config(args.config), args.error, args.shape)
    kwp = sum(p.kwp for p in config.forecast.planes)
    s = config.sim
    print(
        f"{path.name}: sim.forecast_error {s.forecast_error}, forecast_shape_error "
        f"{s.forecast_shape_error}, seed {s.forecast_seed}, refresh {config.forecast.refresh_s:g} s"
    )
    print(
        f"{'forecast':<22}{'daily MAPE':>11}{'weighted':>10}{'log sd':>8}"
        f"{'hourly nRMSE':>14}{'of kWp':>8}"
    )
    for name, e in measure(path, config).items():
        daily = (
            f"{e.daily_mape():>10.1%}{e.daily_weighted():>10.1%}{e.daily_log_spread():>8.3f}"
            if e.days
            else f"{'-':>10}{'-':>10}{'-':>8}"
        )
        rmse = e.hourly_rmse()
        print(f"{name:<22}{daily} {rmse / e.hourly_mean():>13.1%}{rmse / (kwp * 1000):>8.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
