"""The HTML reports of a real sweep, opened in a real browser.

A sweep runs on this machine (`hsm run`, some tasks failing, one retried), `hsm aggregate
--metric` writes the reports, and headless Chromium (Debian's /usr/bin/chromium) opens each
one from the file system: its DOM must hold the charts with their marks, its screenshot must
show them (the PNG is decoded here, with zlib alone), and the browser's console must stay
silent. Without Chromium these tests fail: they never skip.

Screenshots go to $HSM_SCREENSHOT_DIR when it is set (for the docs), else to a temp dir.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.hsmproc import Project, make_project

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_TIMEOUT = 90  # seconds per browser run
SVG_NS = "http://www.w3.org/2000/svg"
HOSTILE_TAG = "<script>alert('x')</script>"

HSM_CONFIG = """\
paths:
  training_script: train.py
compute:
  disk_min_free_gb: 0.05
  retry_attempts: 1
  retry_delay: 0
  retry_on_exit_codes: [3]
"""

# A training script that writes metrics.json; sgd at lr 0.1 runs out of GPU memory, adam at
# lr 0.001 with the hostile tag misses a module, and sgd at lr 0.01 fails its first attempt
# with exit code 3 (retried, then completed).
TRAIN_PY = """\
import argparse, json, math, os, sys, time

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, required=True)
p.add_argument("--optimizer", required=True)
p.add_argument("--tag", required=True)
a = p.parse_args()
attempt = int(os.environ.get("HSM_ATTEMPT", "1"))
time.sleep(0.6 + 0.3 * abs(math.log10(a.lr)) + (0.5 if a.optimizer == "sgd" else 0.0))
if a.optimizer == "sgd" and a.lr == 0.1:
    print("Traceback (most recent call last):", file=sys.stderr)
    print("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB", file=sys.stderr)
    sys.exit(1)
if a.optimizer == "adam" and a.lr == 0.001 and a.tag.startswith("<"):
    print("ModuleNotFoundError: No module named 'torchvision'", file=sys.stderr)
    sys.exit(1)
if a.optimizer == "sgd" and a.lr == 0.01 and attempt == 1:
    print("transient failure, try again", file=sys.stderr)
    sys.exit(3)
acc = 0.9 - 0.05 * abs(math.log10(a.lr) + 2) - (0.03 if a.optimizer == "sgd" else 0.0) + 0.01 * (len(a.tag) % 3)
metrics = {"test_accuracy": round(acc, 4), "loss": round(1 - acc, 4), "val": {"acc": round(acc - 0.01, 4)}}
with open(os.path.join(os.environ["HSM_TASK_DIR"], "metrics.json"), "w") as fh:
    json.dump(metrics, fh)
print("done", metrics)
"""

SWEEP_CONFIG = """\
grid:
  lr: [0.001, 0.01, 0.1]
  optimizer: [adam, sgd]
  tag: ["<script>alert('x')</script>", "plain \\"quoted\\" & more"]
arg_style: argparse
"""

# The reports' colours of outcomes and states (hsm.core.charts.OUTCOME_COLORS).
GREEN, RED, ORANGE = (0x3A, 0x9A, 0x50), (0xD9, 0x45, 0x3D), (0xF0, 0xA2, 0x2E)


# --- the browser ----------------------------------------------------------------------------------


def chromium() -> Path:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} is missing: these tests open the reports in headless Chromium "
                    "(Debian: apt-get install chromium)")
    return CHROMIUM


@dataclass
class Opened:
    """What the browser made of a page: its DOM after scripts ran, and what its console said."""

    dom: str
    console: list[str]


def browse(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium on a file with its console logged to stderr."""
    profile.mkdir(parents=True, exist_ok=True)
    argv = [str(chromium()), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args, page.resolve().as_uri()]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=BROWSER_TIMEOUT, check=False)
    assert result.returncode == 0, f"chromium failed on {page} ({result.returncode}):\n{result.stderr[-3000:]}"
    return result


