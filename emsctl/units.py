"""How powers, energies, durations and percentages read, wherever the owner sees them: the
engine's reasons, the logs, the web UI and the CLI share these few formatters.
"""

from __future__ import annotations

import math

#: Shown for a value that is not there (unknown, or a glitch that got this far).
DASH = "—"


def power(watts: float | None) -> str:
    """ "850 W", "1.9 kW", "-2.4 kW"."""
    if watts is None or not math.isfinite(watts):
        return DASH
    return f"{watts / 1000:.1f} kW" if abs(watts) >= 1000 else f"{watts:.0f} W"


def energy(wh: float | None) -> str:
    """ "850 Wh", "12.3 kWh"."""
    if wh is None or not math.isfinite(wh):
        return DASH
    return f"{wh / 1000:.1f} kWh" if abs(wh) >= 1000 else f"{wh:.0f} Wh"


def duration(seconds: float | None) -> str:
    """ "45 s", "3 min 12 s", "4 min", "2 h 05 min", "1 h", "2 d 4 h" (whole seconds, cut)."""
    if seconds is None or not math.isfinite(seconds):
        return DASH
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s} s" if s else f"{m} min"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h} h {m:02d} min" if m else f"{h} h"
    d, h = divmod(h, 24)
    return f"{d} d {h} h" if h else f"{d} d"


def percent(pct: float | None) -> str:
    """ "62%", "49.9%": a decimal only where it decides (49.96 is not 50)."""
    if pct is None or not math.isfinite(pct):
        return DASH
    return f"{pct:.1f}".removesuffix(".0") + "%"
