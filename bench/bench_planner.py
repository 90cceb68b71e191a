"""Planner benchmark (rule 19): the year replay with the planner on, median of three, the time
one plan takes (median, 99th percentile, worst), and what the plan is worth: the cost incl.
unmet car energy against the same replay without the planner, with the noisy forecast of the
house's config and with a perfect one. Targets (reported, not enforced): a year with the
planner in 120 s, one plan in 0.5 s.
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from emsctl.config import Config, load_config
from emsctl.planner import driver
from emsctl.sim.runner import run_baseline, run_ems
from emsctl.sim.scenario import read_scenario

ROOT = Path(__file__).resolve().parents[1]
YEAR = ROOT / "bench" / "data" / "year_2026.csv.gz"
HOUSE_CONFIG = ROOT / "configs" / "ems-config.yaml"
TARGET_YEAR_S = 120.0
TARGET_PLAN_S = 0.5
#: scenarios/README.md: the baseline and the perfect-foresight optimum's cost.
REFERENCE_GAP_EUR = 2512 - 2246


def _with(cfg: Config, **planner: Any) -> Config:
    sim = cfg.sim
    if "forecast_error" in planner:
        sim = sim.model_copy(update={"forecast_error": planner.pop("forecast_error")})
    return cfg.model_copy(update={"planner": cfg.planner.model_copy(update=planner), "sim": sim})


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    base_cfg = load_config(str(HOUSE_CONFIG))
    on = _with(base_cfg, enabled=True)
    times: list[float] = []
    real = driver.make_plan

    def timed(*args: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return real(*args, **kw)
        finally:
            times.append(time.perf_counter() - t0)

    driver.make_plan = timed  # type: ignore[assignment]
    walls: list[float] = []
    result = None
    for n in range(3):
        times.clear()
        t0 = time.perf_counter()
        scn = read_scenario(YEAR)
        result = run_ems(scn, on)
        walls.append(time.perf_counter() - t0)
        print(f"run {n + 1}: read + EMS with the planner {walls[-1]:.1f} s, {len(times):,} plans")
    driver.make_plan = real  # type: ignore[assignment]
    assert result is not None
    times.sort()
    p99 = times[int(0.99 * (len(times) - 1))]
    year = statistics.median(walls)
    print(
        f"\nyear with the planner (median of 3): {year:.1f} s "
        f"(target {TARGET_YEAR_S:.0f} s: {'met' if year <= TARGET_YEAR_S else 'NOT met'})\n"
        f"one plan: median {statistics.median(times) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, "
        f"worst {times[-1] * 1000:.2f} ms (target {TARGET_PLAN_S * 1000:.0f} ms: "
        f"{'met' if times[-1] <= TARGET_PLAN_S else 'NOT met'})"
    )
    scn = read_scenario(YEAR)
    base = run_baseline(scn, base_cfg).kpis.cost_with_unmet_eur
    print(f"\n{'':<34}{'cost EUR':>10}{'vs rules':>10}{'of the gap':>12}{'most starts':>13}")
    rules = run_ems(scn, base_cfg).kpis
    rows = [("rules alone, noisy forecast", rules), ("planner, noisy forecast", result.kpis)]
    perfect = run_ems(scn, _with(base_cfg, enabled=True, forecast_error=0.0)).kpis
    rows.append(("planner, perfect forecast", perfect))
    for label, k in rows:
        cost = k.cost_with_unmet_eur
        most = max(
            x.max_switch_ons_per_day for name, x in k.loads.items() if name in ("sg_ready", "dhw")
        )
        print(
            f"{label:<34}{cost:>10,.1f}{cost - rules.cost_with_unmet_eur:>+10.1f}"
            f"{(base - cost) / REFERENCE_GAP_EUR:>12.0%}{most:>13d}"
        )
    print(f"(no EMS {base:,.1f} EUR; the gap to the reference optimum is {REFERENCE_GAP_EUR} EUR)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
