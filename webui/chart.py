"""The 24-hour chart as inline SVG, drawn on the server: PV, grid, SOC and a band per load.

No JavaScript and no external service: the page's stylesheet colours the classes used here, so
the chart also follows the page's light or dark scheme. Lines are averaged over 5-minute
buckets (288 points a day); load bands follow every sample. The scale, the axes, the bands'
tracks and the legend are shared with the plan's chart (webui/plan_chart.py).
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
class Scale:
    """Where a time and a value go in the drawing: time across, watts and percent up."""

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


#: A series as drawn: runs of (x, y) points, split where the data has a gap.
Runs = list[list[tuple[float, float]]]


def f(v: float) -> str:
    """A coordinate as written in the SVG."""
    return f"{v:.1f}"


def buckets(
    samples: Sequence[SampleRecord], key: str, start: datetime, n: int
) -> list[float | None]:
    """The mean of `key` per 5-minute bucket from `start` (None where no sample has it)."""
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


def split_runs(points: list[tuple[float, float | None]], bridge: int) -> Runs:
    """Split a series at its gaps. Up to `bridge` empty buckets in a row are bridged (samples
    sparser than a bucket); a longer gap (the daemon was down) breaks the line."""
    runs: Runs = []
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


def series(
    xs: Sequence[float], values: Sequence[float | None], y: Callable[[float], float], bridge: int
) -> Runs:
    """`values` placed at `xs` and scaled by `y`, split at gaps longer than `bridge`."""
    pts = [(x, None if v is None else y(v)) for x, v in zip(xs, values, strict=True)]
    return split_runs(pts, bridge)


def line_path(runs: Runs) -> str:
    parts = []
    for run in runs:
        if len(run) == 1:
            x, y = run[0]
            parts.append(f"M{f(x - 1)},{f(y)}L{f(x + 1)},{f(y)}")
        else:
            parts.append("M" + "L".join(f"{f(x)},{f(y)}" for x, y in run))
    return "".join(parts)


def area_path(runs: Runs, base: float) -> str:
    parts = []
    for run in runs:
        pts = "L".join(f"{f(x)},{f(y)}" for x, y in run)
        parts.append(f"M{f(run[0][0])},{f(base)}L{pts}L{f(run[-1][0])},{f(base)}Z")
    return "".join(parts)


def path(cls: str, runs: Runs, scale: Scale | None = None) -> str:
    """A series as a line, or as an area down to zero when `scale` is given; "" when empty."""
    if not runs:
        return ""
    d = line_path(runs) if scale is None else area_path(runs, scale.y_w(0))
    return f'<path class="{cls}" d="{d}"/>'


#: Beyond these a stored value is a glitch (an overflowed register), not something to draw:
#: one such sample must not stretch the axis to thousands of gridlines.
_DRAWABLE = {"soc_pct": (0.0, 100.0)}
_MAX_ABS_W = 1_000_000.0


def _drawable(key: str, v: float) -> bool:
    lo, hi = _DRAWABLE.get(key, (-_MAX_ABS_W, _MAX_ABS_W))
    return math.isfinite(v) and lo <= v <= hi


def nice_step(span_w: float) -> float:
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


def label_font(width: float) -> int:
    """The labels' size: the narrow drawing's are set larger by the stylesheet (.chart-narrow)."""
    return 11 if width >= 600 else 13


def hour_step(width: float) -> int:
    """Hours between the time labels: every 3 on the wide drawing, every 6 on a phone."""
    return 3 if width >= 600 else 6


@dataclass(frozen=True, slots=True)
class Frame:
    """A drawing's scale and its kW axis labels."""

    scale: Scale
    kw_labels: list[tuple[float, str]]


def frame(
    start: datetime, end: datetime, watts: Sequence[float], width: int, bands: Sequence[str]
) -> Frame:
    """The scale for `watts` (1 kW and zero at least) in nice steps, with margins wide enough
    for the kW labels and the band labels of `bands` (load ids)."""
    hi = max([1000.0, *watts])
    lo = min([0.0, *watts])
    step = nice_step(hi - lo)
    hi = math.ceil(hi / step) * step
    lo = math.floor(lo / step) * step
    font = label_font(width)
    kw_labels = [(w, f"{w / 1000:g} kW") for w in _ticks(lo, hi, step)]
    sc = Scale(
        start=start,
        end=end,
        lo_w=lo,
        hi_w=hi,
        width=width,
        left=_margin([t for _, t in kw_labels] + [band_label(x) for x in bands], font, LEFT),
        right=_margin(["100%"], font, RIGHT),
    )
    return Frame(sc, kw_labels)


