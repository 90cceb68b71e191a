"""Fixtures shared by the integration tests: a real Prometheus fed by a test exporter, and
the Shelly emulators."""

from tests.support.prometheus_server import (  # noqa: F401 - fixtures are found by name
    house_exporter,
    prometheus,
    prometheus_instance,
)
from tests.support.shelly_fixtures import gen1_emulator, gen2_emulator  # noqa: F401
