"""The 24-hour chart as inline SVG, drawn on the server: PV, grid, SOC and a band per load.

No JavaScript and no external service: the page's stylesheet colours the classes used here, so
the chart also follows the page's light or dark scheme. Lines are averaged over 5-minute
buckets (288 points a day); load bands follow every sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

from markupsafe import Markup

from emsctl.store.records import SampleRecord

#: Widths in SVG units: the page shows the wide drawing on laptops, the narrow one on phones,
#: so the 11-unit labels stay readable on both.
WIDE = 720
NARROW = 360
#: Least margins beside the plot; they grow with the axis labels they hold.
LEFT = 46
RIGHT = 40
#: A label character's width in ems, generous for the sans-serif fonts browsers pick
#: (DejaVu Sans digits are 0.64 em): a margin too narrow cuts labels off at the SVG's edge.
CHAR_EM = 0.66
LABEL_GAP = 4
TOP = 14
PLOT_H = 190
BAND_H = 14
BAND_GAP = 6
BUCKET_S = 300

SHORT_LABELS = {"sg_ready": "SG", "dhw": "DHW", "wb_a": "WB A", "wb_b": "WB B"}


@dataclass(frozen=True, slots=True)
class _Scale:
    start: datetime
    end: datetime
    lo_w: float
    hi_w: float
    width: float
    left: float = LEFT
    right: float = RIGHT

    @property
    def x0(self) -> float:
        return self.left

    @property
    def x1(self) -> float:
        return self.width - self.right

    def x(self, t: datetime) -> float:
        span = (self.end - self.start).total_seconds()
        frac = (t - self.start).total_seconds() / span
        return self.x0 + min(1.0, max(0.0, frac)) * (self.x1 - self.x0)

    def y_w(self, w: float) -> float:
        frac = (w - self.lo_w) / (self.hi_w - self.lo_w)
        return TOP + PLOT_H - frac * PLOT_H

    def y_pct(self, pct: float) -> float:
        return TOP + PLOT_H - min(100.0, max(0.0, pct)) / 100.0 * PLOT_H


def _f(v: float) -> str:
    return f"{v:.1f}"


def _buckets(
    samples: Sequence[SampleRecord], key: str, start: datetime, n: int
) -> list[float | None]:
    sums = [0.0] * n
    counts = [0] * n
    for s in samples:
        v = s.values.get(key)
        if v is None or not _drawable(key, v):
            continue
        # A sample exactly at the end belongs to the last bucket.
        i = min(n - 1, int((s.at - start).total_seconds() // BUCKET_S))
        if i >= 0:
            sums[i] += v
            counts[i] += 1
    return [sums[i] / counts[i] if counts[i] else None for i in range(n)]


def _runs(points: list[tuple[float, float | None]], bridge: int) -> list[list[tuple[float, float]]]:
    """Split a series at its gaps. Up to `bridge` empty buckets in a row are bridged (samples
    sparser than a bucket); a longer gap (the daemon was down) breaks the line."""
    runs: list[list[tuple[float, float]]] = []
    cur: list[tuple[float, float]] = []
    empty = 0
    for x, y in points:
        if y is None:
            empty += 1
            continue
        if cur and empty > bridge:
            runs.append(cur)
            cur = []
        cur.append((x, y))
        empty = 0
    if cur:
        runs.append(cur)
    return runs


def _line(runs: list[list[tuple[float, float]]]) -> str:
    parts = []
    for run in runs:
        if len(run) == 1:
            x, y = run[0]
            parts.append(f"M{_f(x - 1)},{_f(y)}L{_f(x + 1)},{_f(y)}")
        else:
            parts.append("M" + "L".join(f"{_f(x)},{_f(y)}" for x, y in run))
    return "".join(parts)


def _area(runs: list[list[tuple[float, float]]], base: float) -> str:
    parts = []
    for run in runs:
        pts = "L".join(f"{_f(x)},{_f(y)}" for x, y in run)
        parts.append(f"M{_f(run[0][0])},{_f(base)}L{pts}L{_f(run[-1][0])},{_f(base)}Z")
    return "".join(parts)


#: Beyond these a stored value is a glitch (an overflowed register), not something to draw:
#: one such sample must not stretch the axis to thousands of gridlines.
_DRAWABLE = {"soc_pct": (0.0, 100.0)}
_MAX_ABS_W = 1_000_000.0


def _drawable(key: str, v: float) -> bool:
    lo, hi = _DRAWABLE.get(key, (-_MAX_ABS_W, _MAX_ABS_W))
    return math.isfinite(v) and lo <= v <= hi


def _nice_step(span_w: float) -> float:
    """The smallest 1-2-2.5-5 step (500 W at least) that spans `span_w` in at most 6 steps."""
    span_w = span_w if math.isfinite(span_w) else 2 * _MAX_ABS_W
    scale = 100.0
    while True:
        for m in (5.0, 10.0, 20.0, 25.0, 50.0):
            step = m * scale
            if step >= 500.0 and span_w / step <= 6:
                return step
        scale *= 10.0


def _margin(labels: Sequence[str], font: float, least: float) -> float:
    """Room beside the plot for the longest of `labels` at `font` px, and the gap to the plot."""
    longest = max((len(t) for t in labels), default=0)
    return max(least, math.ceil(CHAR_EM * font * longest) + 2 * LABEL_GAP)


def _ticks(lo: float, hi: float, step: float) -> list[float]:
    """The axis values from `lo` to `hi` in `step`s (both ends are multiples of `step`)."""
    return [lo + i * step for i in range(round((hi - lo) / step) + 1)]


def _band_class(state: str, output_on: bool | None) -> str | None:
    if state == "forced_on":
        return "forced"
    if state == "manual" and output_on:
        return "manual"
    if output_on:
        return "on"
    return None


def _legend(x0: float, x1: float, char_w: float) -> list[tuple[str, str, float, int]]:
    """(class, text, x, row) of each legend key, wrapped onto rows within [x0, x1]."""
    items = (
        ("ch-pv", "PV"),
        ("ch-grid", "grid (+ import)"),
        ("ch-soc", "SOC"),
        ("ch-band-on", "on"),
        ("ch-band-forced", "forced"),
        ("ch-band-manual", "manual"),
    )
    out = []
    x, row = x0, 0
    for cls, text in items:
        w = 28 + char_w * len(text)
        if x + w > x1 + 20 and x > x0:
            x, row = x0, row + 1
        out.append((cls, text, x, row))
        x += w
    return out


def render(
    samples: Sequence[SampleRecord],
    loads: Sequence[str],
    end: datetime,
    tz: ZoneInfo,
    *,
    hours: int = 24,
    interval_s: float = 60.0,
    width: int = WIDE,
    ident: str = "chart",
) -> Markup:
    """The chart for the `hours` before `end`, as an <svg> element ready to put in a page.

    `width` is in SVG units (the drawing scales to its box); `ident` keeps element ids unique
    when a page holds more than one drawing.
    """
    start = end - timedelta(hours=hours)
    samples = sorted((s for s in samples if start <= s.at <= end), key=lambda s: s.at)
    n = math.ceil(hours * 3600 / BUCKET_S)
    pv = _buckets(samples, "pv_w", start, n)
    grid = _buckets(samples, "grid_w", start, n)
    soc = _buckets(samples, "soc_pct", start, n)
    watts = [v for v in (*pv, *grid) if v is not None]
    hi = max([1000.0, *watts])
    lo = min([0.0, *watts])
    step = _nice_step(hi - lo)
    hi = math.ceil(hi / step) * step
    lo = math.floor(lo / step) * step
    # The narrow drawing's labels are set larger by the stylesheet (see .chart-narrow).
    font = 11 if width >= 600 else 13
    kw_labels = [(w, f"{w / 1000:g} kW") for w in _ticks(lo, hi, step)]
    sc = _Scale(
        start=start,
        end=end,
        lo_w=lo,
        hi_w=hi,
        width=width,
        left=_margin(
            [t for _, t in kw_labels] + [SHORT_LABELS.get(x, x) for x in loads], font, LEFT
        ),
        right=_margin(["100%"], font, RIGHT),
    )
    hour_step = 3 if width >= 600 else 6

    bands_top = TOP + PLOT_H + 26
    legend = _legend(sc.x0, sc.x1, 0.6 * font)
    legend_top = bands_top + len(loads) * (BAND_H + BAND_GAP) + 14
    row_h = font + 6
    height = legend_top + row_h * (legend[-1][3] + 1)
    out: list[str] = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{ident}-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{ident}-title">PV, grid and battery over the last {hours} hours, '
        "with the time each load ran</title>",
    ]
    # Horizontal grid and the kW axis; the zero line is drawn stronger.
    for w, label in kw_labels:
        y = sc.y_w(w)
        cls = "ch-zero" if abs(w) < 1e-6 else "ch-rule"
        out.append(f'<line class="{cls}" x1="{sc.x0}" x2="{sc.x1}" y1="{_f(y)}" y2="{_f(y)}"/>')
        out.append(
            f'<text class="ch-label" x="{sc.x0 - LABEL_GAP}" y="{_f(y + 4)}" '
            f'text-anchor="end">{label}</text>'
        )
    for pct in (0, 50, 100):
        out.append(
            f'<text class="ch-label ch-soc-label" x="{sc.x1 + LABEL_GAP}" '
            f'y="{_f(sc.y_pct(pct) + 4)}">{pct}%</text>'
        )
    # Vertical lines every few local hours; stepping in UTC keeps DST days right.
    t = start.replace(minute=0, second=0, microsecond=0)
    while t <= end:
        local = t.astimezone(tz)
        if t >= start and local.minute == 0 and local.hour % hour_step == 0:
            x = sc.x(t)
            out.append(
                f'<line class="ch-rule" x1="{_f(x)}" x2="{_f(x)}" y1="{TOP}" '
                f'y2="{TOP + PLOT_H}"/>'
                f'<text class="ch-label" x="{_f(x)}" y="{TOP + PLOT_H + 16}" '
                f'text-anchor="middle">{local.strftime("%H:%M")}</text>'
            )
        t += timedelta(minutes=15)

    # Sparse samples (a long control interval) leave empty buckets between them: bridge those,
    # but not a gap longer than three intervals.
    bridge = max(0, math.ceil(3 * interval_s / BUCKET_S) - 1)
    xs = [sc.x(start + timedelta(seconds=(i + 0.5) * BUCKET_S)) for i in range(n)]

    def series(
        values: list[float | None], y: Callable[[float], float]
    ) -> list[list[tuple[float, float]]]:
        pts = [(x, None if v is None else y(v)) for x, v in zip(xs, values, strict=True)]
        return _runs(pts, bridge)

    pv_runs = series(pv, sc.y_w)
    grid_runs = series(grid, sc.y_w)
    soc_runs = series(soc, sc.y_pct)
    if pv_runs:
        out.append(f'<path class="ch-pv" d="{_area(pv_runs, sc.y_w(0))}"/>')
    if grid_runs:
        out.append(f'<path class="ch-grid" d="{_line(grid_runs)}"/>')
    if soc_runs:
        out.append(f'<path class="ch-soc" d="{_line(soc_runs)}"/>')
    if not samples:
        out.append(
            f'<text class="ch-empty" x="{(sc.x0 + sc.x1) / 2}" y="{TOP + PLOT_H / 2}" '
            f'text-anchor="middle">No samples in the last {hours} hours</text>'
        )

    # One band per load: where the EMS ran it, where it was forced, where a person ran it.
    max_span = timedelta(seconds=3 * interval_s)
    for i, load in enumerate(loads):
        y = bands_top + i * (BAND_H + BAND_GAP)
        label = escape(SHORT_LABELS.get(load, load))
        out.append(
            f'<text class="ch-label" x="{sc.x0 - LABEL_GAP}" y="{y + BAND_H - 3}" '
            f'text-anchor="end">{label}</text>'
            f'<rect class="ch-track" x="{sc.x0}" y="{y}" width="{_f(sc.x1 - sc.x0)}" '
            f'height="{BAND_H}"/>'
        )
        for cls, t0, t1 in _spans(samples, load, end, max_span):
            x0, x1 = sc.x(t0), sc.x(t1)
            tip = (
                f"{label} {cls} {t0.astimezone(tz).strftime('%H:%M')}"
                f" to {t1.astimezone(tz).strftime('%H:%M')}"
            )
            out.append(
                f'<rect class="ch-band-{cls}" x="{_f(x0)}" y="{y}" '
                f'width="{_f(max(1.0, x1 - x0))}" height="{BAND_H}"><title>{tip}</title></rect>'
            )
    for cls, text, x, row in legend:
        ly = legend_top + row_h * row
        if cls in ("ch-grid", "ch-soc"):
            key = (
                f'<line class="{cls}" x1="{_f(x)}" x2="{_f(x + 12)}" y1="{ly - 4}" y2="{ly - 4}"/>'
            )
        else:
            key = f'<rect class="{cls}" x="{_f(x)}" y="{ly - 9}" width="11" height="10"/>'
        out.append(f'{key}<text class="ch-label" x="{_f(x + 16)}" y="{ly}">{text}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def _spans(
    samples: Sequence[SampleRecord], load: str, end: datetime, max_span: timedelta
) -> list[tuple[str, datetime, datetime]]:
    """Consecutive samples of one kind merged into (kind, from, to); a sample lasts until the
    next one, or at most `max_span` when the next is missing (the daemon was down)."""
    spans: list[tuple[str, datetime, datetime]] = []
    for i, s in enumerate(samples):
        ls = s.loads.get(load)
        if ls is None:
            continue
        cls = _band_class(ls.state, ls.output_on)
        if cls is None:
            continue
        nxt = samples[i + 1].at if i + 1 < len(samples) else end
        t1 = min(nxt, s.at + max_span)
        if spans and spans[-1][0] == cls and spans[-1][2] >= s.at:
            spans[-1] = (cls, spans[-1][1], t1)
        else:
            spans.append((cls, s.at, t1))
    return spans
