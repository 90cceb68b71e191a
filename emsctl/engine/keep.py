"""Pass: the stop conditions of a running load besides the budget (rules 1, 7, 9, 15): the SOC
gate with its hysteresis, the outdoor limit, an exclusive peer that is on, and the car
charging window that keeps a wallbox on whatever the surplus."""

from __future__ import annotations

from collections.abc import Mapping

from emsctl import units
from emsctl.engine import exclusion
from emsctl.engine.facts import Facts, Judgement
from emsctl.model import EMS_RUNNING, LoadId, ReasonCode


def keep_running(js: Mapping[LoadId, Judgement], facts: Facts) -> None:
    """Judge `keep_ok` of each running load; without fresh data it holds (rule 13)."""
    if not facts.fresh:
        return
    c = facts.config.control
    soc = facts.soc
    outdoor = facts.snapshot.outdoor_c
    for load in facts.order:
        j = js[load]
        if j.status.state not in EMS_RUNNING:
            continue
        window = j.cfg.charging_window
        if window is not None and window.covers(facts.local):
            j.keep_ok = True
            j.add(ReasonCode.CHARGING_WINDOW, window.reason)
        elif soc is not None and soc < j.gate - c.gate_hysteresis_pct:
            j.keep_ok = False
            j.add(
                ReasonCode.SOC_GATE,
                f"soc {units.percent(soc)} < gate {units.percent(j.gate)} - "
                f"{c.gate_hysteresis_pct:g}",
            )
        limit = j.cfg.outdoor_limit_c
        if limit is not None and outdoor is not None and outdoor > limit:
            j.keep_ok = False
            j.add(ReasonCode.OUTDOOR_LIMIT, f"outdoor {outdoor:.1f}°C > {limit:g}°C")
        _give_way(load, js, facts)


def _give_way(load: LoadId, js: Mapping[LoadId, Judgement], facts: Facts) -> None:
    """Rule 7 while running: two exclusive loads can only both be on by a person's doing
    (adopted after a manual hold). The EMS gives way, by the ordinary stop: to a load it
    does not drive, and to a higher-priority one it does."""
    j = js[load]
    for peer in exclusion.peers_on(load, js, facts, exempt_peers=True):
        pst = js[peer].status
        if pst.state not in EMS_RUNNING or facts.order.index(peer) < facts.order.index(load):
            j.keep_ok = False
            j.add(ReasonCode.EXCLUSION, f"exclusive with {peer.value}, which is running")
