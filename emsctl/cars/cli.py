"""`emsctl car WALLBOX show|mode|target|weekly|sessions`: the owner's charging settings and
the charging sessions, in the database (`--db`, else the config's store.path; it must exist,
as for `emsctl history`). A running EMS applies a change at its next tick.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from datetime import time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from emsctl import clock, units
from emsctl.cars.habits import learned_text
from emsctl.cars.plan import next_at
from emsctl.cars.types import (
    MAX_TARGET_KWH,
    WEEKDAYS,
    ChargingSession,
    OneOffTarget,
    SessionEnd,
    WeeklyTarget,
)
from emsctl.config import CarCharging, Config
from emsctl.model import ChargeMode, LoadId

if TYPE_CHECKING:
    from emsctl.store.repo import Store

#: An action: the arguments, the config, the wallbox's charging config, the open database.
Action = Callable[[argparse.Namespace, Config, CarCharging, "Store"], int]

_WALLBOXES = (LoadId.WB_A.value, LoadId.WB_B.value)
_MODES = [m.value for m in ChargeMode]
_DAY_RE = re.compile(r"^[a-z]{3}$")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
#: Said by every action that changes a setting.
_APPLIED = "A running EMS applies the change at its next tick (it reads the database)."


def register(sub: Any) -> None:
    from emsctl.cli import add_config_arg

    car = sub.add_parser(
        "car",
        help="charging by target: a wallbox's mode, targets and sessions",
        description="The owner's charging settings of a wallbox, stored in the database; a "
        "running EMS applies a change at its next tick.",
    )
    car.add_argument("wallbox", choices=_WALLBOXES, help="the wallbox")
    acts = car.add_subparsers(dest="car_command", metavar="ACTION")
    acts.required = True

    def common(p: argparse.ArgumentParser) -> None:
        add_config_arg(p)
        p.add_argument("--db", metavar="PATH", help="database file (default: store.path)")

    p = acts.add_parser("show", help="mode, targets, learned habits and the last sessions")
    common(p)
    p.set_defaults(func=_show)
    p = acts.add_parser(
        "mode",
        help="off, solar, solar+target, now, or config (as configured)",
        description=f"The wallbox's charging mode; 'config' goes back to "
        f"loads.WALLBOX.charging.mode. {_APPLIED}",
    )
    common(p)
    p.add_argument("mode", choices=[*_MODES, "config"])
    p.set_defaults(func=_mode)
    p = acts.add_parser(
        "target",
        help="this session's target: --by 07:00 --kwh 15, or --clear",
        description="Energy to add by the next HH:MM to come (local time, control.timezone); "
        f"it ends with the session. {_APPLIED}",
    )
    common(p)
    p.add_argument("--by", type=_hhmm, metavar="HH:MM", help="local time, the next one to come")
    amount = p.add_mutually_exclusive_group()
    amount.add_argument("--kwh", type=_kwh, help="energy to add, kWh (0 < kWh <= 300)")
    amount.add_argument(
        "--percent", type=_percent, help="energy to add, %% of loads.WALLBOX.charging.battery_kwh"
    )
    p.add_argument("--clear", action="store_true", help="remove the target")
    p.set_defaults(func=_target)
    p = acts.add_parser(
        "weekly",
        help="the weekly schedule: mon-fri --at 07:00 --kwh 12",
        description=f"Per weekday a departure time and the energy to add by then. {_APPLIED}",
    )
    common(p)
    p.add_argument("days", type=_days, help="mon, sat,sun or mon-fri")
    p.add_argument("--at", type=_hhmm, metavar="HH:MM", help="local departure time")
    amount = p.add_mutually_exclusive_group()
    amount.add_argument("--kwh", type=_kwh, help="energy to add, kWh")
    amount.add_argument(
        "--percent", type=_percent, help="energy to add, %% of loads.WALLBOX.charging.battery_kwh"
    )
    p.add_argument("--clear", action="store_true", help="no target on these days")
    p.set_defaults(func=_weekly)
    p = acts.add_parser(
        "sessions",
        help="the charging sessions, newest first",
        description="Started, last draw, how it ended, energy (a wallbox without a meter: "
        "estimated) and the target it was charged for. Draws not confirmed as a car are "
        "left out.",
    )
    common(p)
    p.add_argument("--days", type=_days_back, default=14, help="how far back (default 14)")
    p.set_defaults(func=_sessions)


# -- argument types ---------------------------------------------------------------------------


def _hhmm(text: str) -> time:
    m = _HHMM.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a time as HH:MM, e.g. 07:00")
    return time(int(m.group(1)), int(m.group(2)))


def _kwh(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of kWh") from None
    if not 0 < v <= MAX_TARGET_KWH:
        raise argparse.ArgumentTypeError(f"{text}: more than 0 and at most {MAX_TARGET_KWH:g} kWh")
    return v


def _percent(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage") from None
    if not 0 < v <= 100:
        raise argparse.ArgumentTypeError(f"{text}: more than 0 and at most 100 %")
    return v


def _days(text: str) -> list[int]:
    out: list[int] = []
    names = [w.lower() for w in WEEKDAYS]
    for part in text.lower().split(","):
        first, _, last = part.strip().partition("-")
        for name in (first, last or first):
            if not _DAY_RE.match(name) or name not in names:
                raise argparse.ArgumentTypeError(
                    f"{part!r}: days are mon, tue, wed, thu, fri, sat, sun (e.g. mon-fri, sat,sun)"
                )
        a, b = names.index(first), names.index(last or first)
        if b < a:
            raise argparse.ArgumentTypeError(f"{part!r}: a range runs forwards (e.g. mon-fri)")
        out.extend(d for d in range(a, b + 1) if d not in out)
    return out


def _days_back(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if not 1 <= v <= 3650:
        raise argparse.ArgumentTypeError(f"{v}: between 1 and 3650 days")
    return v


# -- actions ---------------------------------------------------------------------------------


class _Refused(Exception):
    """What the owner asked for cannot be done: one line, exit 2."""


def _setup(args: argparse.Namespace) -> tuple[Config, CarCharging, Store]:
    from emsctl.store.cli import _config, _db_path
    from emsctl.store.repo import Store

    cfg = _config(args)
    load = LoadId(args.wallbox)
    charging = cfg.loads.get(load).car_charging
    if charging is None:
        raise _Refused(
            f"{load.value} does not charge by target: set loads.{load.value}.charging.enabled"
        )
    # Not created here: settings in a file that the daemon does not read would be lost.
    return cfg, charging, Store.open(_db_path(args, cfg), create=False)


def _run(args: argparse.Namespace, action: Action) -> int:
    from emsctl.store.db import StoreError

    try:
        cfg, charging, store = _setup(args)
    except _Refused as exc:
        print(f"emsctl car: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print("emsctl: " + "; ".join(str(exc).splitlines()), file=sys.stderr)
        return 2
    try:
        return action(args, cfg, charging, store)
    except _Refused as exc:
        print(f"emsctl car: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"emsctl car: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _energy_wh(args: argparse.Namespace, charging: CarCharging, load: LoadId) -> float:
    if args.percent is not None:
        if charging.battery_kwh is None:
            raise _Refused(
                f"--percent needs the car's battery size: set loads.{load.value}.charging."
                "battery_kwh, or give --kwh"
            )
        return float(charging.battery_kwh * args.percent * 10.0)
    if args.kwh is None:
        raise _Refused("give the energy to add: --kwh N (or --percent P)")
    return float(args.kwh) * 1000.0


def _mode(args: argparse.Namespace) -> int:
    def act(a: argparse.Namespace, cfg: Config, charging: CarCharging, store: Store) -> int:
        mode = None if a.mode == "config" else ChargeMode(a.mode)
        store.set_car_mode(LoadId(a.wallbox), mode, "cli", clock.now())
        shown = f"as configured ({charging.mode.value})" if mode is None else mode.value
        print(f"{a.wallbox}: mode {shown}")
        return 0

    return _run(args, act)


def _target(args: argparse.Namespace) -> int:
    def act(a: argparse.Namespace, cfg: Config, charging: CarCharging, store: Store) -> int:
        load = LoadId(a.wallbox)
        now = clock.now()
        if a.clear:
            _clear_alone(a, "--by", "--kwh", "--percent")
            store.set_one_off_target(load, None, "cli", now)
            print(f"{load.value}: target cleared")
            return 0
        if a.by is None:
            raise _Refused("give --by HH:MM and --kwh N, or --clear")
        by = next_at(now, a.by, cfg.control.tz)
        energy = _energy_wh(a, charging, load)
        store.set_one_off_target(load, OneOffTarget(by, energy, now, "cli"), "cli", now)
        local = by.astimezone(cfg.control.tz)
        print(f"{load.value}: {units.energy(energy)} by {local:%a %Y-%m-%d %H:%M}")
        return 0

    return _run(args, act)


def _weekly(args: argparse.Namespace) -> int:
    def act(a: argparse.Namespace, cfg: Config, charging: CarCharging, store: Store) -> int:
        load = LoadId(a.wallbox)
        now = clock.now()
        if a.clear:
            _clear_alone(a, "--at", "--kwh", "--percent")
        elif a.at is None:
            raise _Refused("give --at HH:MM and --kwh N, or --clear")
        energy = 0.0 if a.clear else _energy_wh(a, charging, load)
        for day in a.days:
            entry = None if a.clear else WeeklyTarget(day, a.at, energy)
            store.set_weekly_target(load, day, entry, "cli", now)
        days = ", ".join(WEEKDAYS[d] for d in a.days)
        what = "no target" if a.clear else f"{units.energy(energy)} by {a.at:%H:%M}"
        print(f"{load.value}: {days}: {what}")
        return 0

    return _run(args, act)


def _show(args: argparse.Namespace) -> int:
    def act(a: argparse.Namespace, cfg: Config, charging: CarCharging, store: Store) -> int:
        load = LoadId(a.wallbox)
        now = clock.now()
        tz = cfg.control.tz
        st = store.car_settings(load)
        mode = st.mode or charging.mode
        print(f"{load.value}: mode {mode.value} ({'set by the owner' if st.mode else 'config'})")
        if st.one_off is not None and st.one_off.by > now:
            by = st.one_off.by.astimezone(tz)
            print(f"  target: {units.energy(st.one_off.energy_wh)} by {by:%a %H:%M}")
        else:
            print("  target: none set for this session")
        for w in st.weekly:
            print(f"  weekly: {WEEKDAYS[w.weekday]} {w.at:%H:%M} {units.energy(w.energy_wh)}")
        since = now - timedelta(days=charging.learn_days)
        sessions = store.car_sessions(load, since, 10_000)
        learned = learned_text(sessions, charging, tz, now)
        default = f"{charging.default_kwh:g} kWh by {charging.default_by:%H:%M} the next morning"
        print(f"  {learned or 'learned: nothing yet'} (without these: {default})")
        for s in _charged(sessions)[:5]:
            print("  " + _session_line(s, tz))
        return 0

    return _run(args, act)


def _sessions(args: argparse.Namespace) -> int:
    def act(a: argparse.Namespace, cfg: Config, charging: CarCharging, store: Store) -> int:
        load = LoadId(a.wallbox)
        since = clock.now() - timedelta(days=a.days)
        sessions = _charged(store.car_sessions(load, since, 10_000))
        if not sessions:
            print(f"{load.value}: no sessions in the last {a.days} days")
        for s in sessions:
            print(_session_line(s, cfg.control.tz))
        return 0

    return _run(args, act)


def _clear_alone(args: argparse.Namespace, *options: str) -> None:
    given = [o for o in options if getattr(args, o.lstrip("-")) is not None]
    if given:
        raise _Refused(f"--clear takes no {', '.join(given)}")


def _charged(sessions: list[ChargingSession]) -> list[ChargingSession]:
    """Without the estimated draws that the step at switch-off showed were no car."""
    return [s for s in sessions if s.ended_by is not SessionEnd.NO_CAR]


def _session_line(s: ChargingSession, tz: tzinfo) -> str:
    """One session: started, last draw, how it ended, energy (estimated marked), target."""
    start = s.started_at.astimezone(tz)
    last = s.last_draw_at.astimezone(tz)
    energy = units.energy(s.energy_wh)
    energy = f"~{energy} (estimated)" if s.estimated else energy
    end = "open"
    if s.ended_at is not None:
        how = f" ({s.ended_by.value})" if s.ended_by else ""
        end = f"ended {s.ended_at.astimezone(tz):%a %H:%M}{how}"
    target = ""
    if s.deadline is not None and s.target_wh is not None:
        by = s.deadline.astimezone(tz)
        source = f", {s.target_source.value}" if s.target_source else ""
        target = f"; target {units.energy(s.target_wh)} by {by:%a %H:%M}{source}"
    solar = f", {units.energy(s.solar_wh)} from surplus" if s.energy_wh > 0 else ""
    return f"{start:%Y-%m-%d %a %H:%M} .. last draw {last:%a %H:%M}, {end}: {energy}{solar}{target}"
