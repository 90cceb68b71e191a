"""`emsctl simulate`: replay a scenario with EMS and without, print the KPIs side by side,
optionally write the JSON report and a plot."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

from emsctl.config import Config, ConfigError, load_config, parse_config
from emsctl.sim.report import render_table
from emsctl.sim.runner import Trace, compare, run_baseline, run_ems
from emsctl.sim.scenario import Scenario, ScenarioError, bundled_scenarios, load

log = logging.getLogger(__name__)


def default_config() -> Config:
    """The package defaults: what `emsctl run` does with every key left out."""
    return parse_config({}, "<package defaults>")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "simulate",
        help="replay a scenario with and without EMS and compare the KPIs",
        description=(
            "Replay a 1-minute scenario through the plant model twice: driven by the EMS "
            "(engine and state machines, unchanged) and as the no-EMS baseline; with --optimum, "
            "also against the perfect-foresight optimum of the same plant. SCENARIO is a "
            "CSV file (.csv or .csv.gz) or the name of a bundled scenario: "
            + ", ".join(bundled_scenarios())
            + "."
        ),
    )
    p.add_argument("scenario", metavar="SCENARIO")
    p.add_argument(
        "--config",
        "-c",
        default=None,
        help="YAML configuration (default: the package defaults, as for an empty file)",
    )
    p.add_argument("--json", metavar="OUT", help="write the JSON report here ('-' = stdout)")
    p.add_argument("--plot", metavar="OUT.png", help="draw a window of the run (needs matplotlib)")
    p.add_argument(
        "--plot-from",
        metavar="DATE",
        help="first day of the plot, local date YYYY-MM-DD or ISO time (default: the "
        "scenario's start, or its sunniest day when it is longer than the window)",
    )
    p.add_argument(
        "--plot-days",
        type=_plot_days,
        default=None,
        help="plot window in days, more than 0 and at most 366 (default 1 or 7)",
    )
    p.add_argument(
        "--no-skip",
        action="store_true",
        help="run the engine on every tick, also where nothing can change (slower; same result)",
    )
    p.add_argument(
        "--optimum",
        action="store_true",
        help="also solve the perfect-foresight optimum of the same plant (a 15-minute linear "
        "program) and show each run's share of the cost gap between the baseline and it",
    )
    p.set_defaults(func=_simulate)


def _plot_days(text: str) -> float:
    """A plot window in days: a finite number in (0, 366]."""
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not 0 < days <= 366:  # also refuses nan, whose comparisons are all false
        raise argparse.ArgumentTypeError(f"{text}: more than 0 and at most 366 days")
    return days


def _config(path: str | None) -> Config:
    if path is None:
        return default_config()
    return load_config(path)


def _window(scn: Scenario, cfg: Config, args: argparse.Namespace) -> tuple[int, int]:
    """(first minute, minutes) of the plot window."""
    tz = cfg.control.tz
    total_days = scn.minutes / 1440
    days = args.plot_days or (1.0 if total_days <= 1.0 else 7.0)
    count = max(1, int(days * 1440))
    if args.plot_from:
        text = args.plot_from
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"--plot-from {text!r}: expected YYYY-MM-DD or an ISO time") from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=tz)
        if not scn.start <= at < scn.end:
            raise ValueError(
                f"--plot-from {text}: outside the scenario "
                f"({scn.start.isoformat()} .. {scn.end.isoformat()})"
            )
        return scn.index_of(at), count
    if count >= scn.minutes:
        return 0, scn.minutes
    # The sunniest local day, so a default plot shows the loads at work.
    pv = scn.values["pv_w"]
    # Local midnights (DST shifts them against UTC), from the first after the start.
    first_day = scn.start.astimezone(tz).date()
    last_day = scn.end.astimezone(tz).date()
    starts = [0]
    for n in range((last_day - first_day).days + 1):
        midnight = datetime.combine(first_day + timedelta(days=n), dtime(0), tzinfo=tz)
        i = int((midnight - scn.start).total_seconds() // 60)
        if 0 < i < scn.minutes:
            starts.append(i)
    best = max(starts, key=lambda a: sum(pv[a : a + 1440]))
    first = min(best, max(0, scn.minutes - count))
    return first, count


@contextmanager
def _progress(minutes: int) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """Two progress callbacks (baseline, EMS): a rich bar on a terminal, silence otherwise."""
    if not sys.stderr.isatty():
        yield (lambda _n: None), (lambda _n: None)
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        tb = bar.add_task("baseline", total=minutes)
        te = bar.add_task("EMS", total=minutes)
        yield (
            lambda n: bar.update(tb, completed=n),
            lambda n: bar.update(te, completed=n),
        )


def output_problem(path: str | None, flag: str) -> str | None:
    """Why an output file cannot be written, checked before a replay of many seconds.

    Writability is probed by opening the file for appending (which changes nothing in a file
    that exists; a file made by the probe is removed again): permission bits alone do not tell
    for root, read-only mounts or pseudo file systems.
    """
    if path is None or path == "-":
        return None
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        return f"{flag} {path}: is a directory; name a file"
    if not parent.exists():
        return f"{flag} {path}: the directory {parent} does not exist"
    if not parent.is_dir():
        return f"{flag} {path}: {parent} is not a directory"
    existed = p.exists()
    try:
        with open(p, "ab"):
            pass
    except OSError as exc:
        return f"{flag} {path}: cannot be written ({exc.strerror or exc})"
    if not existed:
        p.unlink(missing_ok=True)
    return None


def _simulate(args: argparse.Namespace) -> int:
    for path, flag in ((args.json, "--json"), (args.plot, "--plot")):
        problem = output_problem(path, flag)
        if problem:
            print(f"emsctl simulate: {problem}", file=sys.stderr)
            return 2
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        print(
            "emsctl simulate: --plot needs matplotlib: .venv/bin/pip install 'emsctl[plot]'",
            file=sys.stderr,
        )
        return 2
    try:
        cfg = _config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        scn = load(args.scenario)
    except ScenarioError as exc:
        print(f"emsctl simulate: {exc}", file=sys.stderr)
        return 2
    traces: tuple[Trace, Trace] | None = None
    if args.plot:
        try:
            first, count = _window(scn, cfg, args)
        except ValueError as exc:
            print(f"emsctl simulate: {exc}", file=sys.stderr)
            return 2
        traces = (Trace(first, count), Trace(first, count))
    # Every transition is logged at INFO by the site; a year has thousands of them.
    quiet_loggers = ("emsctl.site", "emsctl.engine", "emsctl.machines", "emsctl.cars")
    saved = {n: logging.getLogger(n).level for n in quiet_loggers}
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for n in quiet_loggers:
            logging.getLogger(n).setLevel(logging.WARNING)
    try:
        with _progress(scn.minutes) as (p_base, p_ems):
            base = run_baseline(scn, cfg, trace=traces[1] if traces else None, progress=p_base)
            ems = run_ems(
                scn,
                cfg,
                trace=traces[0] if traces else None,
                progress=p_ems,
                skip_quiet=not args.no_skip,
            )
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)
    report = compare(ems, base, scn)
    if args.optimum:
        from emsctl.sim.optimum import OptimumError, solve_optimum

        try:
            report = replace(report, optimum=solve_optimum(scn, cfg, keep_series=False))
        except OptimumError as exc:
            print(f"emsctl simulate: optimum: {exc}", file=sys.stderr)
            return 1
    # With the JSON on stdout, the human table goes to stderr so the JSON can be piped.
    human = sys.stderr if args.json == "-" else sys.stdout
    print(render_table(report), end="", file=human)
    rate = scn.minutes / ems.wall_s if ems.wall_s > 0 else float("inf")
    print(
        f"\nreplay: EMS {ems.wall_s:.1f} s ({rate:,.0f} ticks/s, {ems.skipped_ticks:,} quiet "
        f"ticks skipped), baseline {base.wall_s:.1f} s; {len(ems.transitions):,} transitions",
        file=human,
    )
    if args.json:
        text = report.dumps()
        if args.json == "-":
            sys.stdout.write(text)
        else:
            try:
                Path(args.json).write_text(text, encoding="utf-8")
            except OSError as exc:  # checked before the replay; the disk may fill meanwhile
                print(
                    f"emsctl simulate: --json {args.json}: {exc.strerror or exc}", file=sys.stderr
                )
                return 1
            print(f"JSON report: {args.json}", file=human)
    if args.plot and traces is not None:
        from emsctl.sim.plot import PlotUnavailable, plot_runs

        try:
            path = plot_runs(scn, traces[0], traces[1], args.plot, cfg.control.tz)
        except PlotUnavailable as exc:
            print(f"emsctl simulate: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"emsctl simulate: --plot {args.plot}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        print(f"plot: {path}", file=human)
    return 0
