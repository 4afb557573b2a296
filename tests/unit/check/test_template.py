from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from layerkit.check.findings import Severity
from layerkit.check.template import (
    LIFECYCLE_RULES,
    cfn_lint,
    check_template,
    config_file,
    lifecycle_finding,
)
from layerkit.errors import CheckError
from layerkit.project.spec import load_project
from layerkit.runtime.lifecycle import runtime_lifecycle
from tests.conftest import REPO, TEMPLATE
from tests.unit.runtime.test_lifecycle import TABLE


def test_a_live_runtime_needs_no_warning() -> None:
    for runtime in ("python3.14", "python9.99"):
        status = runtime_lifecycle(runtime, date(2030, 1, 1), TABLE)
        assert lifecycle_finding(status, date(2030, 1, 1)) is None


def test_the_warning_names_dates_successor_and_the_way_out() -> None:
    today = date(2026, 6, 15)
    problem = lifecycle_finding(
        runtime_lifecycle("python3.9", today, TABLE), today, validated=("python3.12",)
    )
    assert problem is not None
    assert (problem.severity, problem.code) == (Severity.WARNING, "lifecycle")
    text = problem.message
    assert "deprecated since 2025-12-15" in text
    assert "has blocked creating functions on it since 2026-06-01" in text
    assert "blocks updating them from 2026-07-01" in text
    assert "Globals.Function" in text
    assert "python3.12 is built and validated too" in text
    assert "python3.14" in text


LAYER_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: {runtime}
    Architectures: [{arch}]
Resources:
{layers}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: dist/functions/fn.zip
      Handler: app.handler
      Timeout: {timeout}
{extra}      Layers: [{refs}]
"""

LAYER = """\
  {id}:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: dist/layers/{name}.zip
      CompatibleRuntimes: [python3.9]
      CompatibleArchitectures: [x86_64]
"""


def template(
    names: list[str],
    attach: list[str] | None = None,
    runtime: str = "python3.9",
    arch: str = "x86_64",
    timeout: int = 30,
    extra: str = "",
) -> str:
    ids = {n: n.title().replace("-", "") + "Layer" for n in names}
    return LAYER_TEMPLATE.format(
        runtime=runtime,
        arch=arch,
        timeout=timeout,
        extra=extra,
        layers="".join(LAYER.format(id=ids[n], name=n) for n in names),
        refs=", ".join(f"!Ref {ids[n]}" for n in (names if attach is None else attach)),
    )


def messages(root: Path, today: date = date(2026, 1, 1)) -> list[str]:
    return [f"{f.severity}: {f}" for f in check_template(load_project(root), today).findings]


def with_repo_config(root: Path) -> Path:
    """The project ``root`` with this repository's .cfnlintrc."""
    shutil.copy2(REPO / ".cfnlintrc", root / ".cfnlintrc")
    return root


ProjectFactory = Callable[..., Path]


def test_a_consistent_project_has_only_the_lifecycle_warning(make_project: ProjectFactory) -> None:
    found = messages(with_repo_config(make_project(template=TEMPLATE)), today=date(2027, 6, 1))
    assert len(found) == 1
    assert found[0].startswith("warning: template.yaml: runtime python3.9 is deprecated")
    assert not any(rule in found[0] for rule in LIFECYCLE_RULES)


def test_a_live_runtime_has_no_findings(make_project: ProjectFactory) -> None:
    root = with_repo_config(make_project(template=TEMPLATE))
    assert messages(root, today=date(2025, 1, 1)) == []


def test_the_project_config_is_found_under_each_of_cfn_lints_names(
    make_project: ProjectFactory,
) -> None:
    root = make_project(template=TEMPLATE)
    assert config_file(root) == root / ".cfnlintrc"  # missing: cfn-lint's defaults
    (root / ".cfnlintrc.yml").write_text("ignore_checks: [W2531, E2531, E2533]\n")
    assert config_file(root) == root / ".cfnlintrc.yml"
    assert cfn_lint(root / "template.yaml", config_file(root)) == ()


def test_a_broken_config_is_one_paragraph_naming_the_file(make_project: ProjectFactory) -> None:
    root = make_project(template=TEMPLATE)
    (root / ".cfnlintrc").write_text("ignore_check: [W2531]\n")  # a key cfn-lint does not know
    with pytest.raises(CheckError, match=r"\.cfnlintrc: not a valid cfn-lint configuration"):
        check_template(load_project(root), date(2026, 1, 1))


def test_cfn_lint_errors_are_reported_with_their_line(make_project: ProjectFactory) -> None:
    root = make_project(template=template(["base", "top"], extra="      Tracing: Sideways\n"))
    errors = [m for m in messages(with_repo_config(root)) if m.startswith("error")]
    assert errors
    assert all(re.match(r"error: template\.yaml:\d+: cfn-lint E\d{4}: ", m) for m in errors)
    assert any("'Sideways' is not one of" in m for m in errors)