def band_label(load: str) -> str:
    return SHORT_LABELS.get(load, load)


def svg_open(ident: str, width: int, height: float, title: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{ident}-title" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{ident}-title">{escape(title)}</title>'
    )


def axes(fr: Frame, tz: ZoneInfo) -> list[str]:
    """The horizontal grid with its kW labels (zero drawn stronger), the SOC labels on the
    right, and a vertical line with its local time every few hours."""
    sc = fr.scale
    out: list[str] = []
    for w, label in fr.kw_labels:
        y = sc.y_w(w)
        cls = "ch-zero" if abs(w) < 1e-6 else "ch-rule"
        out.append(f'<line class="{cls}" x1="{sc.x0}" x2="{sc.x1}" y1="{f(y)}" y2="{f(y)}"/>')
        out.append(
            f'<text class="ch-label" x="{sc.x0 - LABEL_GAP}" y="{f(y + 4)}" '
            f'text-anchor="end">{label}</text>'
        )
    for pct in (0, 50, 100):
        out.append(
            f'<text class="ch-label ch-soc-label" x="{sc.x1 + LABEL_GAP}" '
            f'y="{f(sc.y_pct(pct) + 4)}">{pct}%</text>'
        )
    every = hour_step(sc.width)
    # Stepping in UTC keeps DST days right.
    t = sc.start.replace(minute=0, second=0, microsecond=0)
    while t <= sc.end:
        local = t.astimezone(tz)
        if t >= sc.start and local.minute == 0 and local.hour % every == 0:
            x = sc.x(t)
            out.append(
                f'<line class="ch-rule" x1="{f(x)}" x2="{f(x)}" y1="{TOP}" '
                f'y2="{TOP + PLOT_H}"/>'
                f'<text class="ch-label" x="{f(x)}" y="{TOP + PLOT_H + 16}" '
                f'text-anchor="middle">{local.strftime("%H:%M")}</text>'
            )
        t += timedelta(minutes=15)
    return out


def empty_note(sc: Scale, text: str, x0: float | None = None) -> str:
    """A sentence in the middle of the plot (or of its part right of `x0`)."""
    left = sc.x0 if x0 is None else x0
    return (
        f'<text class="ch-empty" x="{(left + sc.x1) / 2}" y="{TOP + PLOT_H / 2}" '
        f'text-anchor="middle">{escape(text)}</text>'
    )


BANDS_TOP = TOP + PLOT_H + 26


def band_y(i: int) -> float:
    """The top of the `i`-th load's band."""
    return BANDS_TOP + i * (BAND_H + BAND_GAP)


def band_track(sc: Scale, i: int, load: str) -> str:
    """The `i`-th load's label and its empty track across the plot."""
    y = band_y(i)
    return (
        f'<text class="ch-label" x="{sc.x0 - LABEL_GAP}" y="{y + BAND_H - 3}" '
        f'text-anchor="end">{escape(band_label(load))}</text>'
        f'<rect class="ch-track" x="{sc.x0}" y="{y}" width="{f(sc.x1 - sc.x0)}" '
        f'height="{BAND_H}"/>'
    )


def band_rect(sc: Scale, i: int, cls: str, t0: datetime, t1: datetime, tip: str) -> str:
    """A stretch of time on the `i`-th load's track, with `tip` as its tooltip."""
    x0, x1 = sc.x(t0), sc.x(t1)
    return (
        f'<rect class="ch-band-{cls}" x="{f(x0)}" y="{band_y(i)}" '
        f'width="{f(max(1.0, x1 - x0))}" height="{BAND_H}"><title>{tip}</title></rect>'
    )


#: A legend entry: its class, its text, and whether its key is a line (else a box).
LegendItem = tuple[str, str, bool]

