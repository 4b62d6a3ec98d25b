"""The completion report and the source utilization report as HTML (pure: data in, page out).

Pages stay a sane size on any sweep: tables, chart points and timeline bars are capped
(the caps are said on the page; every task is in reports/metrics.csv).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hsm.core import charts
from hsm.core.charts import OUTCOME_COLORS, PALETTE, Bar, Group, Point, Series, Span
from hsm.core.htmlpage import (
    Cell,
    cards,
    cell,
    figure,
    legend,
    note,
    page,
    percent,
    seconds,
    section,
    table,
)
from hsm.core.reportdata import Attempt, Axis, Sample, epoch, number, param_axis, ranked, source_stats, thin, timeline_layout
from hsm.core.svg import clip, fmt

MAX_TABLE_ROWS = 2000
MAX_POINTS = 1500  # per scatter chart
POINTS_BUDGET = 12000  # over all scatter charts of a page
MAX_CATEGORIES = 40  # distinct values of a charted parameter that is not numeric
MAX_SPANS = 12000  # timeline bars
MAX_SAMPLES = 1500  # per utilization line
BEST = 10  # tasks in the best-tasks table
RINGED = 3  # best tasks ringed in the charts
STATE_COLORS = {"pending": "#d5d8dc", "assigned": "#b8c2cc", "submitted": "#9fb3c8", "queued": "#7f9cbc",
                "running": OUTCOME_COLORS["running"], "completed": OUTCOME_COLORS["completed"],
                "failed": OUTCOME_COLORS["failed"], "cancelled": OUTCOME_COLORS["cancelled"]}


def palette_of(names: Sequence[str]) -> dict[str, str]:
    """A colour for each name, in order."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(dict.fromkeys(names))}


def wall_time(timing: Mapping[str, Any], done: bool) -> tuple[str, str]:
    """The sweep's wall time as (value, caption): final when done, so far otherwise."""
    first, last = epoch(timing.get("first_start")), epoch(timing.get("last_end"))
    elapsed = number(timing.get("elapsed_seconds"))
    if elapsed is None and first is not None and last is not None:
        elapsed = last - first
    return seconds(elapsed), "wall time" if done else "wall time so far"


def header_cards(summary: Mapping[str, Any], extra: Sequence[tuple[str, str]] = ()) -> str:
    """The sweep's counts, success rate and times as cards, and its states as one stacked bar."""
    counts: Mapping[str, int] = summary.get("counts", {})
    done, failed = counts.get("completed", 0), counts.get("failed", 0)
    unfinished = summary.get("total", 0) - summary.get("finished", 0)
    items = [(str(summary.get("total", 0)), "tasks"), (str(done), "completed"), (str(failed), "failed")]
    if counts.get("cancelled"):
        items.append((str(counts["cancelled"]), "cancelled"))
    if unfinished:
        items.append((str(unfinished), "not finished"))
    timing = summary.get("timing", {})
    items += [(percent(done, done + failed), "success rate"), wall_time(timing, bool(summary.get("done"))),
              (seconds(number(timing.get("mean_task_seconds"))), "mean completed task"), *extra]
    segments = [Bar(state, n, color=STATE_COLORS.get(state, PALETTE[0])) for state, n in counts.items() if n]
    return cards(items) + (charts.stack(segments, width=900) if segments else "")


# --- the completion report ------------------------------------------------------------------------


def _tip(row: Mapping[str, Any], params: Sequence[str], metric: str) -> str:
    shown = ", ".join(f"{p}={clip(str(row.get(p)), 40)}" for p in params[:8])
    return f"{row.get('task_id')}: {metric}={row.get(metric)} ({shown}) on {row.get('source')}"


