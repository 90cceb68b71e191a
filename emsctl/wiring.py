"""Builds the real adapters for a config: the Prometheus collector, one actuator per load,
and the forecast source. The daemon and the owner's CLI checks use this; the demo does not.
"""

from __future__ import annotations

import logging

from emsctl.adapters.base import Actuator, ForecastSource
from emsctl.adapters.credentials import Credentials
from emsctl.adapters.prometheus import PrometheusCollector
from emsctl.adapters.shelly import make_actuator
from emsctl.adapters.statestore import StateStore
from emsctl.config import Config
from emsctl.controller import Devices
from emsctl.model import LoadId

log = logging.getLogger(__name__)


def build_actuators(config: Config, state: StateStore) -> dict[LoadId, Actuator]:
    """One actuator per enabled load with a device; loads without one are decided but not
    switched (their commands are logged like a dry run)."""
    creds = Credentials.for_config(config)
    out: dict[LoadId, Actuator] = {}
    for load in config.enabled_loads():
        lc = config.loads.get(load)
        kind = lc.device.type
        if kind in ("shelly_gen1", "shelly_gen2"):
            out[load] = make_actuator(load, lc, creds)
        elif kind == "viessmann_dhw" and config.viessmann.enabled:
            from emsctl.adapters.viessmann import ViessmannDhw

            out[load] = ViessmannDhw.from_config(config, state)
        else:
            log.info("%s: no device configured (type %s): decisions are not switched", load, kind)
    return out


def build_devices(config: Config, state: StateStore) -> Devices:
    forecast: ForecastSource | None = None
    if config.forecast.enabled:
        from emsctl.adapters.forecast_solar import ForecastSolar

        forecast = ForecastSolar.from_config(config, state)
    return Devices(
        collector=PrometheusCollector.from_config(config),
        actuators=build_actuators(config, state),
        forecast=forecast,
    )
