"""Rule 7, mutual exclusion (`control.exclusive`): at most one load of a group is on, unless a
wallbox charges in a window or for a target exempt from it (rules 15, 17:
`fallback.ignores_exclusion`, `charging.ignores_exclusion`)."""

from __future__ import annotations

from collections.abc import Mapping

from emsctl.config import Config
from emsctl.engine.facts import Facts, Judgement
from emsctl.model import OUTPUT_ON, Event, LoadId, LoadStatus, ReasonCode


def exempt(load: LoadId, facts: Facts) -> bool:
    """Whether the load charges in a window, or for a target, that the exclusion does not
    bind."""
    must = facts.must.get(load)
    return must is not None and must.ignores_exclusion


def peers(load: LoadId, config: Config) -> list[LoadId]:
    """The loads that share an exclusive group with `load`, sorted."""
    out: set[LoadId] = set()
    for group in config.control.exclusive:
        if load in group:
            out.update(x for x in group if x is not load)
    return sorted(out)


def output_is_on(status: LoadStatus) -> bool:
    """Whether the load is (or is about to be) drawing power, as far as exclusion is concerned.

    The read-back counts as well as the state: a relay a person switched on is on now, even
    in the tick before the machine learns of it as `manual`. A wallbox kept on only to see a
    car come (rule 17) draws nothing and binds nobody.
    """
    if status.plan is not None and status.plan.awaiting:
        return False
    return status.state in OUTPUT_ON or status.reading.relay_on is True


def peers_on(
    load: LoadId, js: Mapping[LoadId, Judgement], facts: Facts, *, exempt_peers: bool
) -> list[LoadId]:
    """The load's exclusive peers that are on now and bind it; none while the load itself is
    exempt. `exempt_peers`: whether a peer charging in its exempt window binds it too (for
    the rules' starts and stops it does; an owner's Force on does not wait for one)."""
    if exempt(load, facts):
        return []
    return [
        p
        for p in peers(load, facts.config)
        if p in js and output_is_on(js[p].status) and (exempt_peers or not exempt(p, facts))
    ]


#: Events after which a load that was on is off.
_LEAVING = (Event.BRAKE, Event.SHED, Event.RELEASE, Event.FORCE_OFF, Event.DETECT_MANUAL)


def enforce(js: Mapping[LoadId, Judgement], facts: Facts) -> None:
    """At most one load of an exclusive group is on after this tick.

    A load already on keeps its place; then an owner's force beats an automatic start; then
    priority decides.
    """

    def rank(load: LoadId) -> int:
        j = js[load]
        if output_is_on(j.status) and j.event not in _LEAVING:
            return 0
        return {Event.FORCE_ON: 1, Event.START: 2}.get(j.event or Event.ARM, 3)

    for group in facts.config.control.exclusive:
        members = sorted(
            (x for x in facts.order if x in group and x in js and not exempt(x, facts)),
            key=rank,
        )
        holder: LoadId | None = None
        for load in members:
            if rank(load) == 3:
                continue
            if holder is None:
                holder = load
                continue
            if rank(load) == 0:
                continue  # both on already (a person's doing): not ours to undo here
            j = js[load]
            j.event = None
            j.candidate_start = False
            j.add(ReasonCode.EXCLUSION, f"exclusive with {holder.value}, which is switching on")
