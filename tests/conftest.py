"""Shared fixtures and the rule for tests that need a real component.

A test marked `real` needs a program that may be absent (Prometheus, Chromium). Without it the
test skips with the reason, unless EMS_REQUIRE_REAL=1 (CI), where it fails instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

#: Real device and API samples (provenance in tests/fixtures/README.md).
FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: Scenarios only the tests use; the package's own ones are in emsctl/sim/scenarios.
SCENARIOS = FIXTURES / "scenarios"
REQUIRE_REAL = os.environ.get("EMS_REQUIRE_REAL") == "1"


def need_real(what: str, available: bool, hint: str) -> None:
    """Skip (or fail under EMS_REQUIRE_REAL=1) when a real component is missing."""
    if available:
        return
    msg = f"{what} is not available ({hint})"
    if REQUIRE_REAL:
        pytest.fail(f"EMS_REQUIRE_REAL=1 but {msg}", pytrace=False)
    pytest.skip(msg)


def need_binary(name: str, *candidates: str, hint: str = "") -> str:
    """Path of a real program, or skip/fail per need_real."""
    for c in (name, *candidates):
        found = shutil.which(c) or (c if os.path.isabs(c) and os.access(c, os.X_OK) else None)
        if found:
            return found
    need_real(name, False, hint or f"install the Debian package providing {name!r}")
    raise AssertionError("unreachable")


@contextmanager
def untraced() -> Iterator[None]:
    """Run the block without coverage's tracer, when one runs (make test).

    A year's replay takes three to four times as long under the tracer, and what it runs is
    covered by the unit tests (the 100 % gate on the engine and the machines is reached
    without the replays). Only whole-year replays use this.
    """
    try:
        import coverage
    except ImportError:  # pragma: no cover - a dev dependency
        yield
        return
    # Every running instance: in a pytest-xdist worker pytest-cov starts two, and stopping the
    # latest resumes the one before it.
    stopped: list[coverage.Coverage] = []
    while (cov := coverage.Coverage.current()) is not None:
        cov.stop()
        stopped.append(cov)
    try:
        yield
    finally:
        for cov in reversed(stopped):
            cov.start()


#: Loggers whose level `emsctl`'s set-up changes besides the root's (emsctl.cli.setup_logging).
_SET_UP_LOGGERS = ("", "httpx", "alembic")


@contextmanager
def logging_restored() -> Iterator[None]:
    """The root logger's handlers and the set-up loggers' levels as they were before."""
    import logging

    root = logging.getLogger()
    handlers = list(root.handlers)
    levels = {name: logging.getLogger(name).level for name in _SET_UP_LOGGERS}
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """A test that runs `emsctl` (cli.main) sets logging up as the command does: a handler on
    this test's captured stderr. The next test must not inherit it, or a line logged later
    (a server thread, a timer) goes to a stream pytest has closed ("--- Logging error ---")."""
    with logging_restored():
        yield
