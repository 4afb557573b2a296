from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

from layerkit import check
from layerkit.build.manifest import ArtifactRecord
from layerkit.check import CheckReport, Severity
from layerkit.project.spec import load_project
from layerkit.runtime.target import Target
from tests.conftest import REPO, TEMPLATE
from tests.unit.check.test_sizes import rec

PY39 = Target("python3.9")


def records(top: int = 1) -> dict[str, ArtifactRecord]:
    out = {
        "layers/base.zip": rec("layer", "base", 1, budget=10_000_000),
        "layers/top.zip": rec("layer", "top", top, budget=10_000_000),
    }
    out["functions/fn.zip"] = rec("function", "fn", 1_000)
    return out


def test_run_gathers_sizes_template_and_handlers_into_one_report(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_project(template=TEMPLATE.replace("Handler: app.handler", "Handler: app.handlr"))
    shutil.copy2(REPO / ".cfnlintrc", root / ".cfnlintrc")
    report = check.run(load_project(root), PY39, records(top=10_000_001), today=date(2027, 6, 1))
    assert isinstance(report, CheckReport)
    assert {(f.subject, f.code, f.severity) for f in report.findings} == {
        ("layers/top.zip", "budget", Severity.ERROR),
        ("functions/fn.zip", "handler-callable", Severity.ERROR),
        ("template.yaml", "lifecycle", Severity.WARNING),
    }
    assert [f.severity for f in report.findings] == [
        Severity.ERROR,
        Severity.ERROR,
        Severity.WARNING,
    ]
    assert not report.ok


def test_the_build_summary_reads_sizes_only_and_handlers_come_from_the_built_zip(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = load_project(make_project())
    sizes_only = check.run(
        project, PY39, records(), today=date(2027, 6, 1), template=False, handlers=False
    )
    assert sizes_only == CheckReport()
    out = tmp_path / "dist"
    (out / "functions").mkdir(parents=True)
    with zipfile.ZipFile(out / "functions" / "fn.zip", "w") as zf:
        zf.writestr("app.py", "def other(event, context): ...\n")
    report = check.run(
        project, PY39, records(), today=date(2027, 6, 1), out_dir=out, template=False
    )
    (finding,) = report.errors
    assert finding.subject == "functions/fn.zip"
    assert f"checked in {out / 'functions' / 'fn.zip'}" in finding.message
    assert report.worst("functions/fn.zip") is Severity.ERROR