def console_of(stderr: str) -> list[str]:
    """The page's console messages (errors, uncaught exceptions, refused loads) in Chromium's log."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def open_page(page: Path, profile: Path) -> Opened:
    result = browse(page, profile, "--dump-dom")
    return Opened(result.stdout, console_of(result.stderr))


def screenshot(page: Path, png: Path, profile: Path) -> list[str]:
    """A 1400 × 2000 screenshot of the page into `png`; the console messages meanwhile."""
    result = browse(page, profile, f"--screenshot={png}", "--window-size=1400,2000")
    assert png.is_file() and png.stat().st_size > 0, f"no screenshot of {page}"
    return console_of(result.stderr)


# --- PNG, with zlib alone --------------------------------------------------------------------------


def _add(a: bytes, b: bytes) -> bytes:
    """Bytewise (a + b) mod 256 of two equal-length byte strings, at once (no carry between bytes)."""
    n = len(a)
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    low, high = int.from_bytes(b"\x7f" * n, "big"), int.from_bytes(b"\x80" * n, "big")
    return (((x & low) + (y & low)) ^ ((x ^ y) & high)).to_bytes(n, "big")


def _unfilter(kind: int, line: bytes, prev: bytes, bpp: int) -> bytes:
    if kind == 0:
        return line
    if kind == 2:
        return _add(line, prev)
    out = bytearray(line)
    for i in range(len(out)):
        a = out[i - bpp] if i >= bpp else 0
        if kind == 1:
            out[i] = (out[i] + a) & 255
        elif kind == 3:
            out[i] = (out[i] + (a + prev[i]) // 2) & 255
        else:  # 4: Paeth
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            out[i] = (out[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    return bytes(out)


def png_colors(path: Path) -> tuple[int, int, Counter[tuple[int, int, int]]]:
    """Width, height and how many pixels have each RGB colour, of an 8-bit RGB(A) PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    pos, idat, header = 8, [], b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
    width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), width * bpp
    colors: Counter[tuple[int, int, int]] = Counter()
    prev = bytes(stride)
    for row in range(height):
        start = row * (stride + 1)
        prev = _unfilter(raw[start], raw[start + 1:start + 1 + stride], prev, bpp)
        colors.update(zip(prev[0::bpp], prev[1::bpp], prev[2::bpp]))
    return width, height, colors


def check_screenshot(png: Path, *wanted: tuple[int, int, int]) -> None:
    """Not blank: plenty of pixels that are not (near) white, and the chart colours `wanted`."""
    width, height, colors = png_colors(png)
    assert (width, height) == (1400, 2000)
    inked = sum(n for (r, g, b), n in colors.items() if min(r, g, b) < 200)
    assert inked > 20_000, f"{png}: only {inked} inked pixels: blank?"
    for color in wanted:
        assert colors[color] >= 30, f"{png}: colour #{bytes(color).hex()} drawn on {colors[color]} pixels only"


# --- the sweep --------------------------------------------------------------------------------------


@dataclass
class Reports:
    project: Project
    sweep: Path
    shots: Path
    profile: Path

    def page(self, name: str) -> Path:
        return self.sweep / "reports" / name


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reports]:
    """A sweep run for real on this machine, aggregated with --metric test_accuracy."""
    chromium()
    base = tmp_path_factory.mktemp("reports")
    project = make_project(base / "proj", HSM_CONFIG)
    try:
        project.write("train.py", TRAIN_PY)
        project.sweep_config(SWEEP_CONFIG)
        run = project.hsm("run", "--config", "sweeps/sweep_config.yaml", "--sources", "local:3", timeout=240)
        assert run.returncode == 1, f"expected failed tasks ({run.returncode}):\n{run.stderr}"
        sweep = Path(run.stdout.strip().splitlines()[-1])
        aggregated = project.hsm("aggregate", str(sweep), "--metric", "test_accuracy", "--mode", "max")
        assert aggregated.returncode == 0, aggregated.stderr
        assert aggregated.stdout == f"{sweep}\n"
        shots = Path(os.environ.get("HSM_SCREENSHOT_DIR") or base / "shots")
        shots.mkdir(parents=True, exist_ok=True)
        yield Reports(project, sweep, shots, base / "chromium-profile")
    finally:
        project.stop_leftovers()


def charts_of(dom: str) -> dict[str, str]:
    """The page's <svg> charts by their aria-label."""
    return {label: body for label, body in re.findall(r'<svg [^>]*aria-label="([^"]*)"[^>]*>(.*?)</svg>', dom, re.S)}


