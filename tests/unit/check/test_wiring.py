from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from layerkit.check.findings import Severity
from layerkit.check.wiring import wiring_findings
from layerkit.project.spec import load_project
from tests.conftest import TEMPLATE
from tests.unit.check.test_template import template

ProjectFactory = Callable[..., Path]


def errors(root: Path, *, drop_folder: str | None = None) -> list[str]:
    project = load_project(root)
    if drop_folder:  # the loader refuses this already: the check must not depend on it
        kept = tuple(x for x in project.layers if x.name != drop_folder)
        project = dataclasses.replace(project, layers=kept)
    found = wiring_findings(project)
    assert all(f.severity is Severity.ERROR for f in found)
    return [str(f) for f in found]


def test_a_consistent_project_is_wired(make_project: ProjectFactory) -> None:
    assert errors(make_project(template=TEMPLATE)) == []


def test_a_layer_folder_missing_from_the_template_is_an_error(
    make_project: ProjectFactory,
) -> None:
    root = make_project(
        {"base": ([], "six\n"), "top": (["base"], "pytz\n"), "extra": ([], "idna\n")},
        template=TEMPLATE,
    )
    (error,) = errors(root)
    assert error.startswith("template.yaml: layers/extra/ has no AWS::Serverless::LayerVersion")


def test_a_template_layer_without_a_folder_is_an_error(make_project: ProjectFactory) -> None:
    root = make_project(template=template(["base", "top"], ["base"]))
    (error,) = errors(root, drop_folder="top")
    assert "TopLayer builds layer 'top' but there is no layers/top/ folder" in error


def test_runtime_and_architecture_must_be_compatible_with_each_layer(
    make_project: ProjectFactory,
) -> None:
    root = make_project(template=template(["base", "top"], runtime="python3.12", arch="arm64"))
    found = errors(root)
    assert sum("lists CompatibleRuntimes ['python3.9']; add python3.12" in m for m in found) == 2
    assert sum("runs on arm64" in m for m in found) == 2
    assert sum("layer.toml builds the layer for runtimes ['python3.9']" in m for m in found) == 2


def test_a_layer_needs_the_layers_it_requires_attached(make_project: ProjectFactory) -> None:
    root = make_project(template=template(["base", "top"], attach=["top"]))
    (error,) = errors(root)
    assert "attaches top, which requires base" in error


def test_more_than_five_layers_and_duplicates_are_errors(make_project: ProjectFactory) -> None:
    names = [f"l{i}" for i in range(6)]
    root = make_project(
        {n: ([], "six\n") for n in names},
        template=template(names, attach=[*names, "l0"]),
    )
    found = errors(root)
    assert any("attaches 7 layers; Lambda allows 5" in m for m in found)
    assert any("attaches layer l0 twice" in m for m in found)
