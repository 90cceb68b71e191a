"""What knowing the cars' habits perfectly would be worth: the year replayed with each
session's departure set, at plug-in, to a quantile of the whole year's stays of that car, on
that weekday of arrival, arriving within 150 minutes of that time of day, and its true need.

An oracle of the habit, not of the session: more than `sim.owner: none` can ever learn (it
sees only the past, and a relay wallbox never sees a full car leave), less than
`sim.owner: plans` (each session's own departure). Prints cost and unmet car energy per
quantile. Not part of `make bench`: an experiment for docs/performance.md ("Charging by
target").

    python bench/habit_oracle.py --quantiles 0.1 0.3 0.5
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from emsctl.cars.types import OneOffTarget
from emsctl.config import load_config
from emsctl.model import LoadId
from emsctl.sim import runner
from emsctl.sim.scenario import Scenario, read_scenario

ROOT = Path(__file__).resolve().parents[1]
YEAR = ROOT / "bench" / "data" / "year_2026.csv.gz"
HOUSE_CONFIG = ROOT / "configs" / "ems-config.yaml"
#: As emsctl.cars.habits.ARRIVAL_WINDOW_MIN.
WINDOW_MIN = 150
COLUMNS = (
    (LoadId.WB_A, "car_a_plugged", "car_a_need_wh"),
    (LoadId.WB_B, "car_b_plugged", "car_b_need_wh"),
)


def sessions(scn: Scenario, tz: Any) -> dict[LoadId, list[tuple[int, int, int, int]]]:
    """Per wallbox: (plug-in minute, leave minute, local weekday, local minute of day)."""
    out: dict[LoadId, list[tuple[int, int, int, int]]] = {}
    for load, plugged_col, _ in COLUMNS:
        plugged = np.asarray(scn.values[plugged_col]) > 0.5
        edges = np.flatnonzero(np.diff(np.concatenate(([0], plugged.astype(np.int8), [0]))))
        rows = []
        for start, end in zip(edges[::2], edges[1::2], strict=True):
            local = scn.time(int(start)).astimezone(tz)
            rows.append((int(start), int(end), local.weekday(), local.hour * 60 + local.minute))
        out[load] = rows
    return out


def departures(
    all_sessions: dict[LoadId, list[tuple[int, int, int, int]]], q: float
) -> dict[tuple[LoadId, int], int]:
    """Each session's planned leave minute: the q-quantile of the stays like it."""
    plan: dict[tuple[LoadId, int], int] = {}
    for load, rows in all_sessions.items():
        for start, _, weekday, minute in rows:
            stays = [
                e - s
                for s, e, w, m in rows
                if w == weekday and min(abs(m - minute), 1440 - abs(m - minute)) <= WINDOW_MIN
            ]
            stay = float(np.quantile(stays, q)) if len(stays) >= 3 else 0.0
            plan[(load, start)] = start + max(60, int(stay))
    return plan


def run(scn: Scenario, cfg_path: Path, q: float) -> tuple[float, float]:
    cfg = load_config(cfg_path)
    cfg = cfg.model_copy(update={"sim": cfg.sim.model_copy(update={"owner": "plans"})})
    plan = departures(sessions(scn, cfg.control.tz), q)

    def tell(self: Any, index: int, now: datetime) -> None:
        for i in range(self.done + 1, min(index + 1, self.scenario.minutes)):
            for load, plugged, need in self.columns:
                if plugged[i] > 0.5 and (i == 0 or plugged[i - 1] <= 0.5):
                    leave = self.scenario.time(plan[(load, i)])
                    target = OneOffTarget(leave, need[i], now, "owner")
                    self.cars.set_one_off_target(load, target, "owner", now)
        self.done = max(self.done, index)

    # The owner model of `sim.owner: plans`, told the habit's departure instead of the
    # session's own.
    runner._OwnerPlans.tell = tell  # type: ignore[method-assign]
    kpis = runner.run_ems(scn, cfg).kpis
    return kpis.cost_with_unmet_eur, kpis.car_unmet_kwh


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default=str(YEAR))
    parser.add_argument("--config", default=str(HOUSE_CONFIG))
    parser.add_argument("--quantiles", type=float, nargs="+", default=[0.1, 0.3, 0.5])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in ("emsctl.site", "emsctl.engine", "emsctl.machines", "emsctl.cars"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if not Path(args.scenario).exists():
        print(f"scenario not found: {args.scenario}", file=sys.stderr)
        return 1
    scn = read_scenario(Path(args.scenario))
    print("quantile  cost incl. unmet EUR  car energy unmet kWh")
    for q in args.quantiles:
        cost, unmet = run(scn, Path(args.config), q)
        print(f"{q:8.2f}  {cost:20,.1f}  {unmet:20.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
