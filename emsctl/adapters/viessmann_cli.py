"""`emsctl viessmann login|status` and `emsctl forecast show`: the owner's handles on the cloud
adapters (one-time login, budget and DHW state, what the forecast says)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from emsctl import clock
from emsctl.adapters.base import AdapterError
from emsctl.adapters.forecast_solar import ForecastSolar, hourly_table
from emsctl.adapters.statestore import MemoryStateStore, StateStore
from emsctl.adapters.viessmann import ViessmannClient, ViessmannDhw
from emsctl.adapters.viessmann_auth import (
    LoginRequired,
    TokenFile,
    begin_login,
    complete_login,
    discard_pending,
    load_pending,
    save_pending,
    state_dir,
    token_path,
)
from emsctl.config import Config

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from emsctl.cli import add_config_arg

    v = sub.add_parser("viessmann", help="Viessmann cloud: login and status")
    vsub = v.add_subparsers(dest="viessmann_command", metavar="ACTION")
    vsub.required = True
    p = vsub.add_parser(
        "login",
        help="log in once (OAuth2 + PKCE) and store the refresh token (mode 0600)",
        description=(
            "Prints a URL to open in a browser. After logging in there, the browser is sent to "
            "the redirect URI; paste that whole URL (or just its code) back. In two steps: "
            "--print-url, then --code-or-url."
        ),
    )
    add_config_arg(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--print-url",
        action="store_true",
        help="only print the URL and remember the login (finish with --code-or-url)",
    )
    g.add_argument(
        "--code-or-url",
        metavar="TEXT",
        help="finish a login started with --print-url: the redirect URL or the code",
    )
    p.set_defaults(func=_login)
    p = vsub.add_parser(
        "status", help="login state, heat pump IDs, DHW target and temperature, call budget"
    )
    add_config_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_status)

    f = sub.add_parser("forecast", help="forecast.solar: what the strategic layer sees")
    fsub = f.add_subparsers(dest="forecast_command", metavar="ACTION")
    fsub.required = True
    p = fsub.add_parser(
        "show", help="remaining PV today and energy by hour (cached; fetched when due)"
    )
    add_config_arg(p)
    p.add_argument(
        "--refresh",
        action="store_true",
        help="fetch now even if the cache is fresh (counts against the hourly limit)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_forecast_show)


@contextmanager
def _state_store(config: Config) -> Iterator[StateStore]:
    """The daemon's database, so budgets and caches are shared with the running daemon."""
    from emsctl.store.db import StoreError
    from emsctl.store.repo import Store

    try:
        store = Store.open(config.store.path)
    except StoreError as exc:
        # Still useful without it (login, a look at the forecast); say what is missing.
        print(
            f"note: the database is not usable ({exc}); this command's calls are not counted "
            "in the daemon's budget and nothing is cached",
            file=sys.stderr,
        )
        yield MemoryStateStore()
        return
    try:
        yield store
    finally:
        store.close()


def _config(args: argparse.Namespace) -> Config:
    from emsctl.cli import config_or_exit

    return config_or_exit(args.config)


# --------------------------------------------------------------------------- viessmann login


def _no_client_id(config: Config, command: str) -> bool:
    """Say what to do first when no client is registered (nothing can work without it)."""
    if config.viessmann.client_id.strip():
        return False
    print(
        f"emsctl viessmann {command}: viessmann.client_id is empty in the config; register a "
        "client at Viessmann's developer portal (docs/cloud.md, step 1) and set it first",
        file=sys.stderr,
    )
    return True


def _login(args: argparse.Namespace) -> int:
    config = _config(args)
    if _no_client_id(config, "login"):
        return 2
    cfg = config.viessmann
    directory = state_dir(config)
    now = clock.now()
    tokens = TokenFile(token_path(config))
    try:
        if args.code_or_url is not None:
            pending = load_pending(directory, now)
            pasted = args.code_or_url
        else:
            pending = begin_login(cfg, now)
            save_pending(pending, directory)
            print("Open this URL in a browser and log in with your ViCare account:\n")
            print(pending.url)
            print()
            if args.print_url:
                print(
                    "Then run: emsctl viessmann login --code-or-url '<the URL the browser "
                    "was sent to>'"
                )
                return 0
            print(
                f"The browser is then sent to {cfg.redirect_uri}?code=... (the page may fail "
                "to load; that is fine).\nPaste that whole URL (or just the code) here:"
            )
            sys.stdout.flush()
            pasted = sys.stdin.readline()
            if not pasted.strip():
                print("nothing pasted; login not changed", file=sys.stderr)
                return 2
        complete_login(cfg, pending, pasted, tokens, clock.now())
    except ValueError as exc:
        print(f"login failed: {exc}", file=sys.stderr)
        return 2
    except LoginRequired as exc:
        print(f"login failed: {exc.detail}", file=sys.stderr)
        return 1
    except AdapterError as exc:
        print(f"login failed: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"login failed: cannot write to {directory}: {exc}\n"
            "run the login with sudo (sudo emsctl viessmann login ...): the files then belong to "
            "the state directory's owner, the service",
            file=sys.stderr,
        )
        return 1
    discard_pending(directory)
    print(f"Login stored in {tokens.path} (mode 0600).")
    with _state_store(config) as store:
        client = ViessmannClient(cfg, store, tokens)
        try:
            ids = client.device(clock.now())
        except AdapterError as exc:
            print(f"warning: heat pump not found yet: {exc}", file=sys.stderr)
        else:
            print(
                f"Heat pump: installation {ids.installation_id}, gateway {ids.gateway_serial}, "
                f"device {ids.device_id} ({ids.model or 'model unknown'})."
            )
        finally:
            client.close()
    return 0


