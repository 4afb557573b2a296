import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from layerkit.build.manifest import ArtifactRecord
from layerkit.check.findings import CheckReport, Severity
from layerkit.check.sizes import (
    FUNCTION_UNZIPPED_LIMIT,
    function_totals,
    layer_limit_findings,
    raise_for_layer_limits,
    size_findings,
)
from layerkit.errors import CheckError
from layerkit.project.spec import load_project


def rec(
    kind: str, name: str, unzipped: int, zipped: int = 1, budget: int | None = None
) -> ArtifactRecord:
    folder = "layers" if kind == "layer" else "functions"
    return ArtifactRecord(
        kind,
        name,
        "python3.9-x86_64",
        f"{folder}/{name}.zip",
        "0",
        zipped,
        unzipped,
        1,
        "h",
        budget=budget,
    )


def records(**sizes: int) -> dict[str, ArtifactRecord]:
    out = {f"layers/{n}.zip": rec("layer", n, s, budget=10_000_000) for n, s in sizes.items()}
    out["functions/fn.zip"] = rec("function", "fn", 1_000)
    return out


def test_within_limits_finds_nothing(make_project: Callable[..., Path]) -> None:
    project = load_project(make_project())
    assert size_findings(project, records(base=5_000_000, top=5_000_000)) == ()
    (total,) = function_totals(project, records(base=5_000_000, top=5_000_000))
    assert total.total == 10_001_000
    assert total.headroom == FUNCTION_UNZIPPED_LIMIT - 10_001_000


def test_over_budget_layer_names_budget_and_excess(make_project: Callable[..., Path]) -> None:
    project = load_project(make_project())
    (finding,) = size_findings(project, records(base=10_000_001, top=1))
    assert finding.severity is Severity.ERROR
    assert finding.subject == "layers/base.zip"
    assert "1 bytes over the budget of 10,000,000 in layers/base/layer.toml" in finding.message


def test_function_over_lambda_limit(make_project: Callable[..., Path]) -> None:
    project = load_project(make_project())
    recs = records(base=1, top=1)
    recs["layers/top.zip"] = rec("layer", "top", FUNCTION_UNZIPPED_LIMIT)
    (finding,) = size_findings(project, recs)
    assert finding.subject == "functions/fn.zip"
    assert "over Lambda's 262,144,000-byte limit by 1,001" in finding.message


def test_big_zip_is_information_about_s3(make_project: Callable[..., Path]) -> None:
    project = load_project(make_project())
    recs = records(base=1, top=1)
    recs["layers/top.zip"] = rec("layer", "top", 60_000_000, zipped=52_428_801)
    (finding,) = size_findings(project, recs)
    assert (finding.severity, finding.subject) == (Severity.INFO, "layers/top.zip")
    assert "upload through S3" in finding.message


def test_more_than_five_layers_is_an_error(make_project: Callable[..., Path]) -> None:
    from tests.conftest import TEMPLATE

    refs = "[" + ", ".join(["!Ref BaseLayer"] * 6) + "]"
    project = load_project(
        make_project(template=TEMPLATE.replace("[!Ref BaseLayer, !Ref TopLayer]", refs))
    )
    assert any(
        "attaches 6 layers; Lambda allows 5" in f.message for f in size_findings(project, {})
    )


def test_overrun_with_a_written_reason_is_a_warning_that_still_shows_the_excess(
    make_project: Callable[..., Path],
) -> None:
    root = make_project()
    toml = root / "layers" / "base" / "layer.toml"
    toml.write_text(toml.read_text() + 'over-budget-reason = "scipy alone is bigger"\n')
    (finding,) = size_findings(load_project(root), records(base=10_000_001, top=1))
    assert finding.severity is Severity.WARNING
    assert "1 bytes over the budget" in finding.message
    assert "scipy alone is bigger" in finding.message


