"""Forecast benchmark: what the forecast rule (decision-logic rule 14) changes on the year.

Replays the year with the house's config three times per variant — forecast off, a perfect
forecast (the scenario's own PV still to come today) and a noisy one (`sim.forecast_error`: a
log-normal error per day, with the shape and lead-time errors of docs/simulator.md) — and
prints self-consumption, cost and cost with undelivered car energy side by side. Three
variants: the house's config as shipped; the same with the brake lowered, so that the heat
pump's shifted gates are not held at the brake's floor; and cars charging on surplus by day
with the grid only at night, where the wallboxes' high gates give the rule the most room.
The figures go to docs/performance.md ("Forecast rule").
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from emsctl.config import Config, load_config, parse_config
from emsctl.sim.runner import run_baseline, run_ems
from emsctl.sim.scenario import read_scenario

ROOT = Path(__file__).resolve().parents[1]
YEAR = ROOT / "bench" / "data" / "year_2026.csv.gz"
HOUSE_CONFIG = ROOT / "configs" / "ems-config.yaml"
NOISE = 0.35
#: The rule's own knob, for the runs that are to show it: the house's config may switch the
#: rule off (shift 0), and the comparison must still say what it would do.
SHIFT_PCT = 15.0


def variant(base: Config, **changes: Any) -> Config:
    """`base` with dotted-path changes, validated again (cross-checks included)."""
    data = base.model_dump(by_alias=True)
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return parse_config(data, "bench variant")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", default=str(YEAR))
    ap.add_argument("--config", default=str(HOUSE_CONFIG))
    ap.add_argument("--noise", type=float, default=NOISE, help="forecast error spread")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    path = Path(args.scenario)
    if not path.exists():
        print(f"scenario not found: {path}", file=sys.stderr)
        return 1
    scenario = read_scenario(path)
    house = load_config(args.config)
    base = run_baseline(scenario, house).kpis
    print(
        f"{scenario.name}: baseline cost with unmet {base.cost_with_unmet_eur:,.1f} EUR, "
        f"self-consumption {base.self_consumption:.4f}"
    )
    night = {"from": "22:00", "until": "06:30"}
    variants = {
        "as shipped": {},
        f"brake {house.control.brake_soc - 15:g} %": {
            "control__brake_soc": house.control.brake_soc - 15
        },
        # Cars on surplus by day (gates 70/90 %, which the rule can lower), grid at night.
        "night windows": {
            "loads__wb_a__fallback": {
                **house.loads.wb_a.fallback.model_dump(by_alias=True),
                **night,
            },
            "loads__wb_b__fallback": {
                **house.loads.wb_b.fallback.model_dump(by_alias=True),
                **night,
            },
        },
    }
    print(
        f"{'variant':<14} {'forecast':<16} {'self-cons.':>10} {'cost EUR':>10} "
        f"{'with unmet':>11} {'vs off':>8}"
    )
    for name, changes in variants.items():
        off_cost = None
        for label, fc in (("off", None), ("perfect", 0.0), (f"noisy {args.noise:g}", args.noise)):
            extra: dict[str, Any] = {"forecast__enabled": fc is not None}
            if fc is not None:
                extra |= {"sim__forecast_error": fc, "control__forecast_gate_shift_pct": SHIFT_PCT}
            cfg = variant(house, **changes, **extra)
            k = run_ems(scenario, cfg).kpis
            if off_cost is None:
                off_cost = k.cost_with_unmet_eur
            print(
                f"{name:<14} {label:<16} {k.self_consumption:>10.4f} {k.cost_eur:>10,.1f} "
                f"{k.cost_with_unmet_eur:>11,.1f} {k.cost_with_unmet_eur - off_cost:>+8.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
