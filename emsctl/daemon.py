"""`emsctl run`: the long-running service around the controller.

Drift-free ticks that never overlap, sd_notify readiness and watchdog, SIGTERM/SIGINT finish
the tick and exit 0, SIGHUP reloads the config (an invalid one is refused, the old one kept).
"""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from emsctl import clock, systemd
from emsctl.config import Config, ConfigError, load_config
from emsctl.controller import Controller, Devices
from emsctl.metrics import Metrics
from emsctl.plan_worker import PlanWorker
from emsctl.site import Site

log = logging.getLogger(__name__)

#: Days of stored samples the planner's house-load profile starts from.
PROFILE_DAYS = 28

PRUNE_EVERY = timedelta(hours=1)


#: Config sections a reload does not apply: their servers and files are opened at start-up.


def _devices_of(config: Config) -> tuple[Any, ...]:
    """What the adapters are built from: a reload rebuilds them when this changes."""
    loads = tuple((load, lc.enabled, lc.kind, lc.device) for load, lc in config.loads.items())
    return (config.prometheus, config.viessmann, config.forecast, loads)


def _log_banner(head: str, urls: list[str]) -> None:
    log.info("%s", head)
    for line in urls:
        log.info("%s", line)


@dataclass
class RunOptions:
    """How to run: the real house by default; the demo swaps in simulated parts."""

    config_path: str | None
    dry_run: bool = False
    #: Build the adapters for a config (the demo passes its simulated house).
    devices: Callable[[Config, Any], Devices] | None = None
    now: Callable[[], datetime] = clock.now
    #: Wall seconds between ticks (None: control.interval_s).
    tick_wall_s: float | None = None
    #: The database instead of the config's store.path (`run --db`, the demo): everything kept
    #: beside the database (lock, web UI key, Viessmann token) goes with it.
    store_path: str | None = None
    #: Called after every tick (the demo advances its plant here).
    after_tick: Callable[[Controller], None] | None = None
    #: Stop after this many ticks (None: run until signalled).
    max_ticks: int | None = None
    config: Config | None = None
    #: Shows the start-up summary once the servers listen: a headline and the addresses
    #: ("web UI: http://…/", "metrics: http://…/metrics"), which come last.
    banner: Callable[[str, list[str]], None] = _log_banner
    #: How to choose another port, per server ("webui", "metrics"), for a port in use.
    port_hints: dict[str, str] = field(
        default_factory=lambda: {
            "webui": "set webui.port in the config",
            "metrics": "set metrics.port in the config",
        }
    )


class PortInUse(Exception):
    """A server's port is taken; the message names it and how to choose another."""


class WebUiKeyProblem(Exception):
    """The web UI's session key file cannot be used; the message names it and the way out."""


