"""EMS: a PV self-consumption optimiser for one house (heat pump, hot water, two wallboxes)."""

__version__ = "0.1.0"
