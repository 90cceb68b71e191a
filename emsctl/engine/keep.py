"""Pass: the stop conditions of a running load besides the budget (rules 1, 7, 9, 15, 17, 19): the
SOC gate with its hysteresis, the outdoor limit, an exclusive peer that is on, a wallbox's mode
off, and the charging window or target that keeps a wallbox on whatever the surplus."""

from __future__ import annotations

from collections.abc import Mapping

from emsctl import units
from emsctl.engine import exclusion
from emsctl.engine.facts import Facts, Judgement
from emsctl.engine.target import plan_note
from emsctl.model import EMS_RUNNING, ChargeMode, LoadId, ReasonCode


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
        must = facts.must.get(load)
        plan = j.status.plan
        if must is not None:
            j.keep_ok = True
            j.add(must.code, must.text)
        elif plan is not None and plan.mode is ChargeMode.OFF and j.cfg.car_charging:
            j.keep_ok = False
            j.add(ReasonCode.MODE_OFF, "charging mode off")
        else:
            note = plan_note(j.status, j.cfg, facts.now, c.tz)
            if note is not None:
                j.add(*note)
        word = j.status.planned
        if word is not None and word.on:
            j.add(ReasonCode.PLANNED, word.text)
        if must is None and soc is not None and soc < j.gate - c.gate_hysteresis_pct:
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
