"""The checks ``validate``, ``deploy`` and the build summary share, as one :class:`CheckReport`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path

from layerkit.build.manifest import ArtifactRecord, artifact_path
from layerkit.check.findings import CheckReport
from layerkit.check.handler import handler_findings
from layerkit.check.sizes import size_findings
from layerkit.check.template import check_template
from layerkit.project.spec import Project
from layerkit.runtime.target import Target


def run(
    project: Project,
    target: Target,
    records: Mapping[str, ArtifactRecord],
    *,
    today: date,
    out_dir: Path | None = None,
    template: bool = True,
    handlers: bool = True,
) -> CheckReport:
    """Sizes and Lambda limits of the build ``records``, the template, and every Handler.

    ``records`` are the build's manifest records by path (``BuildResult.records``) for
    ``target``; ``today`` dates the runtime lifecycle warning. A function's Handler is checked
    in its built zip under ``out_dir`` when there is one, else in its source folder, with the
    target's grammar. ``template=False`` / ``handlers=False`` leave those parts out (the build
    summary needs the sizes only). Reads files; starts no interpreter.
    """
    report = CheckReport.of(size_findings(project, records))
    if template:
        report = report.merge(check_template(project, today))
    if handlers:
        zips = {}
        if out_dir is not None:
            for fn in project.functions:
                path = artifact_path("function", fn.name)
                if path in records:
                    zips[fn.name] = out_dir / path
        report = report.merge(
            CheckReport(handler_findings(project, zips, feature_version=target.python_version))
        )
    return report
