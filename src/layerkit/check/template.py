"""The template check: cfn-lint with the project's own configuration, wiring, runtime lifecycle.

- cfn-lint runs offline on template.yaml (it applies the SAM transform itself) with the
  project's ``.cfnlintrc`` (or ``.cfnlintrc.yaml``/``.yml``) at its root: the rules it ignores,
  includes or configures there are exactly the rules layerkit applies, so ``cfn-lint
  template.yaml`` in the project folder and ``validate`` agree about the same file. A project
  without one gets cfn-lint's defaults (layerkit does not read a ``~/.cfnlintrc``: a check of
  the project must not depend on who runs it);
- the wiring of layers and functions (:mod:`layerkit.check.wiring`);
- the values the direct deploy resolves for each stage (:func:`stage_findings`, run by
  ``validate``): names, Environment, parameter values;
- the runtime lifecycle (:mod:`layerkit.runtime.lifecycle`, cfn-lint's maintained dates): a
  deprecated runtime, or one AWS blocks creating or updating, is a warning naming the dates and
  the way out. This repository's ``.cfnlintrc`` ignores cfn-lint's own lifecycle rules
  (:data:`LIFECYCLE_RULES`) so that it is said once, in layerkit's words; the deploy step
  refuses a blocked runtime on AWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path

from layerkit.check.findings import CheckReport, Finding, Severity
from layerkit.check.wiring import wiring_findings
from layerkit.errors import CheckError, SpecError
from layerkit.project.spec import TEMPLATE_FILE, Project
from layerkit.runtime.lifecycle import RuntimeStatus, deprecation_notice, runtime_lifecycle

#: cfn-lint's rules about the runtime lifecycle, which layerkit's lifecycle warning replaces
#: when the project's .cfnlintrc ignores them (this repository's does).
LIFECYCLE_RULES = ("W2531", "E2531", "E2533")
#: The file names cfn-lint reads its project configuration from, in its order.
CONFIG_FILES = (".cfnlintrc", ".cfnlintrc.yaml", ".cfnlintrc.yml")
_SEVERITIES = {
    "error": Severity.ERROR,
    "warning": Severity.WARNING,
    "informational": Severity.INFO,
}


def config_file(root: Path) -> Path:
    """The project's cfn-lint configuration file (the first of :data:`CONFIG_FILES` that exists).

    When none exists the path of ``.cfnlintrc`` is returned: cfn-lint reads a missing file as an
    empty configuration, its defaults.
    """
    for name in CONFIG_FILES:
        if (root / name).is_file():
            return root / name
    return root / CONFIG_FILES[0]


def cfn_lint(path: Path, config: Path) -> tuple[Finding, ...]:
    """cfn-lint's findings for the template at ``path`` under the configuration file ``config``."""
    from cfnlint.config import ConfigMixIn
    from cfnlint.exceptions import ConfigFileError
    from cfnlint.runner import Runner

    try:
        settings = ConfigMixIn(["--template", str(path), "--config-file", str(config)])
    except ConfigFileError as exc:
        raise CheckError(
            f"{config}: not a valid cfn-lint configuration: {exc}. Fix it (cfn-lint documents "
            "its keys: ignore_checks, include_checks, configure_rules, regions ...) or remove it."
        ) from None
    return tuple(
        Finding(
            _SEVERITIES.get(match.rule.severity, Severity.ERROR),
            path.name,
            f"cfn-lint {match.rule.id}: {match.message}",
            code=match.rule.id,
            path=path.name,
            line=match.linenumber,
        )
        for match in Runner(settings).run()
    )


def lifecycle_finding(
    status: RuntimeStatus, today: date, validated: tuple[str, ...] = ()
) -> Finding | None:
    """A warning for a deprecated or (soon) blocked runtime: :func:`deprecation_notice`'s words.

    Nothing for a runtime with no deprecation date yet, or one still ahead of it.
    """
    if not status.is_deprecated and not status.blocked_for_create:
        return None
    notice = deprecation_notice(
        status.runtime, status, today, status.source, validated=validated, template=TEMPLATE_FILE
    )
    if notice is None:  # pragma: no cover - the condition above is stricter
        return None
    return Finding(Severity.WARNING, TEMPLATE_FILE, notice, code="lifecycle", path=TEMPLATE_FILE)


def runtime_findings(project: Project, today: date) -> tuple[Finding, ...]:
    """Lifecycle warnings for every runtime the template's functions use."""
    built = sorted({r for layer in project.layers for r in layer.runtimes})
    found = []
    for runtime in sorted({fn.target.runtime for fn in project.functions}):
        others = tuple(
            r for r in built if r != runtime and not runtime_lifecycle(r, today).is_deprecated
        )
        finding = lifecycle_finding(runtime_lifecycle(runtime, today), today, others)
        if finding is not None:
            found.append(finding)
    return tuple(found)


#: The region names resolve with on a stage that names none (only whether they resolve matters).
PLACEHOLDER_REGION = "us-east-1"


def stage_findings(
    project: Project, overrides: Mapping[str, str] | None = None
) -> tuple[Finding, ...]:
    """An error for each stage whose names or Environment the direct deploy could not resolve.

    Every stage of the stages file is checked (the built-in ``local`` stage without one), with
    its parameter values: what ``deploy --stage=S`` would refuse, ``validate`` reports.
    """
    from layerkit.project.parameters import for_stage
    from layerkit.project.stages import DEFAULT_LOCAL_STAGE, load_stages

    if project.stages_file.exists():
        stages = tuple(load_stages(project.root, project.config.stages_file).values())
    else:
        stages = (DEFAULT_LOCAL_STAGE,)
    found = []
    for stage in stages:
        try:
            for_stage(project, stage, region=PLACEHOLDER_REGION, overrides=overrides)
        except SpecError as exc:
            # the finding is located in the template already: its message need not repeat it
            reason = str(exc).removeprefix(f"{TEMPLATE_FILE}: ")
            found.append(
                Finding(
                    Severity.ERROR,
                    TEMPLATE_FILE,
                    f"stage {stage.name}: {reason}",
                    code="stage-values",
                    path=TEMPLATE_FILE,
                )
            )
    return tuple(found)


def check_template(project: Project, today: date) -> CheckReport:
    """Every template finding: cfn-lint (the project's configuration), wiring, lifecycle."""
    return CheckReport.of(
        cfn_lint(project.template.path, config_file(project.root)),
        wiring_findings(project),
        runtime_findings(project, today),
    )
