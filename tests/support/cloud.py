"""Configs and a scripted login for tests of the cloud adapters against their emulators."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from emsctl import clock
from emsctl.adapters.viessmann_auth import (
    TokenFile,
    begin_login,
    complete_login,
    token_path,
)
from emsctl.config import Config, parse_config
from tests.support.forecast_emulator import ForecastEmulator
from tests.support.viessmann_emulator import ViessmannEmulator


def config_for(
    tmp_path: Path,
    viessmann: ViessmannEmulator | None = None,
    forecast: ForecastEmulator | None = None,
    *,
    viessmann_overrides: dict[str, Any] | None = None,
    forecast_overrides: dict[str, Any] | None = None,
    dhw: dict[str, Any] | None = None,
    timezone: str = "Europe/Berlin",
) -> Config:
    """A Config whose store lives in tmp_path and whose cloud URLs point at the emulators."""
    doc: dict[str, Any] = {
        "store": {"path": str(tmp_path / "ems.db")},
        "control": {"timezone": timezone},
    }
    if viessmann is not None:
        doc["viessmann"] = viessmann.viessmann_config(**(viessmann_overrides or {}))
    if forecast is not None:
        doc["forecast"] = forecast.forecast_config(**(forecast_overrides or {}))
    if dhw:
        doc["loads"] = {"dhw": dhw}
    return parse_config(doc, "test")


def write_config(tmp_path: Path, config: Config) -> Path:
    """The same config as a YAML file, for CLI tests."""
    path = tmp_path / "ems-config.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", by_alias=True)))
    return path


def login(config: Config, emulator: ViessmannEmulator) -> dict[str, Any]:
    """The owner's one-time login, done programmatically against the emulator."""
    pending = begin_login(config.viessmann, clock.now())
    redirected = emulator.browser_login(pending.url)
    return complete_login(
        config.viessmann, pending, redirected, TokenFile(token_path(config)), clock.now()
    )
