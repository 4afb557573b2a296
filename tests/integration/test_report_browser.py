"""report.html drawn by a real browser: headless Chromium (Debian's package).

The page itself has no scripts. The test loads a copy with a probe script that measures what
the browser drew (bar widths, label boxes, the colour under each label) and writes it into the
DOM, which ``--dump-dom`` returns. Chromium is installed with apt-get when it is missing and
the test runs as root on Debian; elsewhere the test is skipped and says why.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from layerkit.report.data import build_report
from layerkit.report.html import render_html
from tests.unit.report.manifests import make_manifest
from tests.unit.report.test_html import timed_manifest

pytestmark = pytest.mark.integration

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",  # root in a container has no user namespace for the sandbox
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1100,7000",  # the whole page in view: elementsFromPoint sees all of it
)

PROBE = """
<script>
addEventListener("load", () => {
  const lum = (c) => {
    const m = c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number).map((v) => v / 255)
      .map((v) => (v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
    return 0.2126 * m[0] + 0.7152 * m[1] + 0.0722 * m[2];
  };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05); };
  const box = (e) => { const r = e.getBoundingClientRect();
    return {x: r.x, y: r.y, w: r.width, h: r.height}; };
  const out = {charts: {}, labels: []};
  for (const svg of document.querySelectorAll("svg.chart")) {
    const s = box(svg);
    const bars = [...svg.querySelectorAll("rect.bar, rect.tmdist")].map((r) => (
      {bytes: Number(r.dataset.bytes), seconds: Number(r.dataset.seconds), ...box(r)}));
    const texts = [...svg.querySelectorAll("text")].map((t) => ({text: t.textContent, ...box(t)}));
    out.charts[svg.id] = {box: s, bars, texts,
      outside: texts.filter((t) => t.x < s.x - 1 || t.x + t.w > s.x + s.w + 1
        || t.y < s.y - 1 || t.y + t.h > s.y + s.h + 1).map((t) => t.text)};
  }
  for (const t of document.querySelectorAll("text.inbar, text.tmlabel")) {
    const b = box(t);
    const under = document.elementsFromPoint(b.x + 2, b.y + b.h / 2)
      .find((e) => e.tagName === "rect" && getComputedStyle(e).fill.startsWith("rgb"));
    out.labels.push({text: t.textContent, ratio: under ? ratio(getComputedStyle(t).fill,
      getComputedStyle(under).fill) : null});
  }
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.append(pre);
});
</script>
"""


def _install_chromium() -> str | None:
    """Debian's chromium through apt-get, when this is Debian and we are root; else why not."""
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine (not Debian or Ubuntu)"
    if os.geteuid() != 0:
        return "apt-get needs root; run `sudo apt-get install -y chromium` once"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "chromium"]
    for command in (install, ["apt-get", "update", "-q"], install):
        proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if command is install and proc.returncode == 0:
            return None
    return f"`apt-get install -y chromium` failed: {proc.stderr.strip()[-300:]}"


@pytest.fixture(scope="module")
def chromium() -> str:
    """Path of a headless-capable Chromium; installs Debian's when it can, else skips."""
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        why = _install_chromium()
        found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
        if found is None:
            pytest.skip(f"no Chromium to render report.html: {why or 'not on PATH after install'}")
    return found


def run_browser(browser: str, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )


class _Layer:
    name = "ml"
    over_budget_reason = "scipy ships 80 MB of compiled code that cannot be shared"


class _Project:
    layers = (_Layer(),)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """report.html for two targets, a previous build, an accepted overrun, a treemap, timings."""
    old = build_report(make_manifest(ml_size=140_000_000))
    report = build_report(
        [timed_manifest(), make_manifest("python3.12-x86_64")],
        _Project(),
        packages={
            ("python3.9-x86_64", "aws"): {
                "urllib3": {"urllib3": 3_000_000, "urllib3_extra": 400_000},
                "botocore": {"botocore": 2_000_000},
            }
        },
        previous=old,
    )
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def drawn(chromium: str, page: Path) -> dict:
    """What the browser drew, measured by the probe script."""
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = run_browser(chromium, "--dump-dom", probe.as_uri()).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, "the probe did not run: " + dom[-500:]
    return json.loads(html.unescape(found.group(1)))


def test_every_chart_is_drawn_for_both_targets(drawn: dict) -> None:
    for target in ("t0", "t1"):
        for chart in ("functions", "layers", "zipped", "treemap"):
            svg = drawn["charts"][f"{target}-{chart}"]
            assert svg["box"]["w"] >= 900
            assert svg["box"]["h"] > 50
            assert svg["bars"]
            # every part of a megabyte or more is visible (a 10-byte function code is not)
            assert all(bar["w"] > 0 and bar["h"] > 0 for bar in svg["bars"] if bar["bytes"] >= 1e6)


def test_bars_are_drawn_in_proportion_to_bytes(drawn: dict) -> None:
    for name in ("t0-functions", "t0-layers", "t0-zipped"):
        per_byte = [b["w"] / b["bytes"] for b in drawn["charts"][name]["bars"] if b["bytes"] > 1e6]
        assert max(per_byte) / min(per_byte) == pytest.approx(1, abs=0.01), name


def test_step_timings_are_drawn_in_proportion_to_seconds(drawn: dict) -> None:
    bars = drawn["charts"]["t0-timings"]["bars"]
    assert len(bars) == 9  # every step of the three artifacts with timings
    per_second = [b["w"] / b["seconds"] for b in bars]
    assert max(per_second) / min(per_second) == pytest.approx(1, abs=0.01)
    texts = [t["text"] for t in drawn["charts"]["t0-timings"]["texts"]]
    assert "s" in texts
    assert "t1-timings" not in drawn["charts"]  # that target recorded no timings


def test_treemap_areas_are_in_proportion_to_bytes(drawn: dict) -> None:
    cells = [b for b in drawn["charts"]["t0-treemap"]["bars"] if b["bytes"] > 1e6]
    per_byte = [b["w"] * b["h"] / b["bytes"] for b in cells]
    assert max(per_byte) / min(per_byte) < 1.1  # the layer boxes' title bars take a little


def test_every_label_is_inside_its_chart(drawn: dict) -> None:
    for name, svg in drawn["charts"].items():
        assert svg["outside"] == [], name


def test_limit_lines_are_labelled(drawn: dict) -> None:
    texts = [t["text"] for t in drawn["charts"]["t0-functions"]["texts"]]
    assert "limit 262,144,000 bytes (250 MiB)" in texts
    assert "MB" in texts
    zipped = [t["text"] for t in drawn["charts"]["t0-zipped"]["texts"]]
    assert "52,428,800 bytes (50 MiB)" in zipped


def test_labels_on_bars_have_enough_contrast(drawn: dict) -> None:
    measured = [label for label in drawn["labels"] if label["ratio"] is not None]
    assert len(measured) >= 10
    low = [(label["text"], round(label["ratio"], 2)) for label in measured if label["ratio"] < 4.5]
    assert low == []


def test_screenshot_is_taken(chromium: str, page: Path) -> None:
    shot = page.with_name("report.png")
    run_browser(chromium, f"--screenshot={shot}", page.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a drawn page, not a blank one
