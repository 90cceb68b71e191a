"""`emsctl` entry point: a thin argparse front; each area registers its own subcommands.

Exit codes: 0 success, 1 runtime failure, 2 bad input (config, arguments).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from emsctl import __version__, redact
from emsctl.config import Config, ConfigError, dump_config, load_config

log = logging.getLogger(__name__)

#: Where `emsctl` looks for its configuration when --config is not given.
DEFAULT_CONFIG = os.environ.get("EMS_CONFIG", "/etc/ems/ems-config.yaml")

#: Which module registers each subcommand (its `register(subparsers)`); each area owns its
#: module and adds its commands here. Only the module of the command being run is imported:
#: `emsctl run` would otherwise carry the simulator, Alembic and the other CLIs' imports for
#: its whole life (docs/performance.md, "Memory"). A test keeps this table and the modules'
#: `register()` in step.
COMMANDS: dict[str, str] = {
    "diagram": "emsctl.diagram",
    "viessmann": "emsctl.adapters.viessmann_cli",
    "forecast": "emsctl.adapters.viessmann_cli",
    "db": "emsctl.store.cli",
    "history": "emsctl.store.cli",
    "stats": "emsctl.store.cli",
    "car": "emsctl.cars.cli",
    "plan": "emsctl.plan_cli",
    "simulate": "emsctl.sim.cli",
    "webui": "emsctl.webui_cli",
    "run": "emsctl.daemon",
    "demo": "emsctl.sim.demo",
    "snapshot": "emsctl.adapters.cli",
    "device": "emsctl.adapters.cli",
}

#: Modules that add subcommands, in the order `emsctl --help` lists them.
COMMAND_MODULES: tuple[str, ...] = tuple(dict.fromkeys(COMMANDS.values()))

#: Options of the top-level parser that take a value (to find the command word in argv).
_VALUE_OPTIONS = ("--log-level",)


def add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        "-c",
        default=DEFAULT_CONFIG,
        help=f"YAML configuration (default: $EMS_CONFIG or {DEFAULT_CONFIG})",
    )


def config_or_exit(path: str) -> Config:
    """Load the config or print its problems and exit 2."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None


def _check_config(args: argparse.Namespace) -> int:
    from emsctl.config_warnings import config_warnings

    try:
        cfg = load_config(args.path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    import yaml

    # Valid YAML (load_config read it): what the file itself held, for the warnings.
    with open(args.path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    for warning in config_warnings(cfg, data):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"# {args.path}: valid. Effective configuration (defaults filled in, secrets ***):")
    print(dump_config(cfg), end="")
    return 0


def command_word(argv: Sequence[str]) -> str | None:
    """The subcommand named in argv (None for none, or before a --help / --version)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _VALUE_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            return arg
        elif not arg.startswith(tuple(f"{o}=" for o in _VALUE_OPTIONS)):
            return None  # -h, --version or an unknown option: the full parser answers
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand, or only with `command`'s module when it is known."""
    parser = argparse.ArgumentParser(
        prog="emsctl", description="EMS: PV self-consumption control for one house."
    )
    parser.add_argument("--version", action="version", version=f"emsctl {__version__}")
    parser.add_argument(
        "--log-level",
        type=_log_level,
        default=None,
        help=f"one of {', '.join(LOG_LEVELS)} (default: $EMS_LOG_LEVEL, else INFO)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    if command in COMMANDS:
        modules: Sequence[str] = [COMMANDS[command]]
    else:
        p = sub.add_parser(
            "check-config", help="validate a config file and print the effective one"
        )
        p.add_argument("path")
        p.set_defaults(func=_check_config)
        # No command, --help or a typo: every command, so that argparse can list them.
        modules = () if command == "check-config" else COMMAND_MODULES
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r}: one of {', '.join(LOG_LEVELS)}")
    return level


def resolve_log_level(given: str | None, env: str | None) -> tuple[str, str | None]:
    """The level to log at, and a warning when $EMS_LOG_LEVEL is not one.

    A wrong level in the environment must not keep the service from starting: it logs at
    INFO and says so (a wrong --log-level on the command line is refused by argparse).
    """
    if given is not None:
        return given, None
    if env is None or not env.strip():
        return "INFO", None
    level = env.strip().upper()
    if level in LOG_LEVELS:
        return level, None
    return "INFO", (
        f"EMS_LOG_LEVEL={env!r} is not a log level ({', '.join(LOG_LEVELS)}); logging at INFO"
    )


def setup_logging(level: str) -> None:
    """Plain `level logger: message` lines; journald adds the timestamp."""
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("JOURNAL_STREAM") and not os.environ.get("INVOCATION_ID"):
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr, force=True)
    redact.install()
    # httpx logs every request at INFO: one line per device per tick is noise in the journal;
    # Alembic names its plugins and its SQLite dialect at every start.
    for noisy in ("httpx", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(command_word(argv))
    args = parser.parse_args(argv)
    level, warning = resolve_log_level(args.log_level, os.environ.get("EMS_LOG_LEVEL"))
    setup_logging(level)
    if warning:
        log.warning("%s", warning)
    try:
        rc: int = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went early (`emsctl ... | head`): what it wanted it has. Nothing more may
        # reach the closed pipe, not even at exit's flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt:
        # Ctrl-C at a prompt (viessmann login) or during a long command (simulate, snapshot
        # waiting on a slow device): the person meant it; no traceback. `run` and `demo`
        # handle SIGINT themselves and stop cleanly.
        print("\nemsctl: interrupted", file=sys.stderr)
        return 130
    return rc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