def test_the_repository_template_passes() -> None:
    found = messages(REPO, today=date(2026, 11, 24))
    assert [m.split(":")[0] for m in found] == ["warning"]
    assert "python3.9" in found[0]


# ---------------------------------------------------------------- one template truth


def cfn_lint_cli(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, set[str]]:
    """What `cfn-lint template.yaml` run in ``folder`` says: its exit code and rule ids.

    cfn-lint's own command-line entry point, in this process (no interpreter starts), finding
    its configuration the way the command does (the working folder; an empty home).
    """
    from cfnlint.runner import main

    monkeypatch.chdir(folder)
    monkeypatch.setenv("HOME", str(folder / "home"))
    monkeypatch.setattr(sys, "argv", ["cfn-lint", "template.yaml"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main()
    out = capsys.readouterr().out
    return int(exited.value.code or 0), set(re.findall(r"^([EWI]\d{4}) ", out, re.MULTILINE))


def layerkit_rules(root: Path) -> set[str]:
    found = check_template(load_project(root), date(2026, 11, 24)).findings
    return {f.code for f in found if f.code and re.fullmatch(r"[EWI]\d{4}", f.code)}


def test_cfn_lint_and_layerkit_agree_on_the_repository_template(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy2(REPO / ".cfnlintrc", repo_copy / ".cfnlintrc")
    code, rules = cfn_lint_cli(repo_copy, monkeypatch, capsys)
    assert (code, rules) == (0, set())  # `cfn-lint template.yaml` exits 0 here
    assert layerkit_rules(repo_copy) == set()


def test_cfn_lint_and_layerkit_flag_the_same_rule_on_a_broken_copy(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy2(REPO / ".cfnlintrc", repo_copy / ".cfnlintrc")
    path = repo_copy / "template.yaml"
    text = path.read_text()
    path.write_text(
        text.replace("    Timeout: 60\n", "    Timeout: 60\n    Tracing: Sideways\n", 1)
    )
    code, rules = cfn_lint_cli(repo_copy, monkeypatch, capsys)
    assert code & 2  # cfn-lint's exit bit for an error
    assert rules
    assert layerkit_rules(repo_copy) == rules


def test_without_the_config_both_flag_cfn_lints_lifecycle_rule(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rules = cfn_lint_cli(repo_copy, monkeypatch, capsys)
    assert code != 0
    assert rules & set(LIFECYCLE_RULES)
    assert layerkit_rules(repo_copy) == rules


def test_validate_reports_per_stage_what_the_direct_deploy_would_refuse(
    make_project: Callable[..., Path],
) -> None:
    from layerkit.check.template import stage_findings
    from layerkit.project.spec import load_project
    from tests.conftest import TEMPLATE

    template = TEMPLATE.replace(
        "Resources:",
        "Parameters:\n  Stage: {Type: String, Default: dev, AllowedValues: [dev, local, prod]}\n"
        "Resources:",
    ).replace(
        "      Handler: app.handler\n",
        "      Handler: app.handler\n      Environment:\n        Variables:\n"
        "          STAGE: !Ref Stage\n",
    )
    root = make_project(template=template)
    project = load_project(root)
    assert stage_findings(project) == ()  # `STAGE: !Ref Stage` resolves on the local stage
    (root / "stages.toml").write_text(
        '[stages.qa]\nbucket = "b"\nalias = "live"\nrole = "arn:aws:iam::111122223333:role/r"\n'
        '[stages.qa.parameters]\nStage = "qa"\n'
        '[stages.prod]\nbucket = "b"\nalias = "live"\nrole = "arn:aws:iam::111122223333:role/r"\n'
    )
    (found,) = stage_findings(project)
    assert found.severity is Severity.ERROR
    assert found.message.startswith("stage qa: stages.toml [stages.qa.parameters], stage 'qa':")
    assert "AllowedValues do not include (dev, local, prod)" in found.message
    # a value from the command line is checked the same way, on every stage
    assert len(stage_findings(project, {"Stage": "nope"})) == 2
    # a resource Condition the template does not define: the template is named once
    (root / "template.yaml").write_text(
        template.replace("  Fn:\n    Type: AWS::Serverless::Function\n",
                         "  Fn:\n    Type: AWS::Serverless::Function\n    Condition: IsProd\n")
    )  # fmt: skip
    messages = [f.message for f in stage_findings(load_project(root))]
    assert any(
        m.startswith("stage prod: Fn Condition: condition 'IsProd' is not defined")
        for m in messages
    ), messages
    assert not any("template.yaml" in m for m in messages)  # the finding's location says it
