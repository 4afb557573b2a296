from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from layerkit.check.template import (
    LIFECYCLE_RULES,
    check_template,
    lifecycle_problem,
    lifecycle_table,
    runtime_lifecycle,
    wiring_problems,
)
from layerkit.project.spec import load_project
from tests.conftest import REPO, TEMPLATE

TABLE = {
    "python3.9": {
        "deprecated": "2025-12-15",
        "create-block": "2026-06-01",
        "update-block": "2026-07-01",
        "successor": "python3.14",
    },
    "python3.14": {"deprecated": None, "create-block": None, "update-block": None},
}


def test_lifecycle_states_follow_the_dates() -> None:
    before = runtime_lifecycle("python3.9", date(2025, 12, 14), TABLE)
    assert (before.is_deprecated, before.blocked_for_create, before.blocked_for_update) == (
        False,
        False,
        False,
    )
    between = runtime_lifecycle("python3.9", date(2026, 6, 1), TABLE)
    assert (between.is_deprecated, between.blocked_for_create, between.blocked_for_update) == (
        True,
        True,
        False,
    )
    after = runtime_lifecycle("python3.9", date(2026, 7, 1), TABLE)
    assert after.blocked_for_update
    assert after.create_blocked == date(2026, 6, 1)
    assert after.successor == "python3.14"


def test_runtimes_without_dates_or_not_in_the_table_are_live() -> None:
    for runtime in ("python3.14", "python9.99"):
        status = runtime_lifecycle(runtime, date(2030, 1, 1), TABLE)
        assert not status.is_deprecated
        assert not status.blocked_for_create
        assert not status.blocked_for_update
        assert lifecycle_problem(status, date(2030, 1, 1)) is None


def test_the_dates_come_from_cfn_lints_data() -> None:
    assert "python3.9" in lifecycle_table()
    status = runtime_lifecycle("python3.9", date(2026, 11, 24))
    assert status.deprecated is not None
    assert status.is_deprecated
    assert status.create_blocked is not None
    assert status.update_blocked is not None


def test_the_warning_names_dates_successor_and_the_way_out() -> None:
    today = date(2026, 6, 15)
    problem = lifecycle_problem(
        runtime_lifecycle("python3.9", today, TABLE), today, validated=("python3.12",)
    )
    assert problem is not None
    assert problem.severity == "warning"
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
    return [str(p) for p in check_template(load_project(root), today)]


ProjectFactory = Callable[..., Path]


def test_a_consistent_project_has_only_the_lifecycle_warning(make_project: ProjectFactory) -> None:
    found = messages(make_project(template=TEMPLATE), today=date(2027, 6, 1))
    assert len(found) == 1
    assert found[0].startswith("warning: runtime python3.9 is deprecated")
    assert not any(rule in found[0] for rule in LIFECYCLE_RULES)


def test_a_live_runtime_has_no_findings(make_project: ProjectFactory) -> None:
    root = make_project(template=TEMPLATE)
    assert messages(root, today=date(2025, 1, 1)) == []


def test_a_layer_folder_missing_from_the_template_is_an_error(
    make_project: ProjectFactory,
) -> None:
    root = make_project(
        {"base": ([], "six\n"), "top": (["base"], "pytz\n"), "extra": ([], "idna\n")},
        template=TEMPLATE,
    )
    (error,) = [m for m in messages(root) if m.startswith("error")]
    assert "layers/extra/ has no AWS::Serverless::LayerVersion" in error


def test_runtime_and_architecture_must_be_compatible_with_each_layer(
    make_project: ProjectFactory,
) -> None:
    root = make_project(template=template(["base", "top"], runtime="python3.12", arch="arm64"))
    errors = [m for m in messages(root) if m.startswith("error")]
    assert sum("lists CompatibleRuntimes ['python3.9']; add python3.12" in m for m in errors) == 2
    assert sum("runs on arm64" in m for m in errors) == 2
    assert sum("layer.toml builds the layer for runtimes ['python3.9']" in m for m in errors) == 2


def test_a_layer_needs_the_layers_it_requires_attached(make_project: ProjectFactory) -> None:
    root = make_project(template=template(["base", "top"], attach=["top"]))
    (error,) = [str(p) for p in wiring_problems(load_project(root))]
    assert "attaches top, which requires base" in error


def test_more_than_five_layers_and_duplicates_are_errors(make_project: ProjectFactory) -> None:
    names = [f"l{i}" for i in range(6)]
    root = make_project(
        {n: ([], "six\n") for n in names},
        template=template(names, attach=[*names, "l0"]),
    )
    errors = [str(p) for p in wiring_problems(load_project(root))]
    assert any("attaches 7 layers; Lambda allows 5" in m for m in errors)
    assert any("attaches layer l0 twice" in m for m in errors)


def test_cfn_lint_errors_are_reported_with_their_line(make_project: ProjectFactory) -> None:
    root = make_project(template=template(["base", "top"], extra="      Tracing: Sideways\n"))
    errors = [m for m in messages(root) if m.startswith("error")]
    assert errors
    assert all(m.startswith("error: template.yaml:") and "cfn-lint E" in m for m in errors)
    assert any("'Sideways' is not one of" in m for m in errors)


def test_the_repository_template_passes() -> None:
    found = messages(REPO, today=date(2026, 11, 24))
    assert [m.split(":")[0] for m in found] == ["warning"]
    assert "python3.9" in found[0]
