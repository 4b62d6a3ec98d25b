"""The SVG vocabulary of hsm's charts (pure): escaping, number labels, scales, ticks and axes.

Every text that reaches a chart goes through `esc`; times are seconds since the epoch and
are labelled as UTC clock times.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

INK, GRID, MUTED = "#333", "#e6e6e6", "#777"
CHAR_W = 6.4  # px per character of an 11 px label, for margins


def esc(text: object) -> str:
    """`text` safe in SVG/HTML text and attribute values."""
    return escape(str(text), quote=True)


def fmt(value: float) -> str:
    """A number as a short label: integers whole, others with four significant digits."""
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def clip(text: str, length: int) -> str:
    """`text` cut to `length` characters, with an ellipsis when cut."""
    return text if len(text) <= length else text[: max(1, length - 1)] + "…"


# --- scales and axes --------------------------------------------------------------------------------


def nice_ticks(lo: float, hi: float, count: int = 5, whole: bool = False) -> list[float]:
    """Round tick values covering [lo, hi], about `count` of them (whole numbers only with `whole`)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw and (not whole or m * power >= 1))
    if whole:
        step = math.ceil(step)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten within [lo, hi] (both > 0); the ends when there are fewer than two."""
    ticks = [10.0 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
             if lo * (1 - 1e-9) <= 10.0 ** e <= hi * (1 + 1e-9)]
    return ticks if len(ticks) >= 2 else [lo, hi]


def time_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Tick times (epoch seconds) on round clock steps (seconds to days)."""
    if hi <= lo:
        return [lo]
    steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
    raw = (hi - lo) / max(1, count)
    step = next((s for s in steps if s >= raw), math.ceil(raw / 86400) * 86400)
    first = math.ceil(lo / step) * step
    return [float(first + i * step) for i in range(int((hi - first) // step) + 1)]


def time_label(t: float, span: float) -> str:
    """An epoch time as a UTC clock label precise enough for a range of `span` seconds."""
    moment = _dt.datetime.fromtimestamp(t, _dt.timezone.utc)
    if span >= 2 * 86400:
        return moment.strftime("%m-%d %H:%M")
    return moment.strftime("%H:%M" if span >= 1800 else "%H:%M:%S")


@dataclass(frozen=True)
class Scale:
    """A linear (or log10) map of [lo, hi] onto pixels [a, b]."""

    lo: float
    hi: float
    a: float
    b: float
    log: bool = False

    def __call__(self, value: float) -> float:
        lo, hi, v = self.lo, self.hi, value
        if self.log:
            lo, hi, v = math.log10(lo), math.log10(hi), math.log10(max(value, 1e-300))
        if hi == lo:
            return (self.a + self.b) / 2
        return self.a + (v - lo) / (hi - lo) * (self.b - self.a)


def padded(values: Sequence[float], log: bool = False) -> tuple[float, float]:
    """The range of `values` with a little room on both ends."""
    lo, hi = min(values), max(values)
    if log:
        return lo / 1.3, hi * 1.3
    if hi == lo:
        return lo - (abs(lo) or 1) * 0.5, hi + (abs(hi) or 1) * 0.5
    room = (hi - lo) * 0.06
    return lo - room, hi + room


def frame(width: float, height: float, body: str, label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{esc(label)}" '
            f'font-family="system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif" font-size="11" '
            f'fill="{INK}">{body}</svg>')


def empty(message: str = "No data", width: float = 320, height: float = 60) -> str:
    """A chart with nothing to show: a frame and a message."""
    body = (f'<rect x="0.5" y="0.5" width="{width - 1:.0f}" height="{height - 1:.0f}" fill="#fafafa" '
            f'stroke="{GRID}"/><text x="{width / 2:.0f}" y="{height / 2 + 4:.0f}" text-anchor="middle" '
            f'fill="{MUTED}">{esc(message)}</text>')
    return frame(width, height, body, message)


def tooltip(text: str) -> str:
    return f"<title>{esc(text)}</title>" if text else ""


def x_axis(scale: Scale, ticks: Sequence[float], labels: Sequence[str], top: float, bottom: float) -> str:
    out = [f'<line x1="{scale.a:.1f}" y1="{bottom:.1f}" x2="{scale.b:.1f}" y2="{bottom:.1f}" stroke="{MUTED}"/>']
    for t, label in zip(ticks, labels):
        x = scale(t)
        # A label at the right end would be cut by the frame: it ends at its tick instead.
        anchor = "end" if x > max(scale.a, scale.b) - len(label) * CHAR_W / 2 else "middle"
        out.append(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="{GRID}"/>'
                   f'<text x="{x:.1f}" y="{bottom + 14:.1f}" text-anchor="{anchor}">{esc(label)}</text>')
    return "".join(out)


def y_axis(scale: Scale, ticks: Sequence[float], left: float, right: float) -> str:
    out = [f'<line x1="{left:.1f}" y1="{scale.a:.1f}" x2="{left:.1f}" y2="{scale.b:.1f}" stroke="{MUTED}"/>']
    for t in ticks:
        y = scale(t)
        out.append(f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
                   f'<text x="{left - 4:.1f}" y="{y + 4:.1f}" text-anchor="end">{esc(fmt(t))}</text>')
    return "".join(out)


def axis_title(x: float, y: float, text: str, vertical: bool = False) -> str:
    turn = f' transform="rotate(-90 {x:.1f} {y:.1f})"' if vertical else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" fill="{MUTED}"{turn}>{esc(clip(text, 60))}</text>'


