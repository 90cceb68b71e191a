"""Fixtures shared by the integration tests: a real Prometheus fed by a test exporter."""

from tests.support.prometheus_server import (  # noqa: F401 - fixtures are found by name
    house_exporter,
    prometheus,
    prometheus_instance,
)
