"""`emsctl` entry point: a thin argparse front; each area registers its own subcommands.

Exit codes: 0 success, 1 runtime failure, 2 bad input (config, arguments).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from emsctl import __version__
from emsctl.config import Config, ConfigError, dump_config, load_config

log = logging.getLogger(__name__)

#: Where `emsctl` looks for its configuration when --config is not given.
DEFAULT_CONFIG = os.environ.get("EMS_CONFIG", "/etc/ems/ems-config.yaml")

#: Modules that add subcommands: each has `register(subparsers)`.
#: Each area owns its module; add one line here per area.
COMMAND_MODULES: tuple[str, ...] = (
    "emsctl.diagram",
    "emsctl.adapters.viessmann_cli",
    "emsctl.store.cli",
    "emsctl.sim.cli",
    "emsctl.webui_cli",
    "emsctl.daemon",
    "emsctl.sim.demo",
    "emsctl.adapters.cli",
)


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
    try:
        cfg = load_config(args.path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"# {args.path}: valid. Effective configuration (defaults filled in):")
    print(dump_config(cfg), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emsctl", description="EMS: PV self-consumption control for one house."
    )
    parser.add_argument("--version", action="version", version=f"emsctl {__version__}")
    parser.add_argument(
        "--log-level", default=os.environ.get("EMS_LOG_LEVEL", "INFO"), help="DEBUG, INFO, ..."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("check-config", help="validate a config file and print the effective one")
    p.add_argument("path")
    p.set_defaults(func=_check_config)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def setup_logging(level: str) -> None:
    """Plain `level logger: message` lines; journald adds the timestamp."""
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("JOURNAL_STREAM") and not os.environ.get("INVOCATION_ID"):
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr, force=True)
    # httpx logs every request at INFO: one line per device per tick is noise in the journal.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
