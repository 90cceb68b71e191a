"""Adapters at the edge: Prometheus, Shelly relays, the Viessmann cloud and forecast.solar."""