# --------------------------------------------------------------------------- viessmann status


def _status(args: argparse.Namespace) -> int:
    config = _config(args)
    if _no_client_id(config, "status"):
        return 2
    now = clock.now()
    with _state_store(config) as store:
        dhw = ViessmannDhw.from_config(config, store)
        try:
            info: dict[str, Any] = dhw.status(now)
            rc = 0 if info["login"] == "ok" else 1
        except AdapterError as exc:
            info = {
                "login": dhw.client.login_problem() or "ok",
                "error": str(exc),
                "budget_used_24h": dhw.client.budget_used(now),
                "daily_budget": config.viessmann.daily_budget,
                "budget_remaining": dhw.client.budget_remaining(now),
            }
            rc = 1
        finally:
            dhw.close()
    if args.json:
        print(json.dumps(info, indent=1, default=str))
        return rc
    _print_status(info)
    return rc


def _print_status(info: dict[str, Any]) -> None:
    if info["login"] == "ok":
        print("login:         ok")
    else:
        print(f"login:         MISSING - {info['login']}")
        print("               run `emsctl viessmann login` (see docs/cloud.md)")
    if "device" in info:
        d = info["device"]
        print(
            f"heat pump:     installation {d['installation_id']}, gateway {d['gateway_serial']}, "
            f"device {d['device_id']} ({d.get('model') or '?'})"
        )
    if "dhw_target_c" in info:
        lo, hi, step = info["dhw_range_c"]
        state = "boost" if info["boost_active"] else "normal"
        if "owner_setpoint_c" in info:
            state = "set by hand in the ViCare app (the EMS leaves it alone)"
        print(
            f"DHW target:    {info['dhw_target_c']:g} °C ({state}; EMS uses "
            f"{info['normal_c']:g}/{info['boost_c']:g}, allowed {lo:g}..{hi:g} step {step:g})"
        )
    if "dhw_actual_c" in info:
        actual = info["dhw_actual_c"]
        print(
            "DHW actual:    "
            + (f"{actual:g} °C" if actual is not None else f"unknown ({info['dhw_actual_error']})")
        )
    print(
        f"call budget:   {info['budget_used_24h']} of {info['daily_budget']} used in the last "
        f"24 h, {info['budget_remaining']} left now"
    )
    if "blocked_until" in info:
        print(f"blocked:       by Viessmann until {info['blocked_until']}")
    if "error" in info:
        print(f"error:         {info['error']}")


# --------------------------------------------------------------------------- forecast show


def _forecast_show(args: argparse.Namespace) -> int:
    config = _config(args)
    now = clock.now()
    tz = config.control.tz
    if not config.forecast.enabled:
        print(
            "note: forecast.enabled is false: the daemon fetches no forecast and its rules run "
            "without one; this is what forecast.solar says for the configured planes",
            file=sys.stderr,
        )
    with _state_store(config) as store:
        source = ForecastSolar.from_config(config, store)
        error: str | None = None
        try:
            if args.refresh or source.usable(now) is None:
                try:
                    source.refresh(now)
                except AdapterError as exc:
                    error = str(exc)
            fc = source.forecast(now) if error is None else None
            cached = source.cached()
        finally:
            source.close()
    today = now.astimezone(tz).date()
    days = [today, today + timedelta(days=1)]
    info: dict[str, Any] = {"error": error}
    if cached is not None:
        age_s = (now - cached.fetched_at).total_seconds()
        usable = age_s <= config.forecast.max_age_s
        remaining = cached.remaining_today(now, tz) if usable else None
        info.update(
            fetched_at=cached.fetched_at.isoformat(timespec="seconds"),
            age_min=round(age_s / 60, 1),
            usable=usable,
            place=cached.place,
            remaining_today_wh=None if remaining is None else round(remaining),
            hourly_wh=[[t, round(wh)] for t, wh in hourly_table(cached, days, tz)],
        )
        if fc is not None:
            info["remaining_today_wh"] = round(fc.remaining_today_wh)
    if args.json:
        print(json.dumps(info, indent=1))
        return 0 if cached is not None else 1
    if cached is None:
        print(f"no forecast: {error or 'nothing cached yet'}")
        return 1
    if error:
        print(f"fetch failed ({error}); showing the cached forecast")
    print(
        f"fetched {info['fetched_at']} ({info['age_min']:g} min ago)"
        + (f", {info['place']}" if info["place"] else "")
    )
    if not info["usable"]:
        print(
            f"TOO OLD for the engine (max_age_s {config.forecast.max_age_s:g}): "
            "rules run without a forecast"
        )
    elif info["remaining_today_wh"] is None:
        print("the cached forecast says nothing about today")
    else:
        print(f"remaining today: {info['remaining_today_wh'] / 1000:.2f} kWh")
    for t, wh in info["hourly_wh"]:
        print(f"  {t}  {wh / 1000:6.2f} kWh")
    return 0
