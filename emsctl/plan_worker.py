"""The daemon's side of the planner: plans are made on a thread of their own, so that a tick
never waits for one; the tick offers its inputs and reads the plan in force."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from emsctl.model import LoadId, PlanWord, Snapshot
from emsctl.planner.driver import Planner
from emsctl.planner.types import Plan
from emsctl.site import LoadFacts

log = logging.getLogger(__name__)

#: The store's key/value entry that holds the latest plan (for `emsctl plan`).
PLAN_KEY = "planner.plan"


class PlanSink(Protocol):
    def kv_put(self, key: str, value: str, at: datetime) -> object: ...


class PlanWorker:
    """Runs `Planner.update` off the tick. `synchronous` plans in the caller's thread (tests,
    the replay)."""

    def __init__(
        self, planner: Planner, *, sink: PlanSink | None = None, synchronous: bool = False
    ) -> None:
        self.planner = planner
        self.sink = sink
        self.synchronous = synchronous
        self.last_seconds: float | None = None
        self.errors = 0
        self._failing = False
        self._lock = threading.Lock()
        self._job: tuple[datetime, Snapshot, dict[LoadId, LoadFacts]] | None = None
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.synchronous or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="planner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def offer(
        self,
        now: datetime,
        snapshot: Snapshot,
        statuses: Mapping[LoadId, LoadFacts],
        copies: Callable[[], Mapping[LoadId, LoadFacts]],
    ) -> None:
        """Hand the tick's inputs over when a new plan is due; never waits for it.
        `statuses` are the live records (for the check), `copies` makes copies to plan with."""
        if not self.planner.due(now, snapshot.forecast, statuses):
            return
        job = (now, snapshot, dict(copies()))
        if self.synchronous:
            self._plan(*job)
            return
        with self._lock:
            self._job = job
        self._wake.set()

    def words(self, now: datetime) -> dict[LoadId, PlanWord]:
        return self.planner.words(now)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                job, self._job = self._job, None
            if job is not None and not self._stopping:
                self._plan(*job)

    def _plan(
        self, now: datetime, snapshot: Snapshot, statuses: Mapping[LoadId, LoadFacts]
    ) -> None:
        started = time.perf_counter()
        try:
            plan = self.planner.update(now, snapshot, statuses)
        except Exception as exc:  # a failed plan must never stop the rules
            self.errors += 1
            self.planner.plan = None
            first = self.planner.failed is None or not self._failing
            self.planner.failed = f"{type(exc).__name__}: {exc}"
            self._failing = True
            if first:  # once per episode, not every try
                log.exception("planning failed; the rules act alone")
            return
        finally:
            self.last_seconds = time.perf_counter() - started
        if self._failing:
            log.info("planning works again")
            self._failing = False
        if plan is None:
            log.debug("no plan: %s", self.planner.failed)
            return
        if self.sink is not None:
            try:
                self.sink.kv_put(PLAN_KEY, json.dumps(plan_json(plan, self.planner)), now)
            except Exception as exc:  # the plan stays in force; only its copy is missing
                log.warning("plan not stored: %s", exc)


def plan_json(plan: Plan, planner: Planner) -> dict[str, Any]:
    """The plan as JSON: slots with PV, consumption, SOC and the loads planned on, and runs."""
    tz = planner.tz
    runs = [
        {
            "load": b.load.value,
            "from": plan.slot_start(b.first).isoformat(),
            "until": plan.slot_start(b.last + 1).isoformat(),
            "local": f"{plan.slot_start(b.first).astimezone(tz):%a %H:%M}-"
            f"{plan.slot_start(b.last + 1).astimezone(tz):%H:%M}",
            "spare_wh": round(b.spare_wh),
        }
        for b in plan.blocks
    ]
    on: dict[int, list[str]] = {}
    for b in plan.blocks:
        for k in range(b.first, b.last + 1):
            on.setdefault(k, []).append(b.load.value)
    slots = [
        {
            "at": plan.slot_start(k).isoformat(),
            "pv_wh": round(plan.pv_wh[k], 1),
            "load_wh": round(plan.load_wh[k], 1),
            "soc_pct": round(plan.soc_pct[k], 1),
            "import_wh": round(plan.import_wh[k], 1),
            "export_wh": round(plan.export_wh[k], 1),
            "curtailed_wh": round(plan.curtailed_wh[k], 1),
            "on": on.get(k, []),
        }
        for k in range(len(plan.pv_wh))
    ]
    return {
        "made_at": plan.made_at.isoformat(),
        "start": plan.start.isoformat(),
        "runs": runs,
        "slots": slots,
    }
