"""The replay simulator: scenario reader, plant model, in-memory adapters, KPI report."""