class Daemon:
    """Owns the controller, the store, the servers and the signal handling."""

    def __init__(self, opts: RunOptions) -> None:
        self.opts = opts
        self.stop = threading.Event()
        self.reload = threading.Event()
        self.controller: Controller | None = None
        self.store: Any = None
        self.metrics_server: Any = None
        self.web_server: Any = None
        self._lock_handle: Any = None
        #: The signal that asked to stop (logged by the loop, not by the handler).
        self.stopped_by: str | None = None

    # -- start-up --------------------------------------------------------------------------------

    def _load(self) -> Config:
        if self.opts.config is not None:
            config = self.opts.config
        elif self.opts.config_path is None:
            raise ConfigError("(none)", [])
        else:
            config = load_config(self.opts.config_path)
        db = self.opts.store_path
        if db is not None and db != config.store.path:
            # As if the config said so: a reload keeps it, and what lives beside the database
            # (Viessmann token, web UI key, lock) is found beside this one.
            config = config.model_copy(
                update={"store": config.store.model_copy(update={"path": db})}
            )
        return config

    def start(self) -> None:
        from emsctl.store import Store, StoreListener
        from emsctl.wiring import build_devices

        config = self._load()
        db = config.store.path
        self.store = Store.open(db, retention_days=config.store.retention_days)
        self._take_lock(db)
        now = self.opts.now()
        restored = self.store.restore_statuses(now, config)
        site = Site(
            config, now, restored, listeners=[StoreListener(self.store)], dry_run=self.opts.dry_run
        )
        make = self.opts.devices or build_devices
        devices = make(config, self.store)
        metrics = Metrics()
        metrics.set_info(self.opts.dry_run)
        self.controller = Controller(
            config,
            site,
            devices,
            store=self.store,
            metrics=metrics,
            dry_run=self.opts.dry_run,
            now=self.opts.now,
            # Wall-clock steps are found against the monotonic clock; simulated time has none.
            monotonic=clock.monotonic if self.opts.now is clock.now else None,
            cars=self.store,
            planner=self._planner(config, now),
        )
        urls: list[str] = []
        if config.metrics.enabled:
            with self._binding("metrics", config.metrics.bind, config.metrics.port):
                self.metrics_server = metrics.serve(config.metrics.bind, config.metrics.port)
            port = self.metrics_server.server_port
            urls.append(f"metrics: {_url(config.metrics.bind, port)}/metrics")
        if config.webui.enabled:
            with self._binding("webui", config.webui.bind, config.webui.port):
                urls.insert(0, self._start_web(config))
        mode = " (dry run: nothing is switched)" if self.opts.dry_run else ""
        # The addresses last: they are what the owner looks for after the start-up lines.
        self.opts.banner(f"EMS running{mode}; database {db}", urls)

    def _planner(self, config: Config, now: datetime) -> PlanWorker | None:
        """Rule 19's planner, its house-load profile learned from the stored samples."""
        if not config.planner.enabled:
            return None
        from emsctl.planner.driver import Planner

        assert self.store is not None
        planner = Planner(config)
        learned = self.store.consumption_since(now - timedelta(days=PROFILE_DAYS))
        for at, watts in learned:
            planner.profile.add(at, watts)
        log.info("planner on; house-load profile from %d stored samples", len(learned))
        worker = PlanWorker(planner, sink=self.store)
        worker.start()
        return worker

    @contextmanager
    def _binding(self, server: str, bind: str, port: int) -> Iterator[None]:
        """Turn "address already in use" into one line naming the port and the way out."""
        try:
            yield
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                raise
            what = "web UI" if server == "webui" else "metrics exporter"
            why = {
                errno.EADDRINUSE: "is already in use",
                errno.EACCES: "may not be used by this user",
            }.get(exc.errno or 0, "cannot be bound")
            raise PortInUse(
                f"cannot start: port {port} on {bind} for the {what} {why}; "
                f"{self.opts.port_hints.get(server, 'choose another port')}"
            ) from None

    def _take_lock(self, db: str) -> None:
        if db == ":memory:":
            return
        from emsctl import runlock

        self._lock_handle = runlock.acquire(runlock.lock_path(db))

    def _start_web(self, config: Config) -> str:
        from webui import create_app
        from webui.secret import SecretKeyError
        from webui.serve import serve

        assert self.controller is not None
        try:
            app = create_app(config, self.store, self.controller)
        except SecretKeyError as exc:
            raise WebUiKeyProblem(f"cannot start: {exc}") from None
        # serve() warns by itself when the UI listens beyond localhost without a password.
        self.web_server = serve(app, config.webui.bind, config.webui.port)
        self.web_server.start()
        return f"web UI: {_url(config.webui.bind, self.web_server.port)}/"

    # -- the loop --------------------------------------------------------------------------------

    def install_signals(self) -> None:
        # The handlers only raise flags. Logging from a handler can interrupt this thread's own
        # write to stderr ("reentrant call inside BufferedWriter"), and the exception would
        # leave the stop unrecorded: the daemon would ignore SIGTERM.
        def on_stop(signum: int, _frame: FrameType | None) -> None:
            self.stopped_by = signal.Signals(signum).name
            self.stop.set()
            if self.controller is not None:
                self.controller.wake.set()

        def on_hup(_signum: int, _frame: FrameType | None) -> None:
            self.reload.set()
            if self.controller is not None:
                self.controller.wake.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    def loop(self) -> None:
        """Tick on a fixed grid (no drift); an early wake-up runs an extra tick."""
        ctl = self.controller
        assert ctl is not None
        interval = self.opts.tick_wall_s or ctl.config.control.interval_s
        ping = systemd.watchdog_interval_s()
        systemd.notify("READY=1")
        origin = clock.monotonic()
        n = 0
        last_prune: datetime | None = None
        while not self.stop.is_set():
            self._one_tick(ctl)
            systemd.notify("WATCHDOG=1")
            report = ctl.latest()
            now = report.at if report is not None else self.opts.now()
            if last_prune is None or now - last_prune >= PRUNE_EVERY:
                self.store.prune(now)
                last_prune = now
            if self.opts.after_tick is not None:
                self.opts.after_tick(ctl)
            if self.opts.max_ticks is not None and ctl.ticks >= self.opts.max_ticks:
                break
            if self.reload.is_set():
                self.reload.clear()
                reloaded = self._reload()
                new_interval = self.opts.tick_wall_s or reloaded.control.interval_s
                if new_interval != interval:
                    interval, origin, n = new_interval, clock.monotonic(), 0
            # Next slot on the grid; if a tick overran, skip the slots it covered.
            elapsed = clock.monotonic() - origin
            n = max(n + 1, int(elapsed // interval) + 1)
            deadline = origin + n * interval
            while not self.stop.is_set():
                left = deadline - clock.monotonic()
                if left <= 0:
                    break
                if ctl.wake.wait(min(left, ping) if ping else left):
                    ctl.wake.clear()
                    if self.stop.is_set() or self.reload.is_set():
                        break
                    self._one_tick(ctl)  # an override asked for an immediate decision
                systemd.notify("WATCHDOG=1")
        if self.stopped_by is not None:
            log.info("signal %s: stopping", self.stopped_by)

    def _one_tick(self, ctl: Controller) -> None:
        try:
            ctl.tick()
        except Exception:  # one bad tick must not end the service
            log.exception("tick failed; the next one runs as scheduled")
            if ctl.metrics is not None:
                ctl.metrics.count_tick_failure()
        if ctl.metrics is not None and self.store is not None:
            ctl.metrics.set_store_failures(self.store.failures)

    def _reload(self) -> Config:
        """Read the config file again and hand it to the controller (from its next tick on).
        Returns the configuration the daemon runs with from now on."""
        ctl = self.controller
        assert ctl is not None
        old = ctl.config
        try:
            config = self._load()
        except ConfigError as exc:
            log.error("SIGHUP: keeping the running configuration; the new one is invalid:\n%s", exc)
            return old
        devices = None
        if _devices_of(config) != _devices_of(old):
            # New adapters before anything is swapped: if they cannot be built (a credentials
            # file gone), the running configuration stays whole.
            from emsctl.wiring import build_devices

            make = self.opts.devices or build_devices
            try:
                devices = make(config, self.store)
            except Exception as exc:
                log.error("SIGHUP: keeping the running configuration; its devices: %s", exc)
                return old
        ctl.reconfigure(config, devices)
        log.info(
            "SIGHUP: configuration reloaded from %s%s",
            self.opts.config_path,
            "; devices, Prometheus and cloud clients rebuilt" if devices is not None else "",
        )
        restart_only = {
            "store": (config.store, old.store),
            "webui": (config.webui, old.webui),
            "metrics": (config.metrics, old.metrics),
            "planner": (config.planner, old.planner),
        }
        for section, (new_part, old_part) in restart_only.items():
            if new_part != old_part:
                log.warning("SIGHUP: %s.* changed: takes effect at the next restart", section)
        return config

    # -- shutdown --------------------------------------------------------------------------------

    def shutdown(self, *, started: bool = True) -> None:
        """Stop everything started. After a failed start nothing is switched: this process
        never drove a relay, and the owner's last line is the reason it did not start."""
        systemd.notify("STOPPING=1")
        ctl = self.controller
        if ctl is not None:
            if started and ctl.config.control.on_exit == "all_off" and not self.opts.dry_run:
                ctl.switch_all_off(self.opts.now())
            elif started:
                log.info("leaving the relays as they are (on_exit: leave; dead-man timers run)")
            ctl.close()
        if self.web_server is not None:
            self.web_server.close()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
        if self.store is not None:
            self.store.close()
        if self._lock_handle is not None:
            self._lock_handle.release()


def _url(bind: str, port: int) -> str:
    """Where a browser on this machine reaches a server bound to `bind` (a wildcard address
    is reached on the loopback; an IPv6 address goes in brackets)."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(bind, bind)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def run(opts: RunOptions) -> int:
    """Start, loop until signalled, shut down. Exit code for the CLI."""
    from emsctl.adapters.credentials import CredentialsError
    from emsctl.runlock import LockHeld
    from emsctl.store import StoreError

    daemon = Daemon(opts)
    daemon.install_signals()
    try:
        daemon.start()
    except (ConfigError, PortInUse, WebUiKeyProblem, CredentialsError, StoreError, LockHeld) as exc:
        # Shut down first, so that the reason is the last line the owner sees.
        daemon.shutdown(started=False)
        # These messages say "cannot start" themselves (or are a config's own report).
        whole = isinstance(exc, ConfigError | PortInUse | WebUiKeyProblem)
        sys.stderr.write(f"{exc}\n" if whole else f"cannot start: {exc}\n")
        # What the owner must fix (a file, a port) is exit 2, as for bad input elsewhere;
        # another EMS holding the lock is a state that passes.
        return 1 if isinstance(exc, LockHeld) else 2
    except BaseException:
        daemon.shutdown(started=False)
        raise
    try:
        daemon.loop()
    finally:
        daemon.shutdown()
    log.info("stopped")
    return 0


def missing_directory(db: str | None) -> str | None:
    """Why `--db PATH` cannot be created (its directory is not there), or None."""
    if db is None or db == ":memory:":
        return None
    parent = Path(db).expanduser().parent
    if parent.is_dir():
        return None
    return f"--db {db}: directory {parent} does not exist (create it, or pick another path)"


def _cmd_run(args: argparse.Namespace) -> int:
    problem = missing_directory(args.db)
    if problem is not None:
        sys.stderr.write(f"emsctl run: {problem}\n")
        return 2
    return run(RunOptions(config_path=args.config, dry_run=args.dry_run, store_path=args.db))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from emsctl.cli import add_config_arg

    p = sub.add_parser("run", help="run the control loop (the systemd service)")
    add_config_arg(p)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="decide, log and persist what would be done, but switch nothing",
    )
    p.add_argument(
        "--db",
        default=None,
        metavar="PATH",
        help="database file (default: store.path of the config), e.g. ./ems.db in a checkout",
    )
    p.set_defaults(func=_cmd_run)
