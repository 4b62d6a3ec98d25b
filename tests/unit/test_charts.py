"""The inline SVG charts: well-formed, one mark per datum, every text escaped, empty data shown as such."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from hsm.core import charts, svg
from hsm.core.charts import Bar, Group, Point, Series, Span

NS = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert('x')</script> \"quoted\" & 'single'"


def parse(text: str) -> ET.Element:
    """The chart as XML: a chart that does not parse is broken (an unescaped text would do it)."""
    root = ET.fromstring(text)
    assert root.tag == f"{NS}svg"
    return root


def count(root: ET.Element, tag: str) -> int:
    return len(root.findall(f".//{NS}{tag}"))


def titles(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{NS}title")]


def test_scatter_draws_one_circle_per_point_with_its_tooltip() -> None:
    points = [Point(float(i), i * 0.5, f"task_{i:03d}") for i in range(1, 21)]
    root = parse(charts.scatter(points, x_label="lr", y_label="accuracy"))
    assert count(root, "circle") == 20
    assert [t for t in titles(root) if t.startswith("task_")] == [f"task_{i:03d}" for i in range(1, 21)]
    assert "accuracy" in "".join(root.itertext()) and "lr" in "".join(root.itertext())


def test_scatter_of_categories_puts_each_point_in_its_column() -> None:
    cats = ["adam", "sgd", "rmsprop"]
    points = [Point(float(i % 3), float(i), f"p{i}") for i in range(9)]
    text = charts.scatter(points, x_label="optimizer", y_label="loss", categories=cats, width=600)
    root = parse(text)
    assert count(root, "circle") == 9
    labels = {t.text for t in root.iter(f"{NS}text")}
    assert set(cats) <= labels
    # Points of one category stay within its column (a third of the plot each).
    xs = {}
    for c, p in zip((c for c in root.iter(f"{NS}circle")), sorted(points, key=lambda q: q.emphasis)):
        xs.setdefault(int(p.x), []).append(float(c.get("cx", "0")))
    assert max(xs[0]) < min(xs[1]) and max(xs[1]) < min(xs[2])


def test_scatter_on_a_log_scale_ticks_powers_of_ten() -> None:
    points = [Point(x, 1.0) for x in (0.001, 0.01, 0.1, 1.0)]
    root = parse(charts.scatter(points, x_label="lr", y_label="acc", log_x=True))
    labels = [t.text for t in root.iter(f"{NS}text")]
    assert {"0.001", "0.01", "0.1", "1"} <= set(labels)
    cx = sorted(float(c.get("cx", "0")) for c in root.iter(f"{NS}circle"))
    gaps = [b - a for a, b in zip(cx, cx[1:])]
    assert max(gaps) - min(gaps) < 1.0  # evenly spaced decades


def test_scatter_without_finite_values_says_so() -> None:
    for points in ([], [Point(math.nan, 1.0)], [Point(1.0, math.inf)]):
        root = parse(charts.scatter(points, x_label="x", y_label="metric"))
        assert count(root, "circle") == 0
        assert "No values of metric" in "".join(root.itertext())


def test_hbars_draw_a_bar_per_row_and_parts_end_to_end() -> None:
    bars = [Bar("CUDA out of memory", 3), Bar("Import error", 1), Bar("zero", 0)]
    root = parse(charts.hbars(bars, value_label="failed attempts"))
    assert count(root, "rect") == 3
    widths = [float(r.get("width", "0")) for r in root.iter(f"{NS}rect")]
    assert widths[0] > widths[1] > widths[2] == 0
    # Counts get whole ticks.
    assert all(float(t.text or "0").is_integer() for t in root.iter(f"{NS}text") if (t.text or "").replace(".", "").isdigit())
    stacked = parse(charts.hbars([Bar("local", 5, parts=(Bar("final", 3, color="red"), Bar("retried", 2, color="orange")))],
                                 value_label="n"))
    rects = list(stacked.iter(f"{NS}rect"))
    assert [r.get("fill") for r in rects] == ["red", "orange"]
    assert float(rects[1].get("x", "0")) == float(rects[0].get("x", "0")) + float(rects[0].get("width", "0"))


def test_stack_skips_empty_segments_and_keys_the_others() -> None:
    root = parse(charts.stack([Bar("completed", 9, color="green"), Bar("failed", 0), Bar("running", 3)]))
    fills = [r.get("fill") for r in root.iter(f"{NS}rect")]
    assert fills.count("green") == 2  # the segment and its legend key
    assert "completed 9" in "".join(root.itertext()) and "failed" not in "".join(root.itertext())
    assert "No tasks" in charts.stack([])


def test_timeline_draws_a_bar_per_span_on_its_row() -> None:
    rows = ["local · slot 1", "local · slot 2", "server · slot 1"]
    spans = [Span(0, 1000.0, 1010.0, "green", "task_001"), Span(1, 1002.0, 1003.0, "red", "task_002"),
             Span(0, 1010.0, 1020.0, "orange", "task_003"), Span(2, 1005.0, 1005.0, "green", "task_004")]
    root = parse(charts.timeline(rows, spans, group_of=[0, 0, 1]))
    bars = [r for r in root.iter(f"{NS}rect") if r.find(f"{NS}title") is not None]
    assert [r.find(f"{NS}title").text for r in bars] == ["task_001", "task_002", "task_003", "task_004"]  # type: ignore[union-attr]
    assert all(float(r.get("width", "0")) >= 1 for r in bars)  # even an instant attempt shows
    assert bars[0].get("y") == bars[2].get("y") != bars[1].get("y")
    assert count(root, "rect") == len(spans) + 1  # one shaded row for the second source
    assert "time (UTC)" in "".join(root.itertext())
    assert "No attempt has started yet" in charts.timeline(rows, [])


def test_strip_box_caps_its_points_but_boxes_every_value() -> None:
    values = [float(v) for v in range(1, 1001)]
    root = parse(charts.strip_box([Group("local", values, [f"t{v}" for v in range(1000)])], value_label="s",
                                  max_points=100))
    assert count(root, "circle") == 100
    box = [t for t in titles(root) if t.startswith("local:")]
    assert box == ["local: n=1000, min 1, q1 250.8, median 500.5, q3 750.2, max 1000"]
    assert charts.quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == (2.0, 3.0, 4.0)
    assert "No durations yet" in charts.strip_box([Group("x", [])], value_label="s")


def test_lines_draw_a_polyline_per_series_with_a_legend() -> None:
    series = [Series("active", [(0.0, 1.0), (10.0, 3.0), (20.0, 2.0)]),
              Series("slots", [(0.0, 4.0), (20.0, 4.0)], dashed=True), Series("queued", [])]
    root = parse(charts.lines(series, y_label="tasks"))
    lines = list(root.iter(f"{NS}polyline"))
    assert len(lines) == 2
    assert len(lines[0].get("points", "").split()) == 5  # steps: a value holds until the next sample
    assert "stroke-dasharray" in lines[1].attrib
    assert {"active", "slots"} <= {t.text for t in root.iter(f"{NS}text")}
    assert "No samples" in charts.lines([], y_label="tasks")


def test_every_text_is_escaped() -> None:
    outputs = [
        charts.scatter([Point(1, 2, HOSTILE), Point(2, 3, HOSTILE)], x_label=HOSTILE, y_label=HOSTILE),
        charts.scatter([Point(0, 2, HOSTILE)], x_label="x", y_label="y", categories=[HOSTILE]),
        charts.hbars([Bar(HOSTILE, 1, HOSTILE)], value_label=HOSTILE),
        charts.stack([Bar(HOSTILE, 1, HOSTILE)]),
        charts.timeline([HOSTILE], [Span(0, 0.0, 1.0, "red", HOSTILE)]),
        charts.strip_box([Group(HOSTILE, [1.0, 2.0], [HOSTILE, HOSTILE])], value_label=HOSTILE),
        charts.lines([Series(HOSTILE, [(0.0, 1.0)])], y_label=HOSTILE),
        svg.empty(HOSTILE),
    ]
    for text in outputs:
        assert "<script" not in text and "alert('x')" not in text, text
        root = parse(text)
        assert any("<script>" in t for t in root.itertext()), "the text is shown as written"


def test_ticks_and_labels() -> None:
    assert svg.nice_ticks(0, 10, 5) == [0, 2, 4, 6, 8, 10]
    assert svg.nice_ticks(0, 3, 4, whole=True) == [0, 1, 2, 3]
    assert svg.nice_ticks(5, 5) == [5]
    assert svg.log_ticks(0.0008, 1.2) == [0.001, 0.01, 0.1, 1.0]
    ticks = svg.time_ticks(0, 3600)
    assert ticks[0] == 0 and all(b - a == 600 for a, b in zip(ticks, ticks[1:]))
    assert svg.time_label(3600 * 6 + 61, 100) == "06:01:01" and svg.time_label(0, 7200) == "00:00"
    assert [svg.fmt(v) for v in (3.0, 0.123456, 1e-5, 12345.678)] == ["3", "0.1235", "1e-05", "1.235e+04"]
    assert svg.clip("abcdef", 4) == "abc…" and svg.clip("abc", 4) == "abc"
