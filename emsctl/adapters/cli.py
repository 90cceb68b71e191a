"""`emsctl snapshot` and `emsctl device`: what EMS sees of the house right now, and direct
checks of one load's Shelly (status, info, on, off) without running the control loop.

Exit codes: 0 all read, 1 a device or Prometheus failed, 2 bad input or a refused switch.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from emsctl import clock, runlock
from emsctl.adapters.base import AdapterError
from emsctl.adapters.credentials import Credentials, CredentialsError
from emsctl.adapters.prometheus import PrometheusCollector
from emsctl.adapters.shelly import ACTUATORS, ShellyActuator, make_actuator, reading_for_error
from emsctl.cli import add_config_arg, config_or_exit
from emsctl.config import Config
from emsctl.model import MEASUREMENTS, LoadId, LoadReading, Snapshot
from emsctl.redact import redact_url

UNITS: dict[str, str] = {
    "grid_w": "W",
    "grid_l1_w": "W",
    "grid_l2_w": "W",
    "grid_l3_w": "W",
    "soc_pct": "%",
    "pv_w": "W",
    "battery_w": "W",
    "compressor_w": "W",
    "outdoor_c": "°C",
    "dhw_c": "°C",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "snapshot",
        help="print every measurement and each Shelly load as EMS sees them right now",
        description="Query Prometheus once (as a tick would) and read every Shelly.",
    )
    add_config_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_snapshot_command)

    p = sub.add_parser(
        "device",
        help="talk to one load's Shelly directly: status, info, on, off",
        description=(
            "Read or switch one load's relay without the control loop. 'on'/'off' are "
            "refused while the EMS daemon may be running (it would fight you) unless --force."
        ),
    )
    add_config_arg(p)
    p.add_argument("load", choices=[x.value for x in LoadId], help="the load, as in the config")
    p.add_argument("action", choices=["status", "info", "on", "off"])
    p.add_argument("--force", action="store_true", help="switch even if the daemon may run")
    p.add_argument(
        "--timer",
        type=int,
        metavar="SECONDS",
        help="with 'on': the device switches itself off again after SECONDS",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_device_command)


# --------------------------------------------------------------------------- snapshot


def _quiet_http_log() -> None:
    """httpx logs every request at INFO; in an owner's terminal that drowns the answer."""
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("httpx").setLevel(logging.WARNING)