def param_chart(p: str, axis: Axis, shown: Sequence[Mapping[str, Any]], params: Sequence[str], metric: str,
                colors: Mapping[str, str], ringed: Sequence[Mapping[str, Any]]) -> str:
    """The metric against one parameter, one point per task shown."""
    index = {c: i for i, c in enumerate(axis.categories or [])}
    top = {id(r) for r in ringed}
    points = []
    for r in shown:
        if axis.categories is not None:
            column = index.get(str(r.get(p)))
            x = float(column) if column is not None else None
        else:
            x = number(r.get(p))
        y = number(r.get(metric))
        if x is not None and y is not None:
            points.append(Point(x, y, _tip(r, params, metric), colors[str(r.get("source"))], id(r) in top))
    grid = axis.categories is None and len({number(r.get(p)) for r in shown}) <= 20
    return figure(charts.scatter(points, x_label=p + (" (log scale)" if axis.log else ""), y_label=metric,
                                 categories=axis.categories, log_x=axis.log, spread=8.0 if grid else 0.0,
                                 width=410, height=260), p)


def param_charts(best: Sequence[Mapping[str, Any]], params: Sequence[str], metric: str) -> str:
    """One scatter chart of the metric against each parameter; the best tasks ringed.

    Points are capped (POINTS_BUDGET over all charts, at most MAX_POINTS in one), and so are
    the categories of a parameter: one with more distinct values is not charted.
    """
    colors = palette_of([str(r.get("source")) for r in best])
    varying, constant, many = [], [], []
    for p in params:
        axis = param_axis([r.get(p) for r in best])
        distinct = len(axis.categories) if axis.categories is not None else len({number(r.get(p)) for r in best})
        if distinct < 2:
            constant.append(f"{p}={clip(str(best[0].get(p)), 40)}")
        elif axis.categories is not None and distinct > MAX_CATEGORIES:
            many.append(f"{p} ({distinct} values)")
        else:
            varying.append((p, axis))
    limit = max(BEST, min(MAX_POINTS, POINTS_BUDGET // max(1, len(varying))))
    shown = list(best[:BEST]) + thin(best[BEST:], limit - BEST)
    figs = [param_chart(p, axis, shown, params, metric, colors, best[:RINGED]) for p, axis in varying]
    parts = [legend([(f"source {s}", c) for s, c in colors.items()] + [(f"best {RINGED}", "ring")])]
    parts.append(f'<div class="figs">{"".join(figs)}</div>' if figs else note("No parameter varies among these tasks."))
    if constant:
        parts.append(note("Same value in every task: " + ", ".join(constant)))
    if many:
        parts.append(note(f"Not charted, too many distinct values (over {MAX_CATEGORIES}): " + ", ".join(many)))
    if len(best) > len(shown):
        parts.append(note(f"Charts show {len(shown)} of {len(best)} tasks (the best {BEST} and an even sample)."))
    return "".join(parts)


def best_table(best: Sequence[Mapping[str, Any]], params: Sequence[str], metrics: Sequence[str], metric: str) -> str:
    others = [m for m in metrics if m != metric][:6]
    columns = ["rank", "task", metric, *params, *others, "source", "duration"]
    rows = [[cell(i + 1), cell(r.get("task_id")), cell(r.get(metric)), *(cell(r.get(p)) for p in params),
             *(cell(r.get(m)) for m in others), cell(r.get("source")), _duration(r.get("duration"))]
            for i, r in enumerate(best[:BEST])]
    return table(columns, rows, sortable=False, scroll=False)


def _duration(value: Any) -> Cell:
    n = number(value)
    return Cell(seconds(n), repr(n) if n is not None else "", True) if n is not None else Cell("", "")


def task_table(rows: Sequence[Mapping[str, Any]], params: Sequence[str], metrics: Sequence[str]) -> str:
    """Every task (up to MAX_TABLE_ROWS): parameters, state, source, attempts, duration, metrics."""
    columns = ["task", *params, "state", "source", "attempts", "duration", *metrics]
    body = [[cell(r.get("task_id")), *(cell(r.get(p)) for p in params),
             Cell(str(r.get("state") or ""), css=f"s-{r.get('state')}"), cell(r.get("source")), cell(r.get("attempts")),
             _duration(r.get("duration")), *(cell(r.get(m)) for m in metrics)] for r in rows[:MAX_TABLE_ROWS]]
    return table(columns, body)


def completion_page(summary: Mapping[str, Any], params: Sequence[str], metrics: Sequence[str],
                    rows: Sequence[Mapping[str, Any]], metric: str | None, mode: str, generated: str) -> str:
    """reports/completion_report.html: the sweep at a glance, its best tasks, the metric against each
    parameter, and every task."""
    sweep_id = str(summary.get("sweep_id"))
    best = ranked(rows, metric, mode) if metric else []
    extra = [(fmt(float(number(best[0].get(metric)) or 0)), f"best {metric} ({mode})")] if metric and best else []
    parts = [header_cards(summary, extra)]
    if not rows:
        parts.append(note("This sweep has no tasks."))
    elif metric is None:
        parts.append(section("Best tasks", note("No numeric metric in the tasks' metrics.json files yet: a task that "
                                                "writes $HSM_TASK_DIR/metrics.json gets its metrics here.")))
    else:
        parts.append(section(f"Best tasks by {metric} ({'highest' if mode == 'max' else 'lowest'} first)",
                             best_table(best, params, metrics, metric) if best else
                             note(f"No task has a value of {metric} yet.")))
        if best:
            parts.append(section(f"{metric} against each parameter", param_charts(best, params, metric)))
    if rows:
        if best:
            ids = {id(r) for r in best}
            ordered = [*best, *(r for r in rows if id(r) not in ids)]
        else:
            ordered = list(rows)
        shown = (note(f"Showing {MAX_TABLE_ROWS} of {len(rows)} tasks{' (best first)' if best else ''}; every task is in "
                      "reports/metrics.csv.") if len(rows) > MAX_TABLE_ROWS else "")
        parts.append(section("Every task", note("Click a column header to sort."), shown,
                             task_table(ordered, params, metrics)))
    return page(f"Sweep {sweep_id}: completion report", f"{summary.get('path', '')}", "".join(parts),
                f"Written by hsm aggregate at {generated}.", "completion_report.html")


# --- the source utilization report ----------------------------------------------------------------


def source_table(stats: Mapping[str, Mapping[str, Any]], sources: Mapping[str, Mapping[str, Any]],
                 span: float | None) -> str:
    columns = ["source", "type", "slots", "tasks", "completed", "failed", "success rate", "attempts", "retried",
               "abandoned", "mean", "median", "max", "busy", "utilization"]
    rows = []
    for name, s in stats.items():
        meta = sources.get(name, {})
        slots = number(meta.get("max_parallel"))
        use = min(1.0, s["busy_seconds"] / (slots * span)) if slots and span else None
        rows.append([cell(name), cell(meta.get("type")), cell(meta.get("max_parallel")), cell(s["tasks"]),
                     cell(s["completed"]), cell(s["failed"]),
                     Cell(percent(s["completed"], s["completed"] + s["failed"]), str(s["success_rate"] or ""), True),
                     cell(s["attempts"]), cell(s["retries"]), cell(s["abandoned"]), _duration(s["mean_duration"]),
                     _duration(s["median_duration"]), _duration(s["max_duration"]), _duration(s["busy_seconds"]),
                     Cell(f"{100 * use:.0f} %" if use is not None else "–", str(use or ""), True)])
    return table(columns, rows)


def timeline_section(found: Sequence[Attempt], sources: Sequence[str]) -> str:
    layout = timeline_layout(found, sources)
    placed = thin(layout.placed, MAX_SPANS)
    spans = [Span(row, a.start or 0.0, a.end or 0.0, OUTCOME_COLORS.get(a.outcome, OUTCOME_COLORS["other"]), a.tip())
             for row, a in placed]
    row_height = 16 if len(layout.rows) <= 40 else 10 if len(layout.rows) <= 120 else 5
    keys = sorted({a.outcome for _, a in placed}, key=lambda o: list(OUTCOME_COLORS).index(o)
                  if o in OUTCOME_COLORS else 99)
    parts = [legend([(k, OUTCOME_COLORS.get(k, OUTCOME_COLORS["other"])) for k in keys]),
             figure(charts.timeline(layout.rows, spans, width=1200, row_height=row_height, group_of=layout.group_of),
                    "One row per slot of a source; a bar per attempt from its start to its end (hover for details).")]
    if len(layout.placed) > len(placed):
        parts.append(note(f"Showing {len(placed)} of {len(layout.placed)} attempts (an even sample)."))
    unstarted = sum(1 for a in found if a.start is None)
    if unstarted:
        parts.append(note(f"{unstarted} attempts never started (waiting, or taken back before they started)."))
    return section("Attempts over time", *parts)


def durations_section(found: Sequence[Attempt], sources: Sequence[str]) -> str:
    colors = palette_of(sources)
    groups = []
    for name in sources:
        mine = [a for a in found if a.source == name and a.duration is not None and a.outcome != "running"]
        if mine:
            groups.append(Group(name, [a.duration or 0.0 for a in mine], [a.tip() for a in mine], colors[name]))
    return section("Attempt durations per source", figure(charts.strip_box(groups, value_label="seconds", width=1000),
                                                          "Box: quartiles and median; line: min to max; dots: attempts."))


def usage_section(samples: Mapping[str, Sequence[tuple[float, Sample]]] | None) -> str:
    if samples is None:
        return section("Slots in use over time", note("No logs/source_utilization.log in this sweep."))
    figs = []
    for name, points in samples.items():
        series = []
        for field, color, dashed in (("active", PALETTE[0], False), ("slots", PALETTE[3], True),
                                     ("queued", PALETTE[1], False)):
            values = [(t, v) for t, s in points if (v := getattr(s, field)) is not None]
            if values:
                series.append(Series(field, thin(values, MAX_SAMPLES), color, dashed))
        figs.append(figure(charts.lines(series, y_label="tasks", width=560), name))
    body = f'<div class="figs">{"".join(figs)}</div>' if figs else note("logs/source_utilization.log has no samples.")
    return section("Slots in use over time", body, note("From logs/source_utilization.log (times in UTC)."))


def utilization_page(summary: Mapping[str, Any], tasks: Mapping[str, Mapping[str, Any]], found: Sequence[Attempt],
                     sources: Mapping[str, Mapping[str, Any]],
                     samples: Mapping[str, Sequence[tuple[float, Sample]]] | None, generated: str) -> str:
    """reports/source_utilization.html: what each source ran, when, for how long, and how busy it was."""
    names = list(dict.fromkeys([*sources, *(a.source for a in found)]))
    stats = source_stats(tasks, found, sources)
    timed = [a for a in found if a.start is not None and a.end is not None]
    # Index times have whole seconds: an attempt lasts at least its measured duration.
    span = (max(max(a.end or 0.0, (a.start or 0.0) + (a.duration or 0.0)) for a in timed)
            - min(a.start or 0.0 for a in timed)) if timed else None
    extra = [(str(len(names)), "sources"), (str(len(found)), "attempts"),
             (str(sum(a.outcome == "retried" for a in found)), "retried attempts")]
    parts = [header_cards(summary, extra),
             section("Per source", source_table(stats, sources, span),
                     note("Utilization: busy time over slots × the sweep's span of attempts.")),
             timeline_section(found, names), durations_section(found, names), usage_section(samples)]
    return page(f"Sweep {summary.get('sweep_id')}: source utilization", str(summary.get("path", "")), "".join(parts),
                f"Written by hsm aggregate at {generated}.", "source_utilization.html")
