from __future__ import annotations

import re
from xml.etree import ElementTree

import pytest

from layerkit.report.data import build_report
from layerkit.report.html import (
    _PALETTE,
    contrast,
    el,
    esc,
    palette_for,
    render_html,
    squarify,
    text_color,
)
from tests.unit.report.manifests import make_manifest

SVG = "{http://www.w3.org/2000/svg}"


def charts(page: str) -> dict[str, ElementTree.Element]:
    """Every SVG chart of the page, parsed as XML (so a malformed chart fails here)."""
    return {
        m.group(1): ElementTree.fromstring(m.group(0))
        for m in re.finditer(r'<svg [^>]*id="([^"]+)".*?</svg>', page, re.S)
    }


class _Layer:
    name = "ml"
    over_budget_reason = "scipy ships 80 MB of compiled code"


class _Project:
    layers = (_Layer(),)


def page(**kwargs: object) -> str:
    return render_html(build_report(make_manifest(), _Project(), **kwargs))  # type: ignore[arg-type]


def test_builder_escapes_text_and_attributes() -> None:
    assert el("text", esc("a<b"), class_="x", data_bytes=3, skip=None) == (
        '<text class="x" data-bytes="3">a&lt;b</text>'
    )
    assert el("rect", x=1.25, title='"q"') == '<rect x="1.2" title="&quot;q&quot;"></rect>'


def test_every_label_on_a_fill_reads_well() -> None:
    for fill in _PALETTE:
        assert contrast(fill, text_color(fill)) >= 4.5, fill


def test_squarify_fills_the_box_with_areas_in_proportion() -> None:
    values = [60.0, 25.0, 10.0, 5.0]
    rects = squarify(values, 0, 0, 400, 100)
    areas = [w * h for _, _, w, h in rects]
    assert sum(areas) == pytest.approx(40_000)
    for value, area in zip(values, areas, strict=True):
        assert area == pytest.approx(value / 100 * 40_000)
    for x, y, w, h in rects:
        assert 0 <= x <= x + w <= 400.001
        assert 0 <= y <= y + h <= 100.001


def test_function_chart_has_an_axis_in_mb_and_the_labelled_limit_line() -> None:
    svg = charts(page())["t0-functions"]
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert "limit 262,144,000 bytes (250 MiB)" in texts
    assert {"0", "50", "100", "150", "200", "250", "MB"} <= set(texts)
    assert any(line.get("class") == "limit" for line in svg.iter(f"{SVG}line"))
    # the size sits under the function's name, never next to the limit line
    assert "270.0 MB, 7.9 MB over" in texts


def test_bars_are_in_proportion_to_bytes() -> None:
    svg = charts(page())["t0-layers"]
    bars = [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert bars
    per_byte = {
        round(float(r.get("width")) / int(r.get("data-bytes")), 9)
        for r in bars
        if int(r.get("data-bytes"))
    }
    assert max(per_byte) - min(per_byte) < 1e-6


def test_over_budget_part_is_hatched_and_its_reason_shown() -> None:
    html = page()
    svg = charts(html)["t0-layers"]
    over = [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "overpart"]
    assert len(over) == 1  # ml only
    assert "ml is 50.0 MB over its budget" in html
    assert "accepted because scipy ships 80 MB of compiled code" in html


def test_an_unaccepted_overrun_says_validation_fails() -> None:
    html = render_html(build_report(make_manifest()))
    assert "no reason is given in its layer.toml (`over-budget-reason`)" in html


def test_zipped_sizes_against_the_direct_upload_limit() -> None:
    svg = charts(page())["t0-zipped"]
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert "52,428,800 bytes (50 MiB)" in texts
    assert "60.0 MB, via S3" in texts


def test_treemap_nests_layers_distributions_and_packages() -> None:
    report = build_report(
        make_manifest(),
        packages={
            ("python3.9-x86_64", "aws"): {
                "urllib3": {"urllib3": 3_000_000, "urllib3_extra": 400_000}
            }
        },
    )
    svg = charts(render_html(report))["t0-treemap"]
    classes = [r.get("class") for r in svg.iter(f"{SVG}rect")]
    assert classes.count("tmlayer") == 3
    assert classes.count("tmdist") == 6  # four in aws, one each in core and ml
    assert classes.count("tmpkg") == 2
    titles = [t.text for t in svg.iter(f"{SVG}title")]
    assert "aws / urllib3 / urllib3_extra: 0.4 MB" in titles


def test_colours_are_shared_across_a_targets_charts() -> None:
    (entry,) = build_report(make_manifest())["targets"]
    colors = palette_for(entry)
    assert len({colors[n] for n in ("(function code)", "aws", "core", "ml", "urllib3")}) == 5


def test_header_has_date_commit_and_lock_hashes() -> None:
    from layerkit.report.data import BuildInfo

    html = page(
        info=BuildInfo(
            date="2026-12-02 02:00 UTC",
            commit="246fbdec1d9e",
            locks={"python3.9-x86_64": "5c4cd2345db1" + "0" * 52},
        )
    )
    assert "2026-12-02 02:00 UTC" in html
    assert "246fbdec1d9e" in html
    assert "python3.9-x86_64 5c4cd2345db1" in html


def test_what_changed_lists_growth_first() -> None:
    old = build_report(make_manifest(ml_size=150_000_000))
    new = build_report(make_manifest(ml_size=160_000_000), previous=old)
    html = render_html(new)
    section = html[html.index("What changed") : html.index("python3.9-x86_64</h2>")]
    assert section.index("layer ml") < section.index("layer ml / ml-dist")
    assert ">+10.0<" in section


def timed_manifest() -> dict[str, object]:
    manifest = make_manifest()
    steps = {
        "layers/core.zip": [["install", 0.5], ["slim", 1.0], ["bytecode", 2.0], ["zip", 1.5]],
        "layers/ml.zip": [["install", 0.25], ["zip", 3.0], ["import-check", 2.75]],
        "functions/predictions.zip": [["copy", 0.125], ["imports", 0.5]],
    }
    for path, timings in steps.items():
        manifest["artifacts"][path]["timings"] = timings  # type: ignore[index]
    return manifest


def test_step_timings_are_drawn_in_proportion_with_a_seconds_axis() -> None:
    html = render_html(build_report(timed_manifest(), _Project()))  # type: ignore[arg-type]
    svg = charts(html)["t0-timings"]
    bars = [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert len(bars) == 4 + 3 + 2  # one segment per step of each artifact with timings
    per_second = [float(r.get("width")) / float(r.get("data-seconds")) for r in bars]
    assert max(per_second) / min(per_second) < 1.01  # in proportion (widths: 0.1 px steps)
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert "s" in texts  # the axis is in seconds
    assert "MB" not in texts
    assert "layer · 6.0 s" in texts  # ml: 0.25 + 3.0 + 2.75
    tips = [t.text for t in svg.iter(f"{SVG}title")]
    assert "import-check: 2.8 s" in tips
    # the table has every step as a column, "-" where an artifact has no such step
    table = html[html.index("Build time by step") :]
    assert "<th class=n>import-check</th>" in table or ">import-check<" in table
    assert "<b>5.00</b>" in table  # core's total


def test_no_timings_no_section() -> None:
    assert "Build time by step" not in page()
