"""Charts as inline SVG strings, computed from numbers (pure).

Every chart is one `<svg>` element that needs no script, font or stylesheet: it renders in
any browser from a file on a cluster's file system. Each mark carries its details in an SVG
`<title>` (the browser shows it as a tooltip). Every text that reaches the SVG is escaped.
Times are seconds since the epoch (UTC) and are labelled as UTC clock times.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from hsm.core.svg import (
    CHAR_W,
    INK,
    MUTED,
    Scale,
    axis_title,
    clip,
    empty,
    esc,
    fmt,
    frame,
    log_ticks,
    nice_ticks,
    padded,
    time_label,
    time_ticks,
    tooltip,
    x_axis,
    y_axis,
)

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac")
OUTCOME_COLORS = {"completed": "#3a9a50", "failed": "#d9453d", "retried": "#f0a22e", "abandoned": "#a77bd1",
                  "running": "#4a82d4", "cancelled": "#9a9a9a", "other": "#c9c9c9"}
_JITTER = 0.6180339887  # golden ratio: a deterministic spread of points over a band


@dataclass(frozen=True)
class Point:
    """One mark of a scatter chart."""

    x: float
    y: float
    tip: str = ""
    color: str = PALETTE[0]
    emphasis: bool = False


@dataclass(frozen=True)
class Bar:
    """One bar (or one segment of a stacked bar); with `parts`, drawn as its parts end to end."""

    label: str
    value: float
    tip: str = ""
    color: str = PALETTE[0]
    parts: tuple[Bar, ...] = ()


@dataclass(frozen=True)
class Span:
    """One attempt on a timeline row, from `start` to `end` (epoch seconds)."""

    row: int
    start: float
    end: float
    color: str
    tip: str = ""


@dataclass(frozen=True)
class Group:
    """Values of one row of a strip chart; `tips` name the points (as many as values, or none)."""

    label: str
    values: Sequence[float]
    tips: Sequence[str] = ()
    color: str = PALETTE[0]


@dataclass(frozen=True)
class Series:
    """One line of a line chart: (epoch seconds, value) points in time order."""

    name: str
    points: Sequence[tuple[float, float]]
    color: str = PALETTE[0]
    dashed: bool = False


# --- charts -----------------------------------------------------------------------------------------


def scatter(points: Sequence[Point], *, x_label: str, y_label: str, categories: Sequence[str] | None = None,
            log_x: bool = False, spread: float = 0.0, width: float = 340, height: float = 250) -> str:
    """Points of (x, y); with `categories`, x is a category's index and points spread over its column.

    `spread` (pixels) spreads points sideways on a numeric axis too, so tasks that share an x
    value (a grid) do not hide one another.
    """
    finite = [p for p in points if math.isfinite(p.x) and math.isfinite(p.y) and (p.x > 0 or not log_x)]
    if not finite:
        return empty(f"No values of {y_label}", width, 80)
    left, bottom = 52.0, height - 34
    ys = Scale(*padded([p.y for p in finite]), bottom, 10)
    if categories is not None:
        xs = Scale(-0.5, len(categories) - 0.5, left, width - 10)
        ticks: list[float] = [float(i) for i in range(len(categories))]
        # Each label gets its column's width (at least 6 characters: then only every step-th is shown).
        room = int((width - left - 10) / max(1, len(categories)) / CHAR_W) - 1
        step = max(1, math.ceil(6 / max(1, room)))
        labels = [clip(c, max(6, room)) if i % step == 0 else "" for i, c in enumerate(categories)]
    else:
        xs = Scale(*padded([p.x for p in finite], log_x), left, width - 10, log_x)
        ticks = log_ticks(xs.lo, xs.hi) if log_x else nice_ticks(xs.lo, xs.hi, 4)
        labels = [fmt(t) for t in ticks]
    body = [y_axis(ys, nice_ticks(ys.lo, ys.hi, 5), left, width - 10), x_axis(xs, ticks, labels, 10, bottom)]
    for i, p in enumerate(sorted(finite, key=lambda q: q.emphasis)):
        shift = (i * _JITTER) % 1.0 - 0.5
        x = xs(p.x + shift * 0.5) if categories is not None else xs(p.x) + shift * 2 * spread
        r, ring = (4.5, f' stroke="{INK}" stroke-width="1.2"') if p.emphasis else (3.0, "")
        body.append(f'<circle cx="{x:.1f}" cy="{ys(p.y):.1f}" r="{r}" fill="{p.color}" fill-opacity="0.75"{ring}>'
                    f"{tooltip(p.tip)}</circle>")
    body.append(axis_title((left + width - 10) / 2, height - 4, x_label))
    body.append(axis_title(12, (10 + bottom) / 2, y_label, vertical=True))
    return frame(width, height, "".join(body), f"{y_label} against {x_label}")


def hbars(bars: Sequence[Bar], *, value_label: str, width: float = 640, bar_height: float = 20) -> str:
    """Horizontal bars, one per row, labelled on the left and with their value on the right."""
    if not bars:
        return empty("Nothing to show", width)
    left = min(220.0, max(60.0, max(len(clip(b.label, 32)) for b in bars) * CHAR_W + 12))
    top, right = 8.0, width - 60
    height = top + len(bars) * (bar_height + 6) + 34
    peak = max((b.value for b in bars if math.isfinite(b.value)), default=0.0) or 1.0
    xs = Scale(0, peak, left, right)
    ticks = nice_ticks(0, peak, 4, whole=all(float(b.value).is_integer() for b in bars))
    body = [x_axis(xs, ticks, [fmt(t) for t in ticks], top, height - 34)]
    for i, b in enumerate(bars):
        y = top + 3 + i * (bar_height + 6)
        body.append(f'<text x="{left - 6:.1f}" y="{y + bar_height / 2 + 4:.1f}" text-anchor="end">'
                    f"{esc(clip(b.label, 32))}{tooltip(b.label)}</text>")
        x = left
        for part in b.parts or (b,):
            w = max(1.0, xs(part.value) - left) if part.value > 0 else 0.0
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{bar_height}" fill="{part.color}">'
                        f"{tooltip(part.tip or f'{part.label}: {fmt(part.value)}')}</rect>")
            x += w
        body.append(f'<text x="{x + 4:.1f}" y="{y + bar_height / 2 + 4:.1f}">{esc(fmt(b.value))}</text>')
    body.append(axis_title((left + right) / 2, height - 4, value_label))
    return frame(width, height, "".join(body), value_label)


def stack(segments: Sequence[Bar], *, width: float = 640, height: float = 22) -> str:
    """One bar split into segments in proportion to their values, with a legend under it."""
    total = sum(s.value for s in segments if s.value > 0)
    if total <= 0:
        return empty("No tasks", width, 40)
    body, x = [], 0.5
    for s in segments:
        if s.value <= 0:
            continue
        w = (width - 1) * s.value / total
        body.append(f'<rect x="{x:.2f}" y="0.5" width="{w:.2f}" height="{height}" fill="{s.color}">'
                    f"{tooltip(s.tip or f'{s.label}: {fmt(s.value)}')}</rect>")
        x += w
    legend_x = 0.0
    for s in segments:
        if s.value > 0:
            text = f"{s.label} {fmt(s.value)}"
            body.append(f'<rect x="{legend_x:.1f}" y="{height + 8:.1f}" width="10" height="10" fill="{s.color}"/>'
                        f'<text x="{legend_x + 14:.1f}" y="{height + 17:.1f}">{esc(text)}</text>')
            legend_x += 26 + len(text) * CHAR_W
    return frame(width, height + 24, "".join(body), "tasks by state")


def timeline(rows: Sequence[str], spans: Sequence[Span], *, width: float = 1100, row_height: float = 14,
             group_of: Sequence[int] = ()) -> str:
    """Gantt-like rows (one per source slot) with one bar per attempt from its start to its end.

    `group_of[i]` numbers the group (source) of row i: rows of alternate groups are shaded.
    """
    if not rows or not spans:
        return empty("No attempt has started yet", width)
    left = min(240.0, max(70.0, max(len(clip(r, 34)) for r in rows) * CHAR_W + 12))
    top, height = 8.0, 8 + len(rows) * row_height + 34
    lo, hi = min(s.start for s in spans), max(s.end for s in spans)
    xs = Scale(lo, hi if hi > lo else lo + 1, left, width - 12)
    ticks = time_ticks(xs.lo, xs.hi)
    body = []
    for i, label in enumerate(rows):
        y = top + i * row_height
        if (group_of[i] if i < len(group_of) else 0) % 2:
            body.append(f'<rect x="0" y="{y:.1f}" width="{width:.0f}" height="{row_height}" fill="#f4f6fa"/>')
        body.append(f'<text x="{left - 6:.1f}" y="{y + row_height / 2 + 4:.1f}" text-anchor="end">'
                    f"{esc(clip(label, 34))}</text>")
    body.append(x_axis(xs, ticks, [time_label(t, xs.hi - xs.lo) for t in ticks], top, height - 34))
    pad = 2 if row_height >= 8 else 0
    for s in spans:
        x0, x1 = xs(s.start), xs(max(s.end, s.start))
        # A pixel of gap at the end keeps back-to-back attempts of one slot apart.
        w = x1 - x0 - 1 if x1 - x0 > 4 else max(1.0, x1 - x0)
        body.append(f'<rect x="{x0:.1f}" y="{top + s.row * row_height + pad / 2:.1f}" width="{w:.1f}" '
                    f'height="{row_height - pad}" fill="{s.color}">{tooltip(s.tip)}</rect>')
    body.append(axis_title((left + width) / 2, height - 4, "time (UTC)"))
    return frame(width, height, "".join(body), "attempts over time, per source slot")


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """First quartile, median and third quartile (linear interpolation)."""
    data = sorted(values)

    def at(q: float) -> float:
        pos = (len(data) - 1) * q
        low = math.floor(pos)
        high = min(low + 1, len(data) - 1)
        return data[low] + (data[high] - data[low]) * (pos - low)

    return at(0.25), at(0.5), at(0.75)


def strip_box(groups: Sequence[Group], *, value_label: str, width: float = 700, max_points: int = 800) -> str:
    """Per group, a box (quartiles, median, min to max) and its values as jittered points.

    At most `max_points` points are drawn per group (evenly chosen); the box uses every value.
    """
    shown = [g for g in groups if any(math.isfinite(v) for v in g.values)]
    if not shown:
        return empty("No durations yet", width)
    left = min(200.0, max(60.0, max(len(clip(g.label, 28)) for g in shown) * CHAR_W + 12))
    band, top = 38.0, 8.0
    height = top + band * len(shown) + 34
    every = [v for g in shown for v in g.values if math.isfinite(v)]
    xs = Scale(*padded(every), left, width - 14)
    ticks = nice_ticks(xs.lo, xs.hi, 6)
    body = [x_axis(xs, ticks, [fmt(t) for t in ticks], top, height - 34)]
    for i, g in enumerate(shown):
        values = [v for v in g.values if math.isfinite(v)]
        mid = top + band * i + band / 2
        q1, med, q3 = quartiles(values)
        tip = (f"{g.label}: n={len(values)}, min {fmt(min(values))}, q1 {fmt(q1)}, median {fmt(med)}, "
               f"q3 {fmt(q3)}, max {fmt(max(values))}")
        body.append(f'<text x="{left - 6:.1f}" y="{mid + 4:.1f}" text-anchor="end">{esc(clip(g.label, 28))}</text>'
                    f'<line x1="{xs(min(values)):.1f}" y1="{mid:.1f}" x2="{xs(max(values)):.1f}" y2="{mid:.1f}" '
                    f'stroke="{MUTED}"/><rect x="{xs(q1):.1f}" y="{mid - 10:.1f}" width="{max(1.0, xs(q3) - xs(q1)):.1f}" '
                    f'height="20" fill="{g.color}" fill-opacity="0.18" stroke="{g.color}">{tooltip(tip)}</rect>'
                    f'<line x1="{xs(med):.1f}" y1="{mid - 10:.1f}" x2="{xs(med):.1f}" y2="{mid + 10:.1f}" '
                    f'stroke="{INK}" stroke-width="2"/>')
        picked = range(0, len(g.values), max(1, math.ceil(len(g.values) / max_points)))
        for n, k in enumerate(picked):
            v = g.values[k]
            if math.isfinite(v):
                tip = g.tips[k] if k < len(g.tips) else fmt(v)
                body.append(f'<circle cx="{xs(v):.1f}" cy="{mid + ((n * _JITTER) % 1.0 - 0.5) * 24:.1f}" r="2.5" '
                            f'fill="{g.color}" fill-opacity="0.7">{tooltip(tip)}</circle>')
    body.append(axis_title((left + width) / 2, height - 4, value_label))
    return frame(width, height, "".join(body), value_label)


def lines(series: Sequence[Series], *, y_label: str, width: float = 700, height: float = 200,
          step: bool = True) -> str:
    """Values over time, one line per series (drawn as steps: a value holds until the next)."""
    drawn = [s for s in series if s.points]
    if not drawn:
        return empty("No samples", width)
    left, top, bottom = 46.0, 22.0, height - 34
    t_all = [t for s in drawn for t, _ in s.points]
    v_all = [v for s in drawn for _, v in s.points]
    t_lo, t_hi = min(t_all), max(t_all)
    xs = Scale(t_lo, t_hi if t_hi > t_lo else t_lo + 1, left, width - 12)
    ys = Scale(min(0.0, min(v_all)), max(v_all) * 1.1 or 1.0, bottom, top)
    ticks = time_ticks(xs.lo, xs.hi)
    body = [y_axis(ys, nice_ticks(ys.lo, ys.hi, 4), left, width - 12),
            x_axis(xs, ticks, [time_label(t, xs.hi - xs.lo) for t in ticks], top, bottom)]
    legend_x = left
    for s in drawn:
        coords: list[str] = []
        for i, (t, v) in enumerate(s.points):
            if step and i:
                coords.append(f"{xs(t):.1f},{ys(s.points[i - 1][1]):.1f}")
            coords.append(f"{xs(t):.1f},{ys(v):.1f}")
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        last = s.points[-1]
        body.append(f'<polyline points="{" ".join(coords)}" fill="none" stroke="{s.color}" stroke-width="1.6"{dash}>'
                    f"{tooltip(f'{s.name}: last {fmt(last[1])}, max {fmt(max(v for _, v in s.points))}')}</polyline>"
                    f'<line x1="{legend_x:.1f}" y1="10" x2="{legend_x + 16:.1f}" y2="10" stroke="{s.color}" '
                    f'stroke-width="2"{dash}/><text x="{legend_x + 20:.1f}" y="14">{esc(s.name)}</text>')
        legend_x += 34 + len(s.name) * CHAR_W
    body.append(axis_title((left + width) / 2, height - 4, "time (UTC)"))
    body.append(axis_title(12, (top + bottom) / 2, y_label, vertical=True))
    return frame(width, height, "".join(body), y_label)
