from collections.abc import Callable
from pathlib import Path

from layerkit.build.manifest import ArtifactRecord
from layerkit.check.sizes import FUNCTION_UNZIPPED_LIMIT, function_totals, size_findings
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
    assert finding.severity == "error"
    assert finding.artifact == "layers/base.zip"
    assert "1 bytes over the budget of 10,000,000 in layers/base/layer.toml" in finding.message


def test_function_over_lambda_limit(make_project: Callable[..., Path]) -> None:
    project = load_project(make_project())
    recs = records(base=1, top=1)
    recs["layers/top.zip"] = rec("layer", "top", FUNCTION_UNZIPPED_LIMIT)
    (finding,) = size_findings(project, recs)
    assert finding.artifact == "functions/fn.zip"
    assert "over Lambda's 262,144,000-byte limit by 1,001" in finding.message


def test_big_zip_is_information_about_s3(make_project: Callable[..., Path]) -> None:
    project = load_project(make_project())
    recs = records(base=1, top=1)
    recs["layers/top.zip"] = rec("layer", "top", 60_000_000, zipped=52_428_801)
    (finding,) = size_findings(project, recs)
    assert (finding.severity, finding.artifact) == ("info", "layers/top.zip")
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
    assert finding.severity == "warning"
    assert "1 bytes over the budget" in finding.message
    assert "scipy alone is bigger" in finding.message


def test_an_s3_note_never_hides_an_overrun(make_project: Callable[..., Path]) -> None:
    from layerkit.check.sizes import worst_severity

    project = load_project(make_project())
    recs = records(base=1, top=1)
    recs["layers/top.zip"] = rec("layer", "top", 60_000_000, zipped=60_000_000, budget=10_000_000)
    findings = size_findings(project, recs)
    assert {f.severity for f in findings} == {"error", "info"}
    assert worst_severity(findings) == {"layers/top.zip": "error"}
