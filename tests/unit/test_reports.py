"""The report pages and what they are computed from (pure): attempts, slots, metrics, the
utilization log; hostile values, empty, failed-only, single-task and 10,000-task sweeps."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from hsm.core import reportdata
from hsm.core.report_errors import error_page
from hsm.core.reportdata import Sample
from hsm.core.reports import MAX_TABLE_ROWS, completion_page, utilization_page
from hsm.core.summary import summarize

HOSTILE = "<script>alert('x')</script>\"'&"
SVG = "{http://www.w3.org/2000/svg}"


def entry(state: str, start: str | None = "2026-11-22T06:31:33Z", end: str | None = "2026-11-22T06:32:33Z",
          **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"state": state, "source": "local", "attempt": 1, "host": "node1", **extra}
    if start:
        out["start"] = start
    if end:
        out["end"] = end
    return out


def index_of(tasks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"schema": 1, "sweep_id": "sweep_x", "sources": {"local": {"type": "local", "max_parallel": 2}},
            "tasks": tasks}


def rows_of(n: int, metric: bool = True, state: str = "completed") -> tuple[list[str], list[dict[str, Any]]]:
    """A table as export.task_rows gives it."""
    columns = ["task_id", "lr", "opt", "tag", *reportdata.TASK_COLUMNS, *(["acc", "loss"] if metric else [])]
    rows = []
    for i in range(n):
        row: dict[str, Any] = dict.fromkeys(columns)
        row.update(task_id=f"task_{i + 1:05d}", lr=[0.001, 0.01, 0.1][i % 3], opt=["adam", "sgd"][i % 2],
                   tag=HOSTILE if i % 2 else "plain", state=state, source="local", attempts=1, duration=10.0 + i % 7)
        if metric and state == "completed":
            row.update(acc=0.5 + (i % 10) / 20, loss=1.0 - (i % 10) / 20)
        rows.append(row)
    return columns, rows


def svgs(page: str) -> list[ET.Element]:
    """Every chart of a page, parsed as XML (each must be well formed)."""
    return [ET.fromstring(m) for m in re.findall(r"<svg.*?</svg>", page, re.S)]


def completion(n: int, metric: bool = True, state: str = "completed", wanted: str | None = None) -> str:
    columns, rows = rows_of(n, metric, state)
    params, metrics = reportdata.split_columns(columns)
    chosen = reportdata.pick_metric(metrics, rows, wanted)
    tasks = {r["task_id"]: entry(state) for r in rows}
    summary = summarize(index_of(tasks), "sweep_x", "/tmp/sweep_x")  # type: ignore[arg-type]
    return completion_page(summary, params, metrics, rows, chosen,
                           reportdata.default_mode(chosen) if chosen else "max", "2026-11-22T07:00:00Z")


def test_pack_slots_never_overlaps_and_uses_as_few_slots_as_needed() -> None:
    intervals = [(0.0, 10.0), (1.0, 3.0), (3.0, 5.0), (2.0, 12.0), (10.0, 11.0), (20.0, 21.0)]
    slots = reportdata.pack_slots(intervals)
    assert max(slots) + 1 == 3  # at most three overlap (at t=2)
    for i, (a0, a1) in enumerate(intervals):
        for j, (b0, b1) in enumerate(intervals):
            if i < j and slots[i] == slots[j]:
                assert a1 <= b0 or b1 <= a0, (intervals[i], intervals[j])
    assert slots[5] == 0 and reportdata.pack_slots([]) == []


def test_attempts_are_the_history_then_the_current_attempt() -> None:
    tasks = {
        "task_001": entry("completed", attempt=2, duration=60.0, history=[
            {"attempt": 1, "source": "ssh1", "outcome": "failed", "reason": "exit_code", "exit_code": 3,
             "start": "2026-11-22T06:30:00Z", "at": "2026-11-22T06:30:30Z"},
            {"attempt": 0, "source": "local", "outcome": "revoked", "reason": "revoked", "at": "2026-11-22T06:29:00Z"}]),
        "task_002": entry("running", end=None),
        "task_003": {"state": "pending"},
    }
    found = reportdata.attempts(tasks, now=reportdata.epoch("2026-11-22T06:40:00Z"))
    assert [(a.task, a.source, a.outcome) for a in found] == [
        ("task_001", "ssh1", "retried"), ("task_001", "local", "revoked"), ("task_001", "local", "completed"),
        ("task_002", "local", "running")]
    retried, revoked, done, running = found
    assert retried.duration == 30.0 and retried.end == reportdata.epoch("2026-11-22T06:30:30Z")
    assert revoked.start is None
    assert done.duration == 60.0
    assert running.end == reportdata.epoch("2026-11-22T06:40:00Z") and running.duration is None
    layout = reportdata.timeline_layout(found, ["local", "ssh1"])
    assert layout.rows == ["local · slot 1", "local · slot 2", "ssh1 · slot 1"] and layout.group_of == [0, 0, 1]
    stats = reportdata.source_stats(tasks, found, ["local"])
    assert stats["ssh1"]["retries"] == 1 and stats["local"]["attempts"] == 3 and stats["local"]["completed"] == 1


def test_the_utilization_log_is_read_tolerantly() -> None:
    lines = ["[2026-11-22 06:31:33] source=local active=2 slots=4 queued=1 load=0.5",
             "[2026-11-22 06:31:43] source=local active=3 slots=None queued=0 load=- disabled",
             "[2026-11-22 06:31:53] source=ssh1 active=1", "garbage", "[2026-11-22 06:32:00] active=1 slots=2", ""]
    samples = reportdata.parse_utilization(lines)
    assert samples == {
        "local": [Sample("2026-11-22 06:31:33", 2, 4, 1, 0.5), Sample("2026-11-22 06:31:43", 3, None, 0, None)],
        "ssh1": [Sample("2026-11-22 06:31:53", 1, None, None, None)]}


def test_the_metric_and_its_direction() -> None:
    columns, rows = rows_of(4)
    params, metrics = reportdata.split_columns(columns)
    assert params == ["lr", "opt", "tag"] and metrics == ["acc", "loss"]
    assert reportdata.pick_metric(metrics, rows, None) == "acc"
    assert reportdata.pick_metric(["metric.state", "x"], [], "state") == "metric.state"
    assert reportdata.pick_metric(metrics, rows, "nope") is None
    assert reportdata.pick_metric(["note", "acc"], [{"note": "text", "acc": 1}], None) == "acc"
    assert [reportdata.default_mode(m) for m in ("acc", "val_loss", "MSE", "test_error", "ppl")] == \
        ["max", "min", "min", "min", "max"]
    best = reportdata.ranked(rows, "loss", "min")
    assert [r["loss"] for r in best] == sorted(r["loss"] for r in rows)
    assert reportdata.param_axis([0.001, 0.01, 0.1]).log and reportdata.param_axis(["a", 1]).categories == ["1", "a"]


def test_the_completion_report_escapes_values_and_charts_each_parameter() -> None:
    page = completion(12, wanted="acc")
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)" in page
    assert page.count("<script>") == 1  # the page's own sorting script
    charts = svgs(page)
    scatters = [c for c in charts if "against" in c.get("aria-label", "")]
    assert [c.get("aria-label") for c in scatters] == ["acc against lr (log scale)", "acc against opt", "acc against tag"]
    assert all(len(c.findall(".//{http://www.w3.org/2000/svg}circle")) == 12 for c in scatters)
    assert "Best tasks by acc (highest first)" in page and "Content-Security-Policy" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "the page loads nothing"


def test_the_completion_report_of_odd_sweeps() -> None:
    empty = completion(0)
    assert "This sweep has no tasks." in empty and "<svg" not in empty
    no_metrics = completion(5, metric=False)
    assert "No numeric metric" in no_metrics and "Every task" in no_metrics
    failed = completion(4, state="failed")
    assert "success rate" in failed and "0.0 %" in failed and "No task has a value" not in failed
    single = completion(1)
    assert "Same value in every task" in single and "task_00001" in single
    for page in (empty, no_metrics, failed, single):
        svgs(page)


def test_ten_thousand_tasks_make_a_page_of_sane_size() -> None:
    page = completion(10_000)
    assert len(page) < 4_000_000, len(page)
    assert page.count("<tr>") <= MAX_TABLE_ROWS + 1 + 10 + 1
    assert f"Showing {MAX_TABLE_ROWS} of 10000 tasks (best first)" in page
    assert "Charts show 1500 of 10000 tasks" in page


def test_the_utilization_report() -> None:
    tasks = {f"task_{i:03d}": entry("completed", start=f"2026-11-22T06:{i:02d}:00Z", end=f"2026-11-22T06:{i + 2:02d}:00Z",
                                    duration=120.0) for i in range(10)}
    index = index_of(tasks)
    summary = summarize(index, "sweep_x", "/tmp/x")  # type: ignore[arg-type]
    found = reportdata.attempts(tasks)
    samples = {HOSTILE: [(1000.0 + i, Sample("", i, 4, 0, None)) for i in range(5)]}
    page = utilization_page(summary, tasks, found, index["sources"], samples, "now")
    timeline = [c for c in svgs(page) if c.get("aria-label") == "attempts over time, per source slot"]
    assert len(timeline) == 1
    bars = [r for r in timeline[0].iter(SVG + "rect") if r.find(SVG + "title") is not None]
    assert len(bars) == 10 and "local · slot 2" in page and "local · slot 3" not in page
    assert "<script>alert" not in page and page.count("<polyline") == 3
    quiet = utilization_page(summarize(index_of({}), "s", "/p"), {}, [], {}, None, "now")  # type: ignore[arg-type]
    assert "No logs/source_utilization.log" in quiet and "No attempt has started yet" in quiet


def test_the_error_report() -> None:
    failed = [{"id": f"task_{i:03d}", "attempt": 1, "source": HOSTILE if i % 2 else "local", "host": "h",
               "exit_code": 1, "reason": "exit_code", "category": "cuda_oom", "title": "CUDA out of memory",
               "suggestion": "Reduce the batch size", "evidence": HOSTILE, "at": "2026-11-22T06:31:33Z",
               "stderr_tail": ["Traceback", HOSTILE], "outcome": "retried" if i == 0 else "failed"} for i in range(400)]
    analysis = {"sweep_id": "sweep_x", "failed": failed,
                "patterns": [{"category": "CUDA out of memory", "key": "cuda_oom", "count": 400,
                              "tasks": [f["id"] for f in failed], "sources": ["local", HOSTILE],
                              "suggestion": "Reduce the batch size"}],
                "by_source": {"local": [f["id"] for f in failed[::2]], HOSTILE: [f["id"] for f in failed[1::2]]},
                "recommendations": ["Reduce the batch size", HOSTILE]}
    summary = summarize(index_of({}), "sweep_x", "/p")  # type: ignore[arg-type]
    page = error_page(summary, analysis, "now")
    assert "<script>alert" not in page and page.count("<details") == 300
    assert "Showing 300 of 400 failed attempts" in page and "… (200 in all)" in page
    assert len(svgs(page)) == 2  # categories, sources (no task: no state bar)
    none = error_page(summary, {"sweep_id": "s", "failed": [], "patterns": [], "by_source": {}, "recommendations": []}, "n")
    assert "No attempt of this sweep has failed." in none


def test_parameters_with_too_many_values_and_long_values() -> None:
    columns = ["task_id", "run", "seed", *reportdata.TASK_COLUMNS, "acc"]
    rows = [{**dict.fromkeys(columns), "task_id": f"t{i}", "run": f"run-{i}-" + "x" * 300, "seed": i % 3 - 1,
             "state": "completed", "acc": i / 100} for i in range(100)]
    summary = summarize(index_of({}), "s", "/p")  # type: ignore[arg-type]
    page = completion_page(summary, ["run", "seed"], ["acc"], rows, "acc", "max", "now")
    assert "Not charted, too many distinct values (over 40): run (100 values)" in page
    seed = [c for c in svgs(page) if c.get("aria-label") == "acc against seed"]
    assert len(seed) == 1 and len(seed[0].findall(f".//{SVG}circle")) == 100  # negative values are charted too
    # A long value is cut in its cell (to 120 characters) and whole in the cell's tooltip.
    assert re.search(r'<td title="run-99-x{300}">run-99-x{112}…</td>', page)
