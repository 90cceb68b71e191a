"""Shared fixtures and the rule for tests that need a real component.

A test marked `real` needs a program that may be absent (Prometheus, Chromium). Without it the
test skips with the reason, unless EMS_REQUIRE_REAL=1 (CI), where it fails instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "fixtures"
SCENARIOS = SHARED / "scenarios"
REQUIRE_REAL = os.environ.get("EMS_REQUIRE_REAL") == "1"


def pytest_configure(config: pytest.Config) -> None:
    # The emulators and parsers are checked against real device samples kept beside the
    # checkout: without them nothing meaningful can run, so say so instead of a traceback.
    if not FIXTURES.is_dir() or not SCENARIOS.is_dir():
        raise pytest.UsageError(
            f"the tests need {SHARED} (device fixtures and scenarios) next to the checkout"
        )


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


@pytest.fixture
def shared_fixtures() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"shared fixtures not found at {FIXTURES}")
    return FIXTURES
