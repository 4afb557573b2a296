from layerkit.build.manifest import ArtifactKind
from layerkit.build.steps import pipeline_order, step_names
from layerkit.report.table import (
    RULE,
    artifact_order,
    build_state,
    format_table,
    in_order,
    mb,
    plural,
    verdict,
)
from layerkit.report.text import render_plain, table


def test_numbers_right_aligned_text_left() -> None:
    text = format_table(
        ["name", "MB", "delta"], [["a", "1.0", "+42.3"], ["long name", "123.4", "-3.1"]]
    )
    assert text.splitlines() == [
        "name          MB  delta",
        "---------- ------ -----",
        "a            1.0  +42.3",
        "long name  123.4   -3.1",
    ]


def test_mb_keeps_small_sizes_visible() -> None:
    assert (mb(None), mb(0), mb(6_927), mb(96_900_000)) == ("-", "0.0", "0.007", "96.9")


def test_plural_agrees_with_the_count() -> None:
    assert plural(1, "file") == "1 file"
    assert plural(2, "module") == "2 modules"
    assert plural(0, "distribution") == "0 distributions"
    assert plural(1, "entry", "entries") == "1 entry"
    assert plural(3, "entry", "entries") == "3 entries"


def test_artifacts_list_layers_before_functions() -> None:
    paths = ["functions/a.zip", "layers/z.zip", "functions/b.zip", "layers/b.zip"]
    assert sorted(paths, key=artifact_order) == [
        "layers/b.zip", "layers/z.zip", "functions/a.zip", "functions/b.zip",
    ]  # fmt: skip
    assert sorted(["function f", "layer x"], key=artifact_order) == ["layer x", "function f"]


def test_steps_are_columns_in_pipeline_order() -> None:
    order = pipeline_order()
    assert order == ("install", "slim", "copy", "imports", "bytecode", "import-check", "zip")
    # the order comes from the step lists themselves: each kind's steps keep their order
    for kind in ArtifactKind:
        names = step_names(kind)
        assert [order.index(n) for n in names] == sorted(order.index(n) for n in names)
    recorded = ["install", "copy", "imports", "bytecode", "zip", "slim", "import-check", "new"]
    assert in_order(recorded, order) == [*order, "new"]


def test_rich_and_plain_tables_look_the_same() -> None:
    headers, rows = ["artifact", "MB", "state"], [["layers/a.zip", "1.0", "built"]]
    plain = format_table(headers, rows)
    assert render_plain([table(headers, rows)]) == plain
    assert plain.splitlines()[1] == f"{RULE * 13} {RULE * 4} {RULE * 5}"


def test_one_state_word_and_one_verdict_per_artifact() -> None:
    assert str(build_state(built=True)) == "built"
    assert str(build_state(built=False, cached=True)) == "cached"
    assert str(build_state(built=False)) == "fresh"
    assert verdict(None) == "ok"
    assert verdict("budget") == "OVER BUDGET"
    assert verdict("budget", accepted=True) == "over budget (accepted)"
    # only a layer has a budget: a function is over Lambda's limit, never "over budget"
    assert "budget" not in verdict("function-over-limit").lower()
    assert "budget" not in verdict("max-layers").lower()
