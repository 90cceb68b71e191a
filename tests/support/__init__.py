"""Emulators and harnesses used by the tests (Shelly, Viessmann, forecast.solar, Prometheus)."""
