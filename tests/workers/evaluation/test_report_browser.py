"""The HTML safety report in a real browser: headless Chromium (Debian's `chromium`, which `make browser-tools`
installs) lays the report out and paints it. String checks (test_report.py) cannot see an SVG that parses to
nothing, collapses to zero size, is hidden or never paints; this test measures every plot in the laid-out page and
then finds the bars' and lines' colours in a screenshot of the same layout."""

import json
import re
import shutil
import struct
import subprocess
import zlib
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from tests.workers.evaluation.test_report import blocked_outcome
from workers.evaluation.report import BASE_COLOUR, CAND_COLOUR, render_html

WIDTH = 1000  # one viewport width for the measuring run and the screenshot, so both lay the page out alike
LEGEND_BOTTOM = 40  # every plot draws its title and legend above this y; bars and lines are below it
LINE_CHART = "ASR against prefill length"

# Loads the report unchanged in an iframe (same directory; file:// needs --allow-file-access-from-files to reach
# into it) and writes what the browser laid out into #result, which --dump-dom prints.
MEASURE = """<!DOCTYPE html><html><head><meta charset="utf-8"><script>
function box(el) {
  const r = el.getBoundingClientRect();
  return {x: r.left, y: r.top, width: r.width, height: r.height};
}
function measure(frame) {
  let out;
  try {
    out = [...frame.contentDocument.querySelectorAll("svg")].map(svg => ({
      label: svg.getAttribute("aria-label"), box: box(svg),
      visible: getComputedStyle(svg).visibility === "visible" && getComputedStyle(svg).opacity === "1",
      bars: [...svg.querySelectorAll("rect")].filter(r => r.querySelector("title")).map(r => ({
        title: r.querySelector("title").textContent, fill: r.getAttribute("fill"), box: box(r)})),
      lines: [...svg.querySelectorAll("polyline")].map(box), points: svg.querySelectorAll("circle").length}));
  } catch (e) { out = {error: String(e)}; }
  document.getElementById("result").textContent = JSON.stringify(out);
}
</script></head><body style="margin:0">
<pre id="result">not measured</pre>
<iframe src="report.html" onload="measure(this)" style="border:0;width:%dpx;height:20000px"></iframe>
</body></html>
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium not found: `make browser-tools` (part of `make test`) installs Debian's chromium package")
    return path


def run_chromium(chromium: str, profile: Path, *args: str) -> str:
    """Headless, as root (--no-sandbox), at scale 1, with a throwaway profile; returns what --dump-dom prints."""
    cmd = [
        chromium,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
        *args,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def png_rgb(data: bytes, columns: int, rows: int) -> list[bytes]:
    """RGB rows of an 8-bit, non-interlaced RGB(A) PNG (what Chromium writes), only the top-left `columns` x
    `rows`: PNG filters look left and up only, so the rest can be skipped, and pure Python stays fast enough."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        chunks[kind] = chunks.get(kind, b"") + data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, (depth, colour_type, interlace)
    bpp = 3 if colour_type == 2 else 4
    raw, stride, n = zlib.decompress(chunks[b"IDAT"]), width * bpp + 1, min(columns, width) * bpp
    prev, out = [0] * n, []
    for y in range(min(rows, height)):
        kind, line = raw[y * stride], list(raw[y * stride + 1 : y * stride + 1 + n])
        if kind == 2:
            line = [(a + b) & 255 for a, b in zip(line, prev, strict=True)]
        elif kind in (1, 3, 4):
            for i in range(n):
                left = line[i - bpp] if i >= bpp else 0
                if kind == 1:
                    line[i] = (line[i] + left) & 255
                elif kind == 3:
                    line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
                else:
                    up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
                    pa, pb, pc = abs(up - corner), abs(left - corner), abs(left + up - 2 * corner)
                    line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        out.append(bytes(line) if bpp == 3 else bytes(v for j, v in enumerate(line) if j % 4 != 3))
        prev = line
    return out


def painted(pixels: list[bytes], box: dict[str, float], colour: str) -> int:
    """Pixels of exactly `colour` inside `box` (page coordinates); anti-aliased edges do not count."""
    target = bytes.fromhex(colour.lstrip("#"))
    x0, x1 = int(box["x"]), int(box["x"] + box["width"])
    return sum(row[3 * x0 : 3 * x1].count(target) for row in pixels[int(box["y"]) : int(box["y"] + box["height"])])


