"""A PNG of one window of a simulated run: PV, consumption, grid, SOC and each load's band.

matplotlib is an optional extra (`pip install 'emsctl[plot]'`); it is imported only here.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from emsctl.model import LoadId
from emsctl.sim.runner import Trace
from emsctl.sim.scenario import Scenario


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable(
            "plotting needs matplotlib: pip install 'emsctl[plot]' (or matplotlib)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_runs(
    scenario: Scenario, ems: Trace, baseline: Trace | None, out: str | Path, tz: Any
) -> Path:
    """Draw the EMS run's window (and the baseline's grid and SOC for comparison)."""
    plt = _pyplot()
    import matplotlib.dates as mdates

    if not ems.index:
        raise ValueError("the plot window holds no minutes of the scenario")
    times = [scenario.start + timedelta(minutes=i) for i in ems.index]
    fig, (ax_p, ax_s, ax_l) = plt.subplots(
        3,
        1,
        figsize=(13, 8.5),
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1.4, 1.2]},
    )
    kw = {"linewidth": 0.8}
    ax_p.fill_between(times, [w / 1000 for w in ems.pv_w], color="#f5c242", alpha=0.45, lw=0)
    ax_p.plot(times, [w / 1000 for w in ems.pv_w], color="#d9a000", label="PV", **kw)
    ax_p.plot(times, [w / 1000 for w in ems.house_w], color="#7f7f7f", label="house", **kw)
    ax_p.plot(
        times,
        [w / 1000 for w in ems.consumption_w],
        color="#1f77b4",
        label="house + heat pump + cars (EMS)",
        **kw,
    )
    ax_p.plot(times, [w / 1000 for w in ems.grid_w], color="#d62728", label="grid (EMS)", **kw)
    if baseline is not None and len(baseline.grid_w) == len(times):
        ax_p.plot(
            times,
            [w / 1000 for w in baseline.grid_w],
            color="#d62728",
            alpha=0.35,
            linestyle="--",
            label="grid (baseline)",
            **kw,
        )
    ax_p.axhline(0, color="black", linewidth=0.5)
    ax_p.set_ylabel("kW  (grid: + import)")
    ax_p.legend(loc="upper left", fontsize=8, ncol=3)
    ax_p.grid(alpha=0.3)

    ax_s.plot(times, list(ems.soc_pct), color="#2ca02c", label="SOC (EMS)", **kw)
    if baseline is not None and len(baseline.soc_pct) == len(times):
        ax_s.plot(
            times,
            list(baseline.soc_pct),
            color="#2ca02c",
            alpha=0.35,
            linestyle="--",
            label="SOC (baseline)",
            **kw,
        )
    ax_s.set_ylim(0, 100)
    ax_s.set_ylabel("SOC %")
    ax_s.legend(loc="upper left", fontsize=8)
    ax_s.grid(alpha=0.3)

    loads = list(LoadId)
    step = timedelta(minutes=1)
    for row, load in enumerate(loads):
        y = len(loads) - 1 - row
        for series, height, alpha in ((ems.outputs[load], 0.7, 0.3), (ems.draws[load], 0.7, 0.9)):
            spans = _spans(series)
            if spans:
                ax_l.broken_barh(
                    [(times[a], (times[b - 1] + step) - times[a]) for a, b in spans],
                    (y - height / 2, height),
                    facecolors="#9467bd",
                    alpha=alpha,
                )
    ax_l.set_yticks(range(len(loads)))
    ax_l.set_yticklabels([x.value for x in reversed(loads)])
    ax_l.set_ylim(-0.6, len(loads) - 0.4)
    ax_l.set_title("output on (light), drawing power (dark)", fontsize=8, loc="left")
    ax_l.grid(alpha=0.3, axis="x")
    ax_l.xaxis.set_major_locator(mdates.AutoDateLocator(tz=tz))  # type: ignore[no-untyped-call]
    ax_l.xaxis.set_major_formatter(mdates.DateFormatter("%d.%m %H:%M", tz=tz))  # type: ignore[no-untyped-call]
    fig.autofmt_xdate()
    first = times[0].astimezone(tz)
    fig.suptitle(
        f"{scenario.name}: {first:%Y-%m-%d %H:%M} + {len(times) / 1440:.1f} days (local time)"
    )
    fig.tight_layout()
    path = Path(out)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _spans(series: Any) -> list[tuple[int, int]]:
    """[start, end) index ranges where the series is true."""
    out: list[tuple[int, int]] = []
    start = None
    for k, v in enumerate(series):
        if v and start is None:
            start = k
        elif not v and start is not None:
            out.append((start, k))
            start = None
    if start is not None:
        out.append((start, len(series)))
    return out
