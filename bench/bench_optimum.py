"""Optimum benchmark: the perfect-foresight optimum of the plant over the modelled year.

Solves `emsctl/sim/optimum.py` on bench/data/year_2026.csv.gz with the shipped configuration
(median wall time of three solves), compares its figures with the reference optimum of
bench/data/README.md and prints the simulated baseline's gap to it. Exit status 1 when the
optimum's cost is more than 2 % off the reference or the car energy differs, or when a solve
takes longer than the time limit.
"""

from __future__ import annotations

import statistics
import sys

from bench_replay import REFERENCE, REFERENCE_UNMET_KWH, scenario_args

from emsctl.sim.optimum import OptimumResult, solve_optimum
from emsctl.sim.runner import run_baseline
from emsctl.sim.scenario import read_scenario

#: The optimum's cost may differ this much from the reference (a model of its own, not a copy).
TOLERANCE = 0.02
#: Most seconds one solve of the year may take.
LIMIT_S = 120.0


def compare(opt: OptimumResult) -> bool:
    ok = True
    print(f"\n{'optimum vs reference':<22}{'solved':>12}{'reference':>12}{'diff':>9}")
    for key, ref in REFERENCE["optimum"].items():
        got = float(getattr(opt, key))
        diff = (got - ref) / ref if ref else 0.0
        flag = ""
        if key == "cost_eur" and abs(diff) > TOLERANCE:
            flag = "  OUT OF TOLERANCE"
            ok = False
        fmt = "{:>12.3f}" if key in ("self_consumption", "autarky") else "{:>12,.1f}"
        shown = f"{diff:>+9.2%}" if ref else f"{'':>9}"
        print(f"{key:<22}{fmt.format(got)}{fmt.format(ref)}{shown}{flag}")
    unmet_ok = abs(opt.car_unmet_kwh - REFERENCE_UNMET_KWH) < 0.1
    print(
        f"{'car_unmet_kwh':<22}{opt.car_unmet_kwh:>12,.1f}{REFERENCE_UNMET_KWH:>12,.1f}"
        f"{'' if unmet_ok else '  DIFFERS'}"
    )
    return ok and unmet_ok


def main() -> int:
    parsed = scenario_args(__doc__)
    if parsed is None:
        return 1
    args, cfg = parsed
    scn = read_scenario(args.scenario)
    times: list[float] = []
    opt: OptimumResult | None = None
    for n in range(args.runs):
        opt = solve_optimum(scn, cfg, keep_series=False)
        times.append(opt.solve_s)
        print(f"solve {n + 1}: {opt.solve_s:.2f} s ({opt.windows} windows)", flush=True)
    assert opt is not None
    took = statistics.median(times)
    print(
        f"\noptimum of {scn.minutes:,} minutes as {scn.minutes // opt.slot_min:,} slots of "
        f"{opt.slot_min} min: median {took:.2f} s (limit {LIMIT_S:.0f} s: "
        f"{'met' if max(times) <= LIMIT_S else 'NOT met'})"
    )
    ok = compare(opt) and max(times) <= LIMIT_S
    base = run_baseline(scn, cfg).kpis
    gap = base.cost_with_unmet_eur - opt.cost_with_unmet_eur
    ref_gap = REFERENCE["baseline"]["cost_eur"] - REFERENCE["optimum"]["cost_eur"]
    print(
        f"\ncost incl. unmet car energy: baseline {base.cost_with_unmet_eur:,.1f} EUR, optimum "
        f"{opt.cost_with_unmet_eur:,.1f} EUR: a gap of {gap:,.1f} EUR "
        f"(reference {ref_gap:,.0f} EUR)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
