"""`emsctl demo`: the real daemon (store, metrics, web UI) on the simulated house, fast.

One simulated minute per `sim.demo_seconds_per_minute` wall seconds (0.1 by default), a
temporary database unless --db is given; Ctrl-C stops it cleanly.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from datetime import time
from pathlib import Path
from typing import Any

from emsctl.config import Config
from emsctl.controller import Controller, Devices
from emsctl.daemon import RunOptions, run
from emsctl.sim.adapters import SimHouse
from emsctl.sim.scenario import load

log = logging.getLogger(__name__)

DEFAULT_SCENARIO = "s2_spring_fast_clouds"
#: Packaged with the code, so that an installed EMS (make install) runs the same demo.
DEMO_CONFIG = Path(__file__).resolve().with_name("demo.yaml")


def _demo_config(args: argparse.Namespace) -> Config:
    from emsctl.cli import config_or_exit

    return config_or_exit(args.config or str(DEMO_CONFIG))


def run_demo(args: argparse.Namespace) -> int:
    config = _demo_config(args)
    scenario = load(args.scenario)
    house = SimHouse(scenario, config)
    tz = config.control.tz
    start = time.fromisoformat(args.start)
    # Let the plant run without the EMS until the chosen local time (the night is dull).
    while not house.done and house.now.astimezone(tz).time() < start:
        house.advance()

    def devices(_config: Config, _store: Any) -> Devices:
        return Devices(
            collector=house.collector,
            actuators=dict(house.actuators),
            forecast=house.forecaster,
        )

    def after_tick(_ctl: Controller) -> None:
        house.advance()
        if house.done:
            log.info("scenario %s finished", scenario.name)
            raise SystemExit(0)

    tmp = None
    db = args.db
    if db is None:
        tmp = tempfile.TemporaryDirectory(prefix="ems-demo-")
        db = str(Path(tmp.name) / "ems.db")
    speed = args.speed or config.sim.demo_seconds_per_minute

    def banner(line: str) -> None:
        sys.stderr.write(f"  {line}\n")

    sys.stderr.write(
        f"EMS demo: scenario {scenario.name} from {args.start} local, "
        f"1 simulated minute every {speed:g} s. Ctrl-C stops.\n"
    )
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
            )
        )
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        if tmp is not None:
            tmp.cleanup()


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
    p.add_argument("--start", default="06:00", help="local time of day to start at (HH:MM)")
    p.add_argument("--speed", type=float, default=None, help="wall seconds per simulated minute")
    p.add_argument("--db", default=None, help="database file (default: a temporary one)")
    p.add_argument("--minutes", type=int, default=None, help="stop after this many minutes")
    p.set_defaults(func=run_demo)