HISTORY_LEGEND: tuple[LegendItem, ...] = (
    ("ch-pv", "PV", False),
    ("ch-grid", "grid (+ import)", True),
    ("ch-soc", "SOC", True),
    ("ch-band-on", "on", False),
    ("ch-band-forced", "forced", False),
    ("ch-band-manual", "manual", False),
)


def _legend_layout(
    items: Sequence[LegendItem], x0: float, x1: float, char_w: float
) -> list[tuple[LegendItem, float, int]]:
    """Each legend item with its x and row, wrapped onto rows within [x0, x1]."""
    out = []
    x, row = x0, 0
    for item in items:
        w = 28 + char_w * len(item[1])
        if x + w > x1 + 20 and x > x0:
            x, row = x0, row + 1
        out.append((item, x, row))
        x += w
    return out


def legend_and_close(sc: Scale, items: Sequence[LegendItem], n_bands: int) -> tuple[str, float]:
    """The legend under `n_bands` bands and the closing tag, and the drawing's height."""
    font = label_font(sc.width)
    layout = _legend_layout(items, sc.x0, sc.x1, 0.6 * font)
    top = BANDS_TOP + n_bands * (BAND_H + BAND_GAP) + 14
    row_h = font + 6
    out = []
    for (cls, text, is_line), x, row in layout:
        ly = top + row_h * row
        if is_line:
            key = f'<line class="{cls}" x1="{f(x)}" x2="{f(x + 12)}" y1="{ly - 4}" y2="{ly - 4}"/>'
        else:
            key = f'<rect class="{cls}" x="{f(x)}" y="{ly - 9}" width="11" height="10"/>'
        out.append(f'{key}<text class="ch-label" x="{f(x + 16)}" y="{ly}">{text}</text>')
    out.append("</svg>")
    return "".join(out), top + row_h * (layout[-1][2] + 1)


def wide_and_narrow(draw: Callable[[int, str], Markup]) -> Markup:
    """Both drawings, `draw(width, name)` each, for the page: the stylesheet shows the one that
    suits the screen."""
    wide, narrow = draw(WIDE, "wide"), draw(NARROW, "narrow")
    return Markup(f'<div class="chart-wide">{wide}</div><div class="chart-narrow">{narrow}</div>')


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
    pv = buckets(samples, "pv_w", start, n)
    grid = buckets(samples, "grid_w", start, n)
    soc = buckets(samples, "soc_pct", start, n)
    fr = frame(start, end, [v for v in (*pv, *grid) if v is not None], width, loads)
    sc = fr.scale
    out = axes(fr, tz)

    # Sparse samples (a long control interval) leave empty buckets between them: bridge those,
    # but not a gap longer than three intervals.
    bridge = max(0, math.ceil(3 * interval_s / BUCKET_S) - 1)
    xs = [sc.x(start + timedelta(seconds=(i + 0.5) * BUCKET_S)) for i in range(n)]
    out.append(path("ch-pv", series(xs, pv, sc.y_w, bridge), sc))
    out.append(path("ch-grid", series(xs, grid, sc.y_w, bridge)))
    out.append(path("ch-soc", series(xs, soc, sc.y_pct, bridge)))
    if not samples:
        out.append(empty_note(sc, f"No samples in the last {hours} hours"))

    # One band per load: where the EMS ran it, where it was forced, where a person ran it.
    max_span = timedelta(seconds=3 * interval_s)
    for i, load in enumerate(loads):
        out.append(band_track(sc, i, load))
        label = escape(band_label(load))
        for cls, t0, t1 in _spans(samples, load, end, max_span):
            tip = (
                f"{label} {cls} {t0.astimezone(tz).strftime('%H:%M')}"
                f" to {t1.astimezone(tz).strftime('%H:%M')}"
            )
            out.append(band_rect(sc, i, cls, t0, t1, tip))
    tail, height = legend_and_close(sc, HISTORY_LEGEND, len(loads))
    title = f"PV, grid and battery over the last {hours} hours, with the time each load ran"
    return Markup(svg_open(ident, width, height, title) + "".join(out) + tail)


def _band_class(state: str, output_on: bool | None) -> str | None:
    if state == "forced_on":
        return "forced"
    if state == "manual" and output_on:
        return "manual"
    if output_on:
        return "on"
    return None


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
