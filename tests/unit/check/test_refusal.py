"""What a build refuses to keep: above Lambda's limit whatever the budget, or over budget unexplained."""

from collections.abc import Callable
from pathlib import Path

from layerkit.check.sizes import refusal
from layerkit.project.spec import load_project
from tests.unit.check.test_sizes import big_layer, rec


def test_above_lambdas_limit_is_refused_even_with_a_reason(
    make_project: Callable[..., Path],
) -> None:
    root = make_project()
    toml = root / "layers" / "top" / "layer.toml"
    toml.write_text(toml.read_text() + 'over-budget-reason = "reviewed"\n')
    why = refusal(load_project(root), big_layer(budget=300_000_000))
    assert why is not None
    assert "over Lambda's 262,144,000-byte limit" in why


def test_over_budget_is_refused_unless_layer_toml_gives_a_reason(
    make_project: Callable[..., Path],
) -> None:
    root = make_project()
    over = rec("layer", "top", 10_000_001, budget=10_000_000)
    assert "1 bytes over the budget of 10,000,000" in (refusal(load_project(root), over) or "")
    toml = root / "layers" / "top" / "layer.toml"
    toml.write_text(toml.read_text() + 'over-budget-reason = "reviewed: pandas grew"\n')
    assert refusal(load_project(root), over) is None
    assert refusal(load_project(root), rec("layer", "top", 10_000_000, budget=10_000_000)) is None
    assert refusal(load_project(root), rec("function", "fn", 300_000_000)) is None
