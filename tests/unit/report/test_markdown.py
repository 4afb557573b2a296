from __future__ import annotations

import json
from pathlib import Path

import pytest

from layerkit.report.__main__ import main
from layerkit.report.data import build_report
from layerkit.report.markdown import render_markdown
from tests.unit.report.manifests import make_manifest


def test_summary_has_sizes_headroom_and_what_grew() -> None:
    old = build_report(make_manifest(ml_size=150_000_000))
    text = render_markdown(build_report(make_manifest(ml_size=160_000_000), previous=old))
    assert "| predictions | core + ml | 280.0 | -17.9 | **OVER** |" in text
    assert "| ml | 160.0 | 100.0 | -60.0 | 60.0 (S3) | ml-dist | **OVER** |" in text
    assert "| aws | 6.0 | 50.0 | +44.0 | 0.000 | urllib3, botocore, boto3 | ok |" in text
    assert "| python3.9-x86_64 | layer ml | 150.0 | 160.0 | +10.0 |" in text
    assert text.index("layer ml |") < text.index("layer ml / ml-dist")


def test_first_report_says_there_is_nothing_to_compare() -> None:
    assert "No previous report to compare with." in render_markdown(build_report(make_manifest()))


def test_module_prints_the_summary_of_a_report_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(build_report(make_manifest()), sort_keys=True))
    assert main([str(path)]) == 0
    assert capsys.readouterr().out.startswith("## layerkit build sizes")
    path.write_text("{")
    assert main([str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "run `inv report` first" in err


def test_step_timings_are_a_table_per_target() -> None:
    from tests.unit.report.test_html import _Project, timed_manifest

    text = render_markdown(build_report(timed_manifest(), _Project()))  # type: ignore[arg-type]
    lines = text.splitlines()
    start = lines.index("Build time by step (seconds, each artifact's last build):")
    header = lines[start + 2]
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "artifact",
        "install",
        "slim",
        "copy",
        "imports",
        "bytecode",
        "import-check",
        "zip",
        "total",
    ]  # fmt: skip  (pipeline order, not the order the records list them in)
    ml = next(line for line in lines[start:] if line.startswith("| ml "))
    assert [c.strip() for c in ml.strip("|").split("|")] == [
        "ml", "0.2", "-", "-", "-", "-", "2.8", "3.0", "6.0",
    ]  # fmt: skip