def expected_plots(document: dict[str, Any]) -> dict[str, int | None]:
    """Each plot's label prefix and the rows of bars it promises (None: the line chart), from the gate's document,
    the same one render_html reads: one row per category, per decoding setting, per utility figure."""
    suites = document["suites"]
    direct = next(s for s in suites if s["kind"] == "direct")
    return {
        "ASR per category": len(direct["categories"]),
        LINE_CHART: None,
        "Decoding sweep": sum(s["kind"] in ("direct", "sweep") for s in suites),
        "Utility": 2 + any(s["kind"] == "over_refusal" for s in suites),
        "Libra balance": 2,
    }


def check_drawn(chromium: str, html: str, document: dict[str, Any], tmp_path: Path) -> None:
    """Measure the laid-out plots, then find their colours in a screenshot of the same layout."""
    (tmp_path / "report.html").write_text(html)
    (tmp_path / "measure.html").write_text(MEASURE % WIDTH)
    dom = run_chromium(
        chromium,
        tmp_path / "profile",
        "--allow-file-access-from-files",
        "--virtual-time-budget=5000",
        f"--window-size={WIDTH},800",
        "--dump-dom",
        (tmp_path / "measure.html").as_uri(),
    )
    found = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    plots = json.loads(unescape(found.group(1)))
    assert "error" not in plots, plots

    expected = expected_plots(document)
    labels = [p["label"] or "" for p in plots]
    assert sorted(next((k for k in expected if lb.startswith(k)), lb) for lb in labels) == sorted(expected), labels
    prefill = sum(s["kind"] == "prefill" for s in document["suites"])
    for plot, label in zip(plots, labels, strict=True):
        rows = next(n for k, n in expected.items() if label.startswith(k))
        assert plot["visible"] and plot["box"]["width"] > 100 and plot["box"]["height"] > LEGEND_BOTTOM, plot
        if rows is None:  # base and candidate lines, each through 0 tokens and every prefill suite
            assert len(plot["lines"]) == 2 and plot["points"] == 2 * (1 + prefill), plot
            assert all(line["width"] > 0 for line in plot["lines"]), plot
            continue
        bars = plot["bars"]
        assert len(bars) == 2 * rows, (label, len(bars), rows)
        assert all(bar["box"]["height"] > 0 for bar in bars) and any(bar["box"]["width"] > 0 for bar in bars), plot
        # each bar's length is its value (as its tooltip prints it, to 0.1%) on one scale
        values = [
            (float(m.group(1)), bar["box"]["width"]) for bar in bars if (m := re.search(r"([\d.]+)%$", bar["title"]))
        ]
        top, top_width = max(values)
        assert top > 0 and all(abs(width - value * top_width / top) <= 0.5 for value, width in values), (label, values)

    bottom = max(int(p["box"]["y"] + p["box"]["height"]) + 1 for p in plots)
    right = max(int(p["box"]["x"] + p["box"]["width"]) + 1 for p in plots)
    shot = tmp_path / "report.png"
    run_chromium(
        chromium,
        tmp_path / "profile",
        f"--window-size={WIDTH},{bottom + 20}",
        f"--screenshot={shot}",
        (tmp_path / "report.html").as_uri(),
    )
    pixels = png_rgb(shot.read_bytes(), right, bottom)
    for plot, label in zip(plots, labels, strict=True):
        area = {**plot["box"], "y": plot["box"]["y"] + LEGEND_BOTTOM, "height": plot["box"]["height"] - LEGEND_BOTTOM}
        for colour in (BASE_COLOUR, CAND_COLOUR):
            drawn = painted(pixels, area, colour)
            if label.startswith(LINE_CHART):
                assert drawn > 50, (label, colour, drawn)
                continue
            # the bars' whole-pixel interiors at least: their fractional edges blend with the background
            bars = [b["box"] for b in plot["bars"] if b["fill"] == colour]
            assert drawn >= sum(max(0, int(b["width"]) - 1) * max(0, int(b["height"]) - 1) for b in bars), (
                label,
                colour,
                drawn,
            )
            assert drawn > 0 or all(b["width"] == 0 for b in bars), (label, colour)


def test_every_plot_is_laid_out_and_painted(chromium: str, tmp_path: Path) -> None:
    document = {**blocked_outcome().document, "outcome": "blocked"}
    check_drawn(chromium, render_html(document), document, tmp_path)
