"""`optimize` for real: python3.9, wheels from PyPI, the sandbox; prune, then catch a code change.

A small project: layer `base` carries python-dateutil (and six), `top` carries pytz; the function
uses only `dateutil.relativedelta`, so `dateutil/parser` and `dateutil/tz` are subpackages no
function loads, while `dateutil/zoneinfo` (time-zone data) must stay.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from layerkit.build import lock as L
from layerkit.build import pipeline as B
from layerkit.optimize.apply import format_report, optimize, verify_traces
from layerkit.project.spec import load_project
from layerkit.runtime.target import Target
from tests.conftest import write_project

pytestmark = pytest.mark.integration
T = Target("python3.9")

APP = """\
import datetime

from dateutil.relativedelta import relativedelta


def handler(event, context):
    start = datetime.date.fromisoformat(event["date"])
    return {"next": (start + relativedelta(months=1)).isoformat()}
"""

NEEDS_PARSER = """\
import datetime
import importlib

from dateutil.relativedelta import relativedelta


def handler(event, context):
    parser = importlib.import_module("dateutil.parser")  # invisible to a static scan
    start = parser.isoparse(event["date"]).date()
    return {"next": (start + relativedelta(months=1)).isoformat()}
"""


@pytest.fixture(scope="module")
def project_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_project(
        tmp_path_factory.mktemp("optimize") / "proj",
        {"base": ([], "python-dateutil==2.9.0.post0\n"), "top": (["base"], "pytz==2025.2\n")},
        functions={"fn": APP},
    )
    events = root / "functions" / "fn" / "events"
    events.mkdir()
    (events / "basic.json").write_text(json.dumps({"date": "2024-01-31"}))
    project = load_project(root)
    L.write_lock(project, L.resolve(project, T))
    B.build(load_project(root), T)
    return root


def test_apply_prunes_unloaded_subpackages_and_the_function_still_answers(
    project_root: Path,
) -> None:
    report = optimize(load_project(project_root), T, apply=True, tests=None, today="2026-12-02")
    base = next(a for a in report.layers if a.layer == "base")
    verdicts = {c.pattern: c.prunable for c in base.candidates}
    assert verdicts["dateutil/parser"]
    assert verdicts["dateutil/tz"]
    assert verdicts["dateutil/zoneinfo"] is False  # data: depends on the input
    assert [(p.layer, set(p.patterns)) for p in report.applied] == [
        ("base", {"dateutil/parser", "dateutil/tz"})
    ]
    text = (project_root / "layers" / "base" / "layer.toml").read_text()
    assert "2026-12-02" in text
    assert "dateutil/parser" in text
    project = load_project(project_root)
    with zipfile.ZipFile(B.output_dir(project, T) / "layers" / "base.zip") as zf:
        names = zf.namelist()
    assert not any(n.startswith("python/dateutil/parser/") for n in names)
    assert "python/dateutil/relativedelta.py" in names
    assert any(n.startswith("python/python_dateutil-") and n.endswith("/METADATA") for n in names)
    assert report.function_bytes_after["fn"] < report.function_bytes["fn"]
    assert "pruned from base" in format_report(report)
    assert verify_traces(project, T) == ()
    written = json.loads((B.output_dir(project, T) / "optimize.json").read_text())
    assert written["applied"][0]["layer"] == "base"


def test_a_code_change_that_needs_a_pruned_module_is_caught_before_deploy(
    project_root: Path,
) -> None:
    app = project_root / "functions" / "fn" / "app.py"
    app.write_text(NEEDS_PARSER)
    project = load_project(project_root)
    B.build(project, T)
    problems = verify_traces(project, T)
    assert any("dateutil.parser" in p and "'dateutil/parser'" in p for p in problems), problems
    assert any('keep = ["dateutil/parser"]' in p for p in problems)