def _credentials_or_exit(config: Config) -> Credentials:
    try:
        return Credentials.for_config(config)
    except CredentialsError as exc:
        print(f"emsctl: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def shelly_loads(config: Config) -> list[LoadId]:
    """Enabled loads whose device is a Shelly, in priority order."""
    return [x for x in config.enabled_loads() if config.loads.get(x).device.type in ACTUATORS]


def _read_load(load: LoadId, config: Config, creds: Credentials) -> LoadReading:
    try:
        with make_actuator(load, config.loads.get(load), creds) as actuator:
            return actuator.read()
    except AdapterError as exc:
        return reading_for_error(exc)


def gather(config: Config, creds: Credentials) -> dict[str, Any]:
    """The JSON document of `emsctl snapshot --json` (plus the tick time and any
    Prometheus error, which the owner needs to read it)."""
    at = clock.now()
    snap: Snapshot | None = None
    prom_error: str | None = None
    with PrometheusCollector.from_config(config) as collector:
        try:
            snap = collector.collect(at)
        except AdapterError as exc:
            prom_error = str(exc)
    measurements: dict[str, dict[str, float | None]] = {}
    for name in MEASUREMENTS:
        value = getattr(snap, name) if snap else None
        age = snap.ages_s.get(name) if snap else None
        measurements[name] = {"value": value, "age_s": age}
    loads = shelly_loads(config)
    with ThreadPoolExecutor(max_workers=max(1, len(loads))) as pool:
        results = pool.map(lambda x: _read_load(x, config, creds), loads)
        readings = dict(zip(loads, results, strict=True))
    return {
        "at": at.isoformat(),
        "measurements": measurements,
        "loads": {
            load.value: {
                "relay_on": r.relay_on,
                "power_w": r.power_w,
                "source": r.source,
                "error": r.error,
            }
            for load, r in readings.items()
        },
        "prometheus_error": prom_error,
    }


def _number(value: float, unit: str) -> str:
    digits = 0 if unit == "W" else 1
    return f"{value:,.{digits}f} {unit}".replace(",", " ")


def _snapshot_text(doc: dict[str, Any], config: Config) -> str:
    prom = config.prometheus
    lines = [
        f"Measurements from {redact_url(prom.url)} at {doc['at']} "
        f"(max_age_s {config.control.max_age_s:g})"
    ]
    if doc["prometheus_error"]:
        lines.append(f"  ERROR {doc['prometheus_error']}")
    for name, m in doc["measurements"].items():
        unit = UNITS[name]
        if getattr(prom, name, None) is None:
            shown, note = "-", "not configured"
        elif m["value"] is not None:
            shown, note = _number(m["value"], unit), f"age {m['age_s']:.0f} s"
        elif m["age_s"] is not None:
            shown, note = "-", f"stale or NaN (age {m['age_s']:.0f} s)"
        else:
            shown, note = "-", "absent" if not doc["prometheus_error"] else "not read"
        lines.append(f"  {name:<13} {shown:>12}   {note}")
    lines.append("Loads")
    for load, lc in config.loads.items():
        if not lc.enabled:
            continue
        dev = lc.device
        where = f"{dev.type} {dev.host}" if dev.host else dev.type
        r = doc["loads"].get(load.value)
        if r is None:
            lines.append(f"  {load.value:<9} {where:<30} not a Shelly: not read here")
        elif r["error"]:
            lines.append(f"  {load.value:<9} {where:<30} ERROR {r['error']}")
        else:
            relay = "on" if r["relay_on"] else "off"
            power = _number(r["power_w"], "W") if r["power_w"] is not None else "no meter"
            lines.append(
                f"  {load.value:<9} {where:<30} relay {relay:<3}  {power:>9}  source {r['source']}"
            )
    return "\n".join(lines)


def _snapshot_command(args: argparse.Namespace) -> int:
    _quiet_http_log()
    config = config_or_exit(args.config)
    doc = gather(config, _credentials_or_exit(config))
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print(_snapshot_text(doc, config))
    failed = doc["prometheus_error"] or any(r["error"] for r in doc["loads"].values())
    return 1 if failed else 0


# --------------------------------------------------------------------------- device


def daemon_may_run(config: Config) -> str | None:
    """Why switching by hand is unsafe now (the daemon's lock is held, or we cannot tell);
    None when the daemon is certainly not running."""
    path = runlock.lock_path(config.store.path)
    try:
        held = runlock.is_held(path)
    except OSError as exc:
        return f"cannot tell whether the EMS daemon is running ({path}: {exc.strerror or exc})"
    if held:
        pid = runlock.holder(path)
        who = f" (pid {pid})" if pid else ""
        return f"the EMS daemon is running{who}: it holds {path}"
    return None


def _reading_doc(load: LoadId, reading: LoadReading) -> dict[str, Any]:
    return {
        "load": load.value,
        "relay_on": reading.relay_on,
        "power_w": reading.power_w,
        "source": reading.source,
        "error": reading.error,
    }


def _reading_text(actuator: ShellyActuator, reading: LoadReading) -> str:
    relay = "on" if reading.relay_on else "off"
    power = f", {reading.power_w:.0f} W" if reading.power_w is not None else ""
    where = f"Gen{actuator.generation} at {actuator.host}"
    return f"{actuator.load.value} ({where}): relay {relay}{power}, source {reading.source}"


def _device_command(args: argparse.Namespace) -> int:
    _quiet_http_log()
    config = config_or_exit(args.config)
    load = LoadId(args.load)
    lc = config.loads.get(load)
    if lc.device.type not in ACTUATORS:
        print(
            f"emsctl: {load.value} has device type {lc.device.type!r}: "
            "'emsctl device' talks to Shelly relays only",
            file=sys.stderr,
        )
        return 2
    if args.timer is not None and (args.action != "on" or args.timer <= 0):
        print("emsctl: --timer takes a positive number of seconds, with 'on' only", file=sys.stderr)
        return 2
    if args.action in ("on", "off") and not args.force:
        reason = daemon_may_run(config)
        if reason:
            print(
                f"emsctl: refusing to switch {load.value} {args.action}: {reason}. It would "
                "undo or fight a manual switch on its next tick. Stop it first (systemctl "
                "stop ems), use the web UI's Force on/off, or add --force.",
                file=sys.stderr,
            )
            return 2
    creds = _credentials_or_exit(config)
    actions: dict[str, Callable[[ShellyActuator], int]] = {
        "status": lambda a: _show(args, a, a.read()),
        "on": lambda a: _show(args, a, a.switch(True, deadman_s=args.timer)),
        "off": lambda a: _show(args, a, a.switch(False)),
        "info": lambda a: _info(args, a, creds),
    }
    with make_actuator(load, lc, creds) as actuator:
        try:
            return actions[args.action](actuator)
        except AdapterError as exc:
            if args.json:
                print(json.dumps(_reading_doc(load, LoadReading(error=str(exc))), indent=2))
            print(f"emsctl: {exc}", file=sys.stderr)
            return 1


def _show(args: argparse.Namespace, actuator: ShellyActuator, reading: LoadReading) -> int:
    if args.json:
        print(json.dumps(_reading_doc(actuator.load, reading), indent=2))
    else:
        print(_reading_text(actuator, reading))
    wanted = {"on": True, "off": False}.get(args.action)
    if wanted is not None and reading.relay_on is not wanted:
        print(f"emsctl: the device did not switch {args.action}", file=sys.stderr)
        return 1
    return 0


def _info(args: argparse.Namespace, actuator: ShellyActuator, creds: Credentials) -> int:
    info = actuator.info()
    doc = {
        "load": actuator.load.value,
        "host": info.host,
        "gen": info.gen,
        "model": info.model,
        "id": info.device_id,
        "mac": info.mac,
        "firmware": info.firmware,
        "name": info.name,
        "auth_required": info.auth_required,
        "password": creds.describe(actuator.load),
    }
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        for key, value in doc.items():
            print(f"{key:<14} {value}")
    configured = actuator.generation
    # Gen3/Gen4 devices speak the Gen2 RPC protocol.
    if info.gen != configured and not (configured == 2 and info.gen > 2):
        print(
            f"emsctl: the config says shelly_gen{configured} but the device is Gen{info.gen}",
            file=sys.stderr,
        )
        return 1
    return 0
