"""`emsctl plan`: the plan a running EMS stored, as a table and as JSON."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from emsctl.cli import main
from emsctl.model import LoadId, Snapshot
from emsctl.plan_cli import write_plan
from emsctl.plan_worker import PLAN_KEY, PlanWorker
from emsctl.planner.driver import Planner
from emsctl.store import Store

from .corekit import make_config
from .test_planner import DAY0, _forecast, _statuses

CONFIG = """
planner: {enabled: true}
store: {path: %s}
"""


def _stored_plan(db: Path) -> dict[str, object]:
    cfg = make_config({"planner": {"enabled": True}})
    now = DAY0 + timedelta(hours=8)
    store = Store.open(str(db))
    try:
        worker = PlanWorker(Planner(cfg), sink=store, synchronous=True)
        sts = _statuses(list(LoadId), now)
        worker.offer(now, Snapshot(at=now, soc_pct=40.0, forecast=_forecast(now)), sts, lambda: sts)
        text = store.kv_get(PLAN_KEY)
    finally:
        store.close()
    assert text is not None
    return dict(json.loads(text))


def test_the_table_shows_the_runs_and_the_hours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "ems.db"
    plan = _stored_plan(db)
    cfg = tmp_path / "ems.yaml"
    cfg.write_text(CONFIG % db)
    assert main(["plan", "-c", str(cfg), "--hours", "12"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("plan made Mon 08:00")
    assert "sg_ready " in out and "kWh spare" in out
    rows = [line for line in out.splitlines() if line[:3] in ("Mon", "Tue")]
    assert len(rows) == 12
    assert main(["plan", "-c", str(cfg), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == plan


def test_an_hour_with_a_run_names_the_load() -> None:
    plan = {
        "made_at": "2026-06-15T08:00:00+00:00",
        "runs": [],
        "slots": [
            {
                "at": f"2026-06-15T{8 + k // 4:02d}:{15 * (k % 4):02d}:00+00:00",
                "pv_wh": 1000.0,
                "load_wh": 100.0,
                "soc_pct": 50.0 + k,
                "import_wh": 0.0,
                "export_wh": 250.0,
                "on": ["dhw"] if k == 5 else [],
            }
            for k in range(8)
        ],
    }
    out = io.StringIO()
    tz = make_config().control.tz
    from datetime import UTC, datetime

    write_plan(plan, tz, datetime(2026, 6, 15, 8, 30, tzinfo=UTC), 2, out)
    lines = out.getvalue().splitlines()
    assert "no runs planned" in lines[1]
    assert lines[-2].startswith("Mon 10:00") and lines[-2].endswith("  ")
    assert lines[-1].startswith("Mon 11:00") and lines[-1].endswith("dhw")
    assert "   4.00     0.40     57     -1.00" in lines[-1]


def test_no_plan_yet_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "ems.db"
    Store.open(str(db)).close()
    cfg = tmp_path / "ems.yaml"
    cfg.write_text(f"store: {{path: {db}}}\n")
    assert main(["plan", "-c", str(cfg)]) == 1
    assert "no plan stored yet (planner.enabled is false in the config)" in capsys.readouterr().err
