from collections.abc import Callable
from pathlib import Path

import pytest

from layerkit.errors import SpecError
from layerkit.spec import load_project, parse_size


def test_loads_layers_in_requires_order(make_project: Callable[..., Path]) -> None:
    project = load_project(make_project({"top": (["base"], "pytz\n"), "base": ([], "six\n")}))
    assert [x.name for x in project.layers] == ["base", "top"]
    assert project.required_closure("top") == ("base",)
    assert project.dependents("base") == ("top",)
    assert project.layer("base").budget == 10_000_000
    assert project.function("Fn").layers == ("base", "top")


def test_unknown_required_layer_is_named(make_project: Callable[..., Path]) -> None:
    root = make_project({"base": ([], ""), "top": (["bsae"], "")})
    with pytest.raises(SpecError, match=r"layers/top/layer.toml: requires unknown layer 'bsae'"):
        load_project(root)


def test_requires_cycle_is_reported(make_project: Callable[..., Path]) -> None:
    root = make_project({"base": (["top"], ""), "top": (["base"], "")})
    with pytest.raises(SpecError, match="cycle: base -> top -> base"):
        load_project(root)


def test_malformed_requirement_is_reported_with_file_and_line(
    make_project: Callable[..., Path],
) -> None:
    root = make_project({"base": ([], "six\nnumpy>=>1\n"), "top": (["base"], "")})
    with pytest.raises(SpecError, match=r"layers/base/requirements.txt:2: malformed"):
        load_project(root)


def test_unknown_key_and_bad_budget(make_project: Callable[..., Path]) -> None:
    root = make_project()
    toml = root / "layers" / "base" / "layer.toml"
    toml.write_text(toml.read_text() + "budgett = 3\n")
    with pytest.raises(SpecError, match=r"unknown key.*budgett"):
        load_project(root)
    toml.write_text('budget = "lots"\n')
    with pytest.raises(SpecError, match="size 'lots' is not understood"):
        load_project(root)


def test_template_layer_without_folder(make_project: Callable[..., Path]) -> None:
    root = make_project({"base": ([], "")})
    with pytest.raises(SpecError, match="no layers/top/ folder"):
        load_project(root)


@pytest.mark.parametrize(
    ("text", "size"),
    [("100 MB", 100_000_000), ("250 MiB", 262_144_000), (1234, 1234), ("1.5GB", 1_500_000_000)],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text, "x") == size


def test_repository_project_loads() -> None:
    from tests.conftest import REPO

    project = load_project(REPO)
    assert [x.name for x in project.layers] == [
        "aws-utilities",
        "core-data-science",
        "ml-libraries",
    ]
    assert project.layer("ml-libraries").requires == ("core-data-science",)
    assert project.layer("aws-utilities").requires == ()
    budgets = {x.name: x.budget for x in project.layers}
    assert budgets == {
        "core-data-science": 100_000_000,
        "ml-libraries": 100_000_000,
        "aws-utilities": 50_000_000,
    }
    assert project.function("DataValidation").layers == ("core-data-science", "aws-utilities")
    assert project.function("Predictions").layers == (
        "core-data-science",
        "ml-libraries",
        "aws-utilities",
    )
