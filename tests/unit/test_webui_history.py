"""The history page and /api/history (filters, paging), and the server-side 24-hour chart."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from emsctl import clock
from emsctl.model import LoadId, LoadReading, LoadStatus, Mode, Snapshot, State, Transition
from emsctl.store import SampleRecord, Store
from emsctl.store.records import LoadSample
from tests.support import webui_kit
from tests.support.webui_kit import UiEnv
from webui import chart

env = webui_kit.env
frozen = webui_kit.frozen
WB_A, WB_B, SG = LoadId.WB_A, LoadId.WB_B, LoadId.SG_READY
BERLIN = webui_kit.parse_config({}).control.tz


def _tr(at: datetime, load: LoadId, source: State, target: State, event: str) -> Transition:
    return Transition(
        at=at, load=load, source=source, target=target, event=event, reasons=(f"{event} why",)
    )


def _fill(store: Store, now: datetime) -> None:
    """Three days of history: WB A runs each day, SG-Ready once, an override yesterday."""
    ts = []
    for day in range(3):
        base = now - timedelta(days=day, hours=2)
        ts += [
            _tr(base, WB_A, State.OFF, State.ARMING, "arm"),
            _tr(base + timedelta(minutes=4), WB_A, State.ARMING, State.ON, "start"),
            _tr(base + timedelta(minutes=50), WB_A, State.ON, State.OFF, "shed"),
        ]
    ts.append(_tr(now - timedelta(hours=5), SG, State.OFF, State.ARMING, "arm"))
    store.record_transitions(sorted(ts, key=lambda t: t.at))
    y = now - timedelta(days=1, hours=1)
    store.add_override(WB_B, Mode.FORCE_ON, "anna", y, y + timedelta(hours=1))


def _rows(html: str) -> list[str]:
    return re.findall(r'<li class="row[^"]*">(.*?)</li>', html, re.S)


def test_history_lists_transitions_and_overrides_newest_first_in_local_time(
    env: UiEnv,
) -> None:
    now = clock.now()
    _fill(env.store, now)
    html = env.client.get("/history").get_data(as_text=True)
    rows = _rows(html)
    assert len(rows) == 12  # 9 WB A + 1 SG + override set + override expired
    # Frozen at 12:00 CEST: WB A was shed at 10:50 local today.
    assert "2026-06-01 10:50" in rows[0] and "on → off (shed)" in rows[0]
    assert "shed why" in rows[0]
    assert "2026-06-01 07:00" in rows[3] and "Heat pump SG-Ready" in rows[3]
    expired = next(r for r in rows if "expired" in r)
    assert "Wallbox B" in expired and "Force on expired" in expired
    set_ = next(r for r in rows if "Force on by anna" in r)
    assert "until 2026-05-31 12:00" in set_


def test_history_filters_by_load_and_period(env: UiEnv) -> None:
    now = clock.now()
    _fill(env.store, now)
    html = env.client.get("/history?load=wb_b").get_data(as_text=True)
    rows = _rows(html)
    assert len(rows) == 2 and all("Wallbox B" in r for r in rows)
    assert '<option value="wb_b" selected>' in html
    html = env.client.get("/history?load=wb_a&since=2026-05-31&until=2026-05-31").get_data(
        as_text=True
    )
    rows = _rows(html)
    assert len(rows) == 3 and all("2026-05-31" in r for r in rows)
    assert 'name="since" value="2026-05-31"' in html


def test_history_pages_through_long_lists(env: UiEnv) -> None:
    now = clock.now()
    env.store.record_transitions(
        [
            _tr(now - timedelta(minutes=120 - i), WB_A, State.OFF, State.ARMING, f"e{i}")
            for i in range(120)
        ]
    )
    html = env.client.get("/history?load=wb_a").get_data(as_text=True)
    assert len(_rows(html)) == 50 and "(e119)" in _rows(html)[0]
    assert 'href="/history?load=wb_a&amp;offset=50" rel="next"' in html
    assert 'rel="prev"' not in html
    html = env.client.get("/history?load=wb_a&offset=50").get_data(as_text=True)
    assert "(e69)" in _rows(html)[0]
    assert 'offset=0" rel="prev"' in html and 'offset=100" rel="next"' in html
    html = env.client.get("/history?load=wb_a&offset=100").get_data(as_text=True)
    assert len(_rows(html)) == 20 and 'rel="next"' not in html
    assert '<ol class="history" start="101">' in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=yesterday", "since=&#39;yesterday&#39;: expected a date"),
        ("load=garage", "load=&#39;garage&#39;: expected one of"),
        ("since=2026-06-02&until=2026-06-01", "since must be before until"),
        ("offset=-5", "offset=-5: expected 0 to"),
    ],
)
def test_history_page_explains_bad_filters(env: UiEnv, query: str, message: str) -> None:
    resp = env.client.get(f"/history?{query}")
    assert resp.status_code == 400
    assert message in resp.get_data(as_text=True)


def test_api_history_filters_and_pages(env: UiEnv) -> None:
    now = clock.now()
    _fill(env.store, now)
    body = env.client.get("/api/history?load=wb_a&limit=4").get_json()
    assert [i["event"] for i in body["items"]] == ["shed", "start", "arm", "shed"]
    assert body["next_offset"] == 4 and body["limit"] == 4 and body["offset"] == 0
    assert body["items"][0]["at"] == "2026-06-01T08:50:00+00:00"
    body = env.client.get("/api/history?load=wb_a&limit=4&offset=8").get_json()
    assert len(body["items"]) == 1 and body["next_offset"] is None
    body = env.client.get("/api/history?since=2026-06-01T06:30:00%2B02:00").get_json()
    assert {i["load"] for i in body["items"]} == {"wb_a", "sg_ready"}
    assert len(body["items"]) == 4


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "limit=0: expected 1 to 500"),
        ("limit=ten", "limit='ten': expected a whole number"),
        ("load=wb_c", "load='wb_c': expected one of sg_ready, dhw, wb_a, wb_b"),
        ("until=31.05.2026", "until='31.05.2026': expected a date"),
    ],
)
def test_api_history_rejects_bad_parameters(env: UiEnv, query: str, message: str) -> None:
    resp = env.client.get(f"/api/history?{query}")
    assert resp.status_code == 400
    assert message in resp.get_json()["error"]


def _status(load: LoadId, state: State, on: bool, at: datetime) -> LoadStatus:
    return LoadStatus(load, state, at, reading=LoadReading(relay_on=on))


def test_history_page_shows_the_chart_from_stored_samples(env: UiEnv) -> None:
    now = clock.now()
    for m in range(0, 600, 2):
        at = now - timedelta(minutes=600 - m)
        running = 120 <= m < 240
        env.store.record_sample(
            at,
            Snapshot(at=at, grid_w=-1500.0 + 5 * m, soc_pct=50 + m / 20, pv_w=4000.0),
            {WB_A: _status(WB_A, State.ON if running else State.OFF, running, at)},
        )
    html = env.client.get("/history").get_data(as_text=True)
    svg = re.search(r"<svg.*?</svg>", html, re.S)
    assert svg
    body = svg.group(0)
    assert 'class="ch-pv"' in body and 'class="ch-grid"' in body and 'class="ch-soc"' in body
    bands = re.findall(r'<rect class="ch-band-on"[^>]*><title>([^<]*)</title>', body)
    assert bands == ["WB A on 04:00 to 06:00"]  # 12:00 local minus 8 h and 6 h
    assert "No samples" not in body


def _sample(at: datetime, **values: float) -> SampleRecord:
    return SampleRecord(at=at, values=values, loads={})


def test_chart_breaks_lines_at_gaps_and_scales_to_export() -> None:
    end = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    samples = [
        _sample(end - timedelta(hours=20, minutes=m), pv_w=1000.0, grid_w=-3200.0, soc_pct=60.0)
        for m in range(30)
    ] + [
        _sample(end - timedelta(hours=2, minutes=m), pv_w=6500.0, grid_w=500.0, soc_pct=90.0)
        for m in range(30)
    ]
    svg = str(chart.render(samples, ["wb_a"], end, BERLIN))
    grid = re.search(r'class="ch-grid" d="([^"]+)"', svg)
    assert grid and grid.group(1).count("M") == 2  # two runs: the gap is not bridged
    assert ">-4 kW</text>" in svg and ">8 kW</text>" in svg  # nice steps of 2 kW
    assert ">12:00</text>" in svg  # local hour lines (10:00 UTC = 12:00 CEST)


def test_chart_band_colours_follow_who_ran_the_load_and_stop_at_daemon_gaps() -> None:
    end = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)

    def s(minutes_ago: int, state: str, on: bool | None) -> SampleRecord:
        return SampleRecord(
            at=end - timedelta(minutes=minutes_ago),
            values={},
            loads={"wb_b": LoadSample(state=state, output_on=on, power_w=None)},
        )

    samples = [s(300, "forced_on", True), s(299, "forced_on", True), s(200, "manual", True)]
    svg = str(chart.render(samples, ["wb_b"], end, BERLIN, interval_s=60))
    tips = re.findall(r'<rect class="ch-band-(\w+)"[^>]*><title>([^<]*)</title>', svg)
    # The 99-minute gap after 299 is a daemon outage: the band stops 3 intervals after.
    assert tips == [
        ("forced", "WB B forced 07:00 to 07:04"),
        ("manual", "WB B manual 08:40 to 08:43"),
    ]


def test_chart_bridges_samples_sparser_than_a_bucket() -> None:
    end = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    # One sample every 10 minutes (a 10-minute control interval): one line, not dots.
    samples = [_sample(end - timedelta(minutes=m), grid_w=-1000.0) for m in range(5, 600, 10)]
    svg = str(chart.render(samples, [], end, BERLIN, interval_s=600))
    grid = re.search(r'class="ch-grid" d="([^"]+)"', svg)
    assert grid and grid.group(1).count("M") == 1
    svg = str(chart.render(samples, [], end, BERLIN, interval_s=60))
    grid = re.search(r'class="ch-grid" d="([^"]+)"', svg)
    assert grid and grid.group(1).count("M") == 60  # at 60 s, 10 minutes is an outage


def test_chart_narrow_drawing_keeps_its_labels_inside_and_ids_unique() -> None:
    end = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    svg = str(
        chart.render(
            [], ["sg_ready", "dhw", "wb_a", "wb_b"], end, BERLIN, width=360, ident="chart-narrow"
        )
    )
    assert 'viewBox="0 0 360 ' in svg and 'id="chart-narrow-title"' in svg
    xs = [float(x) for x in re.findall(r'<text class="ch-label[^"]*" x="([\d.]+)"', svg)]
    assert max(xs) < 360
    assert ">06:00</text>" in svg and ">03:00</text>" not in svg  # every 6 h on a phone


def test_chart_without_samples_says_so() -> None:
    svg = str(chart.render([], ["wb_a", "wb_b"], datetime(2026, 6, 1, tzinfo=UTC), BERLIN))
    assert "No samples in the last 24 hours" in svg
    assert svg.count('class="ch-track"') == 2


def test_an_override_ended_by_a_person_at_the_device_says_by_hand_once(env: UiEnv) -> None:
    """Switching at the device ends the owner's override; the detected hold's maker, "by hand
    (button)", is who ended it: "ended by hand (button)", not "ended by by hand"."""
    now = clock.now()
    env.store.add_override(WB_B, Mode.FORCE_ON, "anna", now - timedelta(hours=2), None)
    env.store.add_override(
        WB_B, Mode.FORCE_OFF, "by hand (button)", now - timedelta(hours=1), None, detected=True
    )
    rows = _rows(env.client.get("/history").get_data(as_text=True))
    assert any("Force on ended by hand (button)" in r for r in rows), rows
    assert not any("by by" in r for r in rows), rows