def test_an_s3_note_never_hides_an_overrun(make_project: Callable[..., Path]) -> None:
    project = load_project(make_project())
    recs = records(base=1, top=1)
    recs["layers/top.zip"] = rec("layer", "top", 60_000_000, zipped=60_000_000, budget=10_000_000)
    findings = size_findings(project, recs)
    assert {f.severity for f in findings} == {Severity.ERROR, Severity.INFO}
    report = CheckReport.of(findings)
    assert {s: report.worst(s) for s in report.by_subject} == {"layers/top.zip": Severity.ERROR}


def big_layer(budget: int, **extra: object) -> ArtifactRecord:
    sizes = {"numpy": 70_000_000, "scipy": 120_000_000, "scikit-learn": 42_000_000}
    sizes |= {"joblib": 2_000_000, "(other)": 200_000_000}
    details = {
        "distribution_bytes": sizes,
        "bytecode": {"mode": "all", "added_bytes": 30_000_000},
        "slim": (
            {"name": "tests", "removed_bytes": 13_000_000},
            {"name": "layer-remove", "removed_bytes": 5_500_000},
        ),
        **extra,
    }
    return dataclasses.replace(rec("layer", "top", 298_000_000, budget=budget), **details)


def test_a_layer_alone_over_lambdas_limit_is_an_error_whatever_its_budget(
    make_project: Callable[..., Path],
) -> None:
    project = load_project(make_project())
    recs = records(base=1, top=1)
    recs["layers/top.zip"] = big_layer(budget=300_000_000)  # budget = "300 MB": within it
    (finding,) = [f for f in size_findings(project, recs) if f.subject == "layers/top.zip"]
    assert (finding.severity, finding.code) == (Severity.ERROR, "layer-over-limit")
    text = finding.message
    assert "298,000,000 bytes unzipped, 35,856,000 bytes over Lambda's 262,144,000-byte" in text
    assert "whatever the budget in layers/top/layer.toml" in text
    # the three largest distributions by size, not by name; "(other)" is no distribution
    assert "Its largest distributions: scipy 120.0 MB, numpy 70.0 MB, scikit-learn 42.0 MB." in text
    assert "joblib" not in text
    assert 'bytecode = "all" adds 30.0 MB: "none" would save all of it' in text
    assert '"imported" the part a cold start does not load' in text
    assert "remove patterns save 5.5 MB now" in text


def test_an_accepted_overrun_never_hides_the_lambda_limit(
    make_project: Callable[..., Path],
) -> None:
    root = make_project()
    toml = root / "layers" / "top" / "layer.toml"
    toml.write_text(toml.read_text() + 'over-budget-reason = "it is big"\n')
    recs = records(base=1, top=1)
    recs["layers/top.zip"] = big_layer(budget=10_000_000)
    report = CheckReport.of(size_findings(load_project(root), recs))
    assert {f.code: f.severity for f in report.by_subject["layers/top.zip"]} == {
        "budget": Severity.WARNING,
        "layer-over-limit": Severity.ERROR,
    }
    assert report.worst("layers/top.zip") is Severity.ERROR
    assert not report.ok


def test_a_layer_at_the_limit_is_within_it_and_functions_are_not_layers() -> None:
    at_limit = rec("layer", "top", FUNCTION_UNZIPPED_LIMIT)
    assert (
        layer_limit_findings([at_limit, rec("function", "fn", FUNCTION_UNZIPPED_LIMIT + 1)]) == ()
    )
    raise_for_layer_limits([at_limit])


def test_the_build_time_check_raises_one_paragraph_naming_the_layer() -> None:
    over = big_layer(budget=300_000_000, bytecode={"mode": "none", "added_bytes": 0})
    with pytest.raises(CheckError) as caught:
        raise_for_layer_limits([rec("layer", "base", 1), over])
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith("layer top alone is 298,000,000 bytes unzipped")
    assert 'bytecode = "none" adds nothing, so no bytecode mode saves anything' in text
