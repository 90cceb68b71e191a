"""Settings that pass validation but will not work at run time: `check-config` warns of them.

Pure: a list of one-line warnings from the parsed config and what the file held.
"""

from __future__ import annotations

from typing import Any

from emsctl.config import Config


def config_warnings(cfg: Config, data: Any) -> list[str]:
    """Warnings for `cfg`, parsed from `data` (the file's YAML; None for an empty file)."""
    out: list[str] = []
    if not data:
        out.append(
            "the file is empty: every setting is the package default (docs/decision-logic.md "
            "lists them); at least prometheus.url and the loads' device addresses are needed"
        )
    dhw = cfg.loads.dhw
    cloud = cfg.viessmann
    dhw_on_cloud = dhw.enabled and dhw.device.type == "viessmann_dhw"
    if (cloud.enabled or dhw_on_cloud) and not cloud.client_id.strip():
        out.append(
            "viessmann.client_id is empty: the hot-water boost cannot log in; register a "
            "client (docs/cloud.md), set viessmann.client_id, then run `emsctl viessmann login`"
        )
    if dhw_on_cloud and not cloud.enabled:
        out.append(
            "loads.dhw uses the Viessmann cloud but viessmann.enabled is false: the boost "
            "is decided but never written"
        )
    wallboxes = cfg.loads.wb_a, cfg.loads.wb_b
    on_surplus = all(wb.enabled and not wb.fallback.enabled for wb in wallboxes)
    if on_surplus and not cfg.control.exclusive:
        out.append(
            "control.exclusive is empty: both wallboxes may run on surplus together "
            "(2 kW + 4 kW can exceed the inverter's AC limit)"
        )
    return out
