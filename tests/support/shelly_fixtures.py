"""pytest fixtures for the Shelly emulators (imported by the Shelly test modules)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from emsctl.adapters.shelly import ShellyGen1Actuator, ShellyGen2Actuator
from emsctl.config import DeviceConfig
from emsctl.model import LoadId
from tests.support.shelly_emulator import ShellyGen1Emulator, ShellyGen2Emulator

Gen1Factory = Callable[..., ShellyGen1Emulator]
Gen2Factory = Callable[..., ShellyGen2Emulator]


@pytest.fixture
def gen1_emulator() -> Iterator[Gen1Factory]:
    """Start Gen1 emulators with the given settings; all are stopped after the test."""
    started: list[ShellyGen1Emulator] = []

    def make(**kw: object) -> ShellyGen1Emulator:
        emu = ShellyGen1Emulator(**kw)  # type: ignore[arg-type]
        emu.start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.close()


@pytest.fixture
def gen2_emulator() -> Iterator[Gen2Factory]:
    started: list[ShellyGen2Emulator] = []

    def make(**kw: object) -> ShellyGen2Emulator:
        emu = ShellyGen2Emulator(**kw)  # type: ignore[arg-type]
        emu.start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.close()


def gen1_actuator(
    emu: ShellyGen1Emulator,
    password: str | None = None,
    *,
    load: LoadId = LoadId.SG_READY,
    metered: bool = False,
    **device: object,
) -> ShellyGen1Actuator:
    cfg = DeviceConfig(type="shelly_gen1", host=emu.host, **{"timeout_s": 2.0, **device})  # type: ignore[arg-type]
    return ShellyGen1Actuator(load, cfg, password=password, metered=metered)


def gen2_actuator(
    emu: ShellyGen2Emulator,
    password: str | None = None,
    *,
    load: LoadId = LoadId.WB_A,
    metered: bool = True,
    **device: object,
) -> ShellyGen2Actuator:
    cfg = DeviceConfig(type="shelly_gen2", host=emu.host, **{"timeout_s": 2.0, **device})  # type: ignore[arg-type]
    return ShellyGen2Actuator(load, cfg, password=password, metered=metered)