def test_the_browser_tells_console_errors(tmp_path: Path) -> None:
    """The console check catches what it should (else a silent console would prove nothing)."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>console.error('boom'); notDefined();</script>", encoding="utf-8")
    opened = open_page(page, tmp_path / "profile")
    assert any("boom" in line for line in opened.console), opened.console
    assert any("notDefined" in line for line in opened.console), opened.console


def test_the_completion_report(reports: Reports) -> None:
    page = reports.page("completion_report.html")
    opened = open_page(page, reports.profile)
    assert opened.console == []
    dom = opened.dom
    assert "Sweep " + reports.sweep.name in dom and "Best tasks by test_accuracy (highest first)" in dom
    charts = charts_of(dom)
    scatters = {k: v for k, v in charts.items() if k.startswith("test_accuracy against ")}
    assert set(scatters) == {"test_accuracy against lr (log scale)", "test_accuracy against optimizer",
                             "test_accuracy against tag"}
    for label, body in scatters.items():
        assert body.count("<circle") == 9, label  # the nine completed tasks
        assert "<title>task_" in body, label
    # The hostile parameter value is text on the page, never an element; the only script is the page's own.
    assert HOSTILE_TAG not in dom and "&lt;script&gt;alert('x')&lt;/script&gt;" in dom
    assert dom.count("<script") == 1
    table = dom[dom.index("Every task"):]
    assert table.count("<tr>") == 12 + 1
    png = reports.shots / "completion_report.png"
    assert screenshot(page, png, reports.profile) == []
    check_screenshot(png, GREEN, RED)


def test_sorting_the_task_table_by_a_header(reports: Reports, tmp_path: Path) -> None:
    """A click on a header sorts the table by that column (numbers as numbers), again reverses it."""
    text = reports.page("completion_report.html").read_text(encoding="utf-8")
    click = ("<script>var th=[].slice.call(document.querySelectorAll('table.sortable th'))"
             ".filter(function(h){return h.textContent==='test_accuracy';})[0];th.click();"
             "document.body.setAttribute('data-first',document.querySelector('table.sortable tbody tr td').textContent);"
             "th.click();document.body.setAttribute('data-again',"
             "document.querySelector('table.sortable tbody tr td').textContent);</script>")
    page = tmp_path / "clicked.html"
    page.write_text(text.replace("</body>", click + "</body>"), encoding="utf-8")
    opened = open_page(page, reports.profile)
    assert opened.console == []
    first = re.search(r'data-first="(task_\d+)"', opened.dom)
    again = re.search(r'data-again="(task_\d+)"', opened.dom)
    assert first and again, opened.dom[:2000]
    rows = [line.split(",") for line in (reports.sweep / "reports" / "metrics.csv").read_text().splitlines()[1:]]
    accuracy = {r[0]: float(r[7]) for r in rows if r[7]}  # metric.test_accuracy
    assert first.group(1) == min(accuracy, key=lambda t: (accuracy[t], t))
    assert accuracy[again.group(1)] == max(accuracy.values())


def test_the_source_utilization_report(reports: Reports) -> None:
    page = reports.page("source_utilization.html")
    opened = open_page(page, reports.profile)
    assert opened.console == []
    charts = charts_of(opened.dom)
    timeline = charts["attempts over time, per source slot"]
    bars = re.findall(r'<rect [^>]*fill="(#[0-9a-f]{6})"[^>]*><title>(task_\d+ attempt \d+, [a-z]+) on local', timeline)
    outcomes = Counter(title.split(", ")[1] for _, title in bars)
    assert outcomes == {"completed": 9, "failed": 3, "retried": 2}, outcomes
    slots = set(re.findall(r"local · slot (\d+)", timeline))
    assert slots and len(slots) <= 3  # local:3 never ran more than three at once
    assert "seconds" in charts and charts["seconds"].count("<circle") == 14  # every attempt's duration
    assert "tasks" in charts and "<polyline" in charts["tasks"]  # logs/source_utilization.log over time
    png = reports.shots / "source_utilization.png"
    assert screenshot(page, png, reports.profile) == []
    check_screenshot(png, GREEN, RED, ORANGE)


def test_the_error_analysis_report(reports: Reports) -> None:
    page = reports.page("error_analysis.html")
    opened = open_page(page, reports.profile)
    assert opened.console == []
    dom = opened.dom
    charts = charts_of(dom)
    assert "failed attempts" in charts
    categories = re.findall(r"<title>([^<:]+): (\d+) failed attempts on", dom)
    assert dict((c, int(n)) for c, n in categories) == {"CUDA out of memory": 2, "Other error": 2, "Import error": 1}
    assert "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB" in dom
    assert "ModuleNotFoundError: No module named 'torchvision'" in dom
    assert dom.count("<details") == 5 and "Reduce the batch size" in dom
    png = reports.shots / "error_analysis.png"
    assert screenshot(page, png, reports.profile) == []
    check_screenshot(png, RED, ORANGE)


def test_an_unknown_metric_is_refused_and_nothing_is_written(reports: Reports) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in (reports.sweep / "reports").iterdir()}
    result = reports.project.hsm("aggregate", str(reports.sweep), "--metric", "accuracy")
    assert result.returncode == 2
    assert "no task" in result.stderr and "test_accuracy, loss, val.acc" in result.stderr
    assert {p.name: p.stat().st_mtime_ns for p in (reports.sweep / "reports").iterdir()} == before
