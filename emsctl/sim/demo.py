"""`emsctl demo`: the real daemon (store, metrics, web UI) on the simulated house, fast.

One simulated minute per `sim.demo_seconds_per_minute` wall seconds (0.1 by default). At the
end of the scenario its days start again, moved on by whole days (time never runs back, the
plant's battery and temperatures carry over), so the demo runs until Ctrl-C (or --minutes).
A temporary database, deleted at exit, unless --db is given; a kept database that already
holds days goes on after them. The start-up lines end with the addresses and "Ctrl-C stops".
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import sys
import tempfile
from dataclasses import replace
from datetime import time, timedelta
from pathlib import Path
from typing import Any

from emsctl.config import Config
from emsctl.controller import Controller, Devices
from emsctl.daemon import RunOptions, missing_directory, run
from emsctl.sim.adapters import SimHouse
from emsctl.sim.scenario import Scenario, ScenarioError, load

log = logging.getLogger(__name__)

DEFAULT_SCENARIO = "s2_spring_fast_clouds"
#: Packaged with the code, so that an installed EMS (make install) runs the same demo.
DEMO_CONFIG = Path(__file__).resolve().with_name("demo.yaml")


def _demo_config(args: argparse.Namespace) -> Config:
    from emsctl.cli import config_or_exit

    config = config_or_exit(args.config or str(DEMO_CONFIG))
    update: dict[str, Any] = {}
    if args.web_port is not None:
        update["webui"] = config.webui.model_copy(update={"port": args.web_port})
    if args.metrics_port is not None:
        update["metrics"] = config.metrics.model_copy(update={"port": args.metrics_port})
    return config.model_copy(update=update) if update else config


def after_history(scenario: Scenario, db: str) -> Scenario:
    """The scenario moved on by whole days past what the database `db` already holds (a kept
    demo database run again), so that its history never runs back in time."""
    if not Path(db).expanduser().is_file():
        return scenario
    from emsctl.store import Store, StoreError

    try:
        store = Store.open(db, create=False, migrate_to_head=False)
    except StoreError:
        return scenario  # the daemon refuses it with the reason
    try:
        span = store.span()
    finally:
        store.close()
    if span is None or span[1] < scenario.start:
        return scenario
    days = (span[1] - scenario.start) // timedelta(days=1) + 1
    return replace(scenario, start=scenario.start + timedelta(days=days))


def run_demo(args: argparse.Namespace) -> int:
    problem = missing_directory(args.db)
    if problem is not None:
        sys.stderr.write(f"emsctl demo: {problem}\n")
        return 2
    config = _demo_config(args)
    try:
        scenario = load(args.scenario)
    except ScenarioError as exc:
        sys.stderr.write(f"emsctl demo: --scenario {exc}\n")
        return 2
    if args.db is not None:
        scenario = after_history(scenario, args.db)
    house = SimHouse(scenario, config, loop=True)
    tz = config.control.tz
    start: time = args.start
    # Let the plant run without the EMS until the chosen local time (the night is dull).
    while house.laps == 0 and house.now.astimezone(tz).time() < start:
        house.advance()

    def devices(_config: Config, _store: Any) -> Devices:
        return Devices(
            collector=house.collector,
            actuators=dict(house.actuators),
            forecast=house.forecaster,
        )

    laps = [house.laps]

    def after_tick(_ctl: Controller) -> None:
        house.advance()
        if house.laps != laps[0]:
            laps[0] = house.laps
            log.info(
                "scenario %s starts again: simulated %s",
                scenario.name,
                house.now.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            )

    tmp = None
    db = args.db
    if db is None:
        tmp = tempfile.TemporaryDirectory(prefix="ems-demo-")
        db = str(Path(tmp.name) / "ems.db")
        where = f"{db} (temporary, deleted at exit; --db PATH keeps one)"
    else:
        where = f"{db} (kept)"
    speed = args.speed or config.sim.demo_seconds_per_minute
    begins = house.now.astimezone(tz)

    def banner(_head: str, urls: list[str]) -> None:
        # After every start-up line of the libraries: the addresses are what a newcomer needs.
        lines = [
            f"EMS demo: scenario {scenario.name}, simulated from {begins:%Y-%m-%d %H:%M} local, "
            f"1 minute every {speed:g} s; its days repeat until stopped",
            f"  database: {where}",
            *(f"  {url}" for url in urls),
            "  Ctrl-C stops the demo.",
        ]
        sys.stderr.write("\n".join(lines) + "\n")
        sys.stderr.flush()

    try:
        return run(
            RunOptions(
                config_path=None,
                config=config,
                devices=devices,
                now=lambda: house.now,
                tick_wall_s=speed,
                store_path=db,
                after_tick=after_tick,
                max_ticks=args.minutes,
                banner=banner,
                port_hints={
                    "webui": "choose another with --web-port N",
                    "metrics": "choose another with --metrics-port N",
                },
            )
        )
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _positive_speed(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(v) or v <= 0 or v > 60:
        raise argparse.ArgumentTypeError(
            f"{text}: wall seconds per simulated minute, above 0 and at most 60"
        )
    return v


def _time_of_day(text: str) -> time:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    try:
        if m is None:
            raise ValueError(text)
        return time(int(m.group(1)), int(m.group(2)))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time of day HH:MM (00:00 to 23:59)"
        ) from None


def _count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text}: at least 1")
    return v


def _port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"{text}: a port is 0..65535 (0: any free one)")
    return v


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="run the daemon with web UI and metrics on a simulated house")
    p.add_argument(
        "--config",
        "-c",
        default=None,
        help="config (default: the simulated house, emsctl/sim/demo.yaml)",
    )
    p.add_argument(
        "--scenario", default=DEFAULT_SCENARIO, help="bundled scenario name or a CSV path"
    )
    p.add_argument(
        "--start",
        type=_time_of_day,
        default=time(6, 0),
        help="local time of day to start at (HH:MM, default 06:00)",
    )
    p.add_argument(
        "--speed", type=_positive_speed, default=None, help="wall seconds per simulated minute"
    )
    p.add_argument(
        "--db",
        default=None,
        metavar="PATH",
        help="database file to keep (default: a temporary one, deleted at exit); "
        "a database with days in it goes on after them",
    )
    p.add_argument(
        "--minutes", type=_count, default=None, help="stop after this many simulated minutes"
    )
    p.add_argument(
        "--web-port", type=_port, default=None, help="web UI port (default: the config's, 8080)"
    )
    p.add_argument(
        "--metrics-port",
        type=_port,
        default=None,
        help="metrics port (default: the config's, 9099)",
    )
    p.set_defaults(func=run_demo)
