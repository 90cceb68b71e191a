"""The daemon's own Prometheus metrics (`/metrics` on :9099), on a registry per instance.

Names follow Prometheus conventions: `ems_` prefix, base units, `_total` counters, `_info`
for facts as labels. Every label value comes from a closed set (loads, states, events, modes,
reason codes, measurement names, error kinds), never from free text or numbers: a value that
changed every tick would make a new time series every tick. The decisions' human reasons are
in the web UI and /api/status; here each load has one series per reason code that holds.
Dashboards: deploy/grafana/ems-dashboard.json.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from emsctl import __version__
from emsctl.model import MEASUREMENTS, LoadId, ReasonCode, State
from emsctl.site import TickResult
from emsctl.status import StatusReport

log = logging.getLogger(__name__)


class Metrics:
    """Collectors updated by the controller after every tick."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.info = Gauge(
            "ems_build_info",
            "Version and mode of the running EMS",
            ["version", "dry_run"],
            registry=r,
        )
        self.state = Gauge(
            "ems_load_state",
            "1 for the state each load's machine is in",
            ["load", "state"],
            registry=r,
        )
        self.output = Gauge(
            "ems_load_output_on", "1 when the EMS drives the load on", ["load"], registry=r
        )
        self.power = Gauge(
            "ems_load_power_watts", "Measured power of a load with a meter", ["load"], registry=r
        )
        self.state_since = Gauge(
            "ems_load_state_since_timestamp_seconds",
            "When the load entered its state",
            ["load"],
            registry=r,
        )
        self.reason = Gauge(
            "ems_load_reason_info",
            "1 for each reason code of the load's current decision (docs/decision-logic.md)",
            ["load", "code"],
            registry=r,
        )
        self.override = Gauge(
            "ems_load_override_active",
            "1 while an owner's override is active",
            ["load", "mode"],
            registry=r,
        )
        self.gate = Gauge(
            "ems_load_gate_percent", "Effective SOC gate of the load", ["load"], registry=r
        )
        self.transitions = Counter(
            "ems_transitions_total", "State machine transitions", ["load", "event"], registry=r
        )
        self.commands = Counter(
            "ems_commands_total", "Switching commands sent", ["load", "result"], registry=r
        )
        self.errors = Counter(
            "ems_adapter_errors_total",
            "Collector and actuator errors by kind",
            ["where", "kind"],
            registry=r,
        )
        self.surplus = Gauge(
            "ems_surplus_watts", "Export plus battery charging as the engine saw it", registry=r
        )
        self.measurement = Gauge(
            "ems_measurement_value", "Measurements as seen by the EMS", ["name"], registry=r
        )
        self.age = Gauge(
            "ems_measurement_age_seconds", "Age of each measurement's sample", ["name"], registry=r
        )
        self.tick_seconds = Histogram(
            "ems_tick_duration_seconds",
            "Duration of one control tick",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.ticks = Counter("ems_ticks_total", "Control ticks run", registry=r)
        self.tick_failures = Counter(
            "ems_tick_failures_total", "Ticks that raised an exception", registry=r
        )
        self.store_failures = Gauge(
            "ems_store_failures",
            "Store writes that failed since start (disk full, locked)",
            registry=r,
        )
        self.last_tick = Gauge(
            "ems_last_tick_timestamp_seconds", "When the last tick ran", registry=r
        )
        self.cloud_calls = Gauge(
            "ems_cloud_calls", "Calls to cloud APIs since start", ["service"], registry=r
        )
        self.cloud_budget = Gauge(
            "ems_viessmann_budget_remaining",
            "Viessmann API calls left in the rolling 24 h budget",
            registry=r,
        )
        self.plan_age = Gauge(
            "ems_plan_age_seconds", "Age of the day-ahead plan in force (rule 19)", registry=r
        )
        self.plan_compute = Gauge(
            "ems_plan_compute_seconds", "How long the last plan took to make", registry=r
        )
        self.plans = Gauge("ems_plans_made", "Plans made since start", registry=r)
        self.plan_errors = Gauge(
            "ems_plan_errors", "Plans that failed with an error since start", registry=r
        )
        self.plan_soc = Gauge(
            "ems_plan_expected_soc_pct",
            "The SOC the plan expects at the end of the current slot",
            registry=r,
        )
        self.plan_on = Gauge(
            "ems_plan_load_on", "1 while the plan has the load on", ["load"], registry=r
        )
        self.plan_runs = Gauge(
            "ems_plan_runs", "Runs the plan in force holds for the load", ["load"], registry=r
        )
        self._reason_codes: dict[LoadId, frozenset[ReasonCode]] = {}
        self._override_labels: dict[LoadId, str] = {}

    def set_info(self, dry_run: bool) -> None:
        self.info.labels(version=__version__, dry_run=str(dry_run).lower()).set(1)

    # -- controller hooks ----------------------------------------------------------------------

    def observe_tick(self, report: StatusReport, result: TickResult, seconds: float) -> None:
        self.ticks.inc()
        self.tick_seconds.observe(seconds)
        self.last_tick.set(report.at.timestamp())
        if report.surplus_w is not None:
            self.surplus.set(report.surplus_w)
        snap = report.snapshot
        for name in MEASUREMENTS:
            value = getattr(snap, name)
            if value is not None:
                self.measurement.labels(name=name).set(value)
            elif (name,) in self._children(self.measurement):
                # A stale value must disappear, not linger as if it were current.
                self.measurement.remove(name)
            age = snap.ages_s.get(name)
            if age is not None:
                self.age.labels(name=name).set(age)
        for t in result.transitions:
            self.transitions.labels(load=t.load.value, event=t.event).inc()
        verdicts = result.decision.verdicts
        for load in report.loads.keys() | self._reason_codes.keys():
            v = verdicts.get(load) if load in report.loads else None
            self._set_codes(load, v.codes if v is not None else ())
        if report.plan is not None:
            self._observe_plan(report)
        for load, view in report.loads.items():
            lv = load.value
            for st in State:
                self.state.labels(load=lv, state=st.value).set(1 if view.state is st else 0)
            self.output.labels(load=lv).set(1 if view.output_on else 0)
            self.state_since.labels(load=lv).set(view.since.timestamp())
            if view.power_w is not None:
                self.power.labels(load=lv).set(view.power_w)
            if view.gate_pct is not None:
                self.gate.labels(load=lv).set(view.gate_pct)
            mode = view.override_mode.value if view.override_mode else ""
            self._swap(self.override, self._override_labels, load, "mode", mode)

    def _observe_plan(self, report: StatusReport) -> None:
        plan = report.plan
        assert plan is not None
        self.plans.set(plan.plans_made)
        self.plan_errors.set(plan.errors)
        if plan.compute_s is not None:
            self.plan_compute.set(plan.compute_s)
        in_force = plan.failed is None and plan.made_at is not None
        if in_force and plan.made_at is not None:
            self.plan_age.set((report.at - plan.made_at).total_seconds())
        else:
            self.plan_age.set(float("nan"))
        self.plan_soc.set(plan.soc_pct if plan.soc_pct is not None else float("nan"))
        for load in report.loads:
            self.plan_on.labels(load=load.value).set(1 if load in plan.on_now else 0)
            runs = sum(1 for x, _, _ in plan.runs if x is load)
            self.plan_runs.labels(load=load.value).set(runs)

    def count_error(self, where: str, kind: str) -> None:
        self.errors.labels(where=where, kind=kind).inc()

    def count_command(self, load: LoadId, ok: bool) -> None:
        self.commands.labels(load=load.value, result="ok" if ok else "failed").inc()

    def count_tick_failure(self) -> None:
        self.tick_failures.inc()

    def set_store_failures(self, n: int) -> None:
        self.store_failures.set(n)

    def set_cloud(self, service: str, calls: int, budget_remaining: int | None = None) -> None:
        self.cloud_calls.labels(service=service).set(calls)
        if budget_remaining is not None:
            self.cloud_budget.set(budget_remaining)

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _children(metric: Any) -> set[tuple[str, ...]]:
        return set(metric._metrics.keys())

    def _set_codes(self, load: LoadId, codes: Iterable[ReasonCode]) -> None:
        """One series per reason code the load's decision holds now; a code that no longer
        holds (or a load no longer driven) loses its series."""
        new = frozenset(codes)
        old = self._reason_codes.get(load, frozenset())
        for code in old - new:
            self.reason.remove(load.value, code.value)
        for code in new - old:
            self.reason.labels(load=load.value, code=code.value).set(1)
        if new:
            self._reason_codes[load] = new
        else:
            self._reason_codes.pop(load, None)

    def _swap(
        self, metric: Gauge, seen: dict[LoadId, str], load: LoadId, label: str, value: str
    ) -> None:
        """Info-style series: exactly one label value per load is present, set to 1."""
        old = seen.get(load)
        if old == value:
            return
        if old is not None:
            metric.remove(load.value, old)
        if value:
            metric.labels(**{"load": load.value, label: value}).set(1)
            seen[load] = value
        else:
            seen.pop(load, None)

    def serve(self, bind: str, port: int) -> Any:
        """Start the exporter in a background thread; returns the server (has shutdown())."""
        server, _thread = start_http_server(port, addr=bind, registry=self.registry)
        log.info("metrics on http://%s:%d/metrics", bind, server.server_port)
        return server
