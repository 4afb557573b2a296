from pathlib import Path

from layerkit.build.manifest import ArtifactRecord
from layerkit.commands import StatusOutput
from layerkit.runtime.target import Target
from tests.conftest import imported_modules


def record(path: str, timings: tuple[tuple[str, float], ...]) -> ArtifactRecord:
    kind, _, name = path.partition("/")
    return ArtifactRecord(
        kind.rstrip("s"), name, "python3.9-x86_64", path, "0", 1, 2, 1, "h", timings=timings
    )


def test_status_timings_show_each_step_of_each_artifact_and_the_total():
    rows = (
        ("layers/core.zip", "fresh", record("layers/core.zip", (("install", 1.25), ("zip", 2.0)))),
        ("functions/fn.zip", "fresh", record("functions/fn.zip", (("copy", 0.5),))),
        ("layers/new.zip", "missing", None),
    )
    out = StatusOutput(Path("dist"), Target("python3.9", "x86_64"), rows, timings=True)
    lines = out.render().splitlines()
    header = next(line for line in lines if line.startswith("artifact (s)"))
    columns = header.split()[2:]  # after "artifact (s)"
    assert sorted(columns) == ["copy", "install", "total", "zip"]
    assert columns[-1] == "total"
    timings_table = lines[lines.index(header) :]

    def cells(path: str) -> dict[str, str]:
        row = next(line for line in timings_table if line.startswith(path)).split()[1:]
        return dict(zip(columns, row, strict=True))

    assert cells("layers/core.zip") == {"install": "1.2", "zip": "2.0", "copy": "-", "total": "3.2"}
    assert cells("functions/fn.zip") == {"install": "-", "zip": "-", "copy": "0.5", "total": "0.5"}
    assert not any(line.startswith("layers/new.zip") for line in timings_table)  # never built


def test_status_without_timings_shows_no_timings_table():
    rows = (("layers/core.zip", "fresh", record("layers/core.zip", (("zip", 2.0),))),)
    text = StatusOutput(Path("dist"), Target("python3.9", "x86_64"), rows).render()
    assert "artifact (s)" not in text


def test_a_build_does_not_import_the_deploy_optimize_or_elf_stacks() -> None:
    """`inv build.all` starts in a fraction of a second: commands imports those in the verbs."""
    found = {m.split(".")[0] for m in imported_modules("layerkit.commands", at_import=True)}
    heavy = {"boto3", "botocore", "moto", "cfnlint", "tomlkit", "elftools", "ruamel"}
    assert not found & heavy
    layerkit = imported_modules("layerkit.commands", at_import=True)
    for module in ("layerkit.deploy.deployer", "layerkit.optimize.apply", "layerkit.upgrade"):
        assert module not in layerkit
    assert "layerkit.build.pipeline" in layerkit


def test_invoke_passes_the_resolved_environment_to_the_handler(make_project, monkeypatch, tmp_path):
    import layerkit.check.invocation as invocation
    from layerkit import commands
    from tests.unit.project.test_parameters import STAGED

    root = make_project(template=STAGED)
    event = tmp_path / "event.json"
    event.write_text("{}")
    seen = {}

    class Built:
        out_dir = root / "dist"

    def fake_invoke(project, function, payload, out_dir, *, env=None, **_):
        seen.update(function=function, env=env)
        return "result"

    monkeypatch.setattr(commands, "project_builder", lambda project: lambda *a, **k: Built())
    monkeypatch.setattr(invocation, "invoke_function", fake_invoke)
    commands.invoke(root, "Fn", event=event, parameter_overrides="LogLevel=DEBUG")
    assert seen["function"] == "fn"
    env = seen["env"]
    # the local stage: Stage is "local" (allowed), LogLevel from --parameter-overrides
    assert (env["STAGE"], env["LEVEL"], env["SIZE"]) == ("local", "DEBUG", "128")
    assert env["SELF"] == "arn:aws:lambda:us-east-1:123456789012:function:shop-fn-local"


def test_status_timings_columns_run_in_pipeline_order_layers_first():
    rows = (
        ("functions/fn.zip", "fresh", record("functions/fn.zip", (("install", 1.0), ("copy", 0.5),
                                                                  ("zip", 0.1)))),
        ("layers/core.zip", "fresh", record("layers/core.zip", (("zip", 2.0), ("slim", 1.0),
                                                                ("install", 1.25)))),
    )  # fmt: skip
    out = StatusOutput(Path("dist"), Target("python3.9", "x86_64"), rows, timings=True)
    lines = out.render().splitlines()
    header = next(line for line in lines if line.startswith("artifact (s)"))
    assert header.split()[2:] == ["install", "slim", "copy", "zip", "total"]
    body = lines[lines.index(header) + 2 :]
    assert [line.split()[0] for line in body] == ["layers/core.zip", "functions/fn.zip"]


def test_a_bad_runtime_or_arch_option_is_named_as_the_option(tmp_path: Path):
    import pytest

    from layerkit.commands import target_for
    from layerkit.errors import SpecError

    class Fake:
        deploy_target = Target("python3.9", "x86_64")

    with pytest.raises(SpecError, match=r"^--runtime python3\.7: not a Lambda runtime") as bad:
        target_for(Fake(), "python3.7")  # type: ignore[arg-type]
    assert "leave --runtime out to use the template's (python3.9)" in str(bad.value)
    assert "template.yaml or layer.toml" not in str(bad.value)
    with pytest.raises(SpecError, match=r"^--arch sparc: not a Lambda architecture"):
        target_for(Fake(), None, "sparc")  # type: ignore[arg-type]


def test_the_runtime_notice_follows_the_work_or_the_error(monkeypatch):
    import pytest

    from layerkit import commands
    from layerkit.check.findings import Finding, Severity
    from layerkit.errors import SpecError

    finding = Finding(Severity.WARNING, "template.yaml", "runtime python3.9 is deprecated")
    monkeypatch.setattr(commands, "runtime_findings", lambda project, today: (finding,))
    said: list[str] = []
    feedback = commands.Feedback(note=said.append)
    with commands.runtime_notice(None, feedback):  # type: ignore[arg-type]
        said.append("work")
    assert said == ["work", "warning: runtime python3.9 is deprecated"]  # after, once

    said.clear()
    with (
        pytest.raises(SpecError) as stopped,
        commands.runtime_notice(None, feedback),  # type: ignore[arg-type]
    ):
        raise SpecError("--runtime python3.7: not a Lambda runtime layerkit knows")
    assert said == []  # never before the error ...
    assert commands.error_text(stopped.value).splitlines() == [
        "error: --runtime python3.7: not a Lambda runtime layerkit knows",
        "warning: runtime python3.9 is deprecated",  # ... but after it
    ]


def test_the_build_summary_lists_layers_first_one_state_word_and_budgets_only_for_layers(
    repo_copy: Path,
):
    from layerkit.build.manifest import ArtifactKind
    from layerkit.build.pipeline import BuildResult
    from layerkit.commands import _build_output
    from layerkit.project.spec import load_project

    project = load_project(repo_copy)
    target = project.deploy_target

    def rec(kind: ArtifactKind, name: str, unzipped: int, budget: int | None = None):
        path = f"{'layers' if kind == ArtifactKind.LAYER else 'functions'}/{name}.zip"
        layers = () if kind == ArtifactKind.LAYER else tuple(x.name for x in project.layers)
        return ArtifactRecord(kind, name, target.key, path, "0", 1, unzipped, 1, "h",
                              budget=budget, layers=layers)  # fmt: skip

    records = {
        r.path: r
        for r in (
            rec(ArtifactKind.FUNCTION, "predictions", 12_000),  # a 12 KB function ...
            rec(ArtifactKind.LAYER, "core-data-science", 200_000_000, 100_000_000),
            rec(ArtifactKind.LAYER, "ml-libraries", 105_700_000, 100_000_000),
            rec(ArtifactKind.LAYER, "aws-utilities", 8_000_000, 50_000_000),
        )
    }  # ... whose layers add up to more than Lambda allows
    result = BuildResult(
        repo_copy / "dist", target, ("layers/aws-utilities.zip",), records, None,  # type: ignore[arg-type]
        cached=("layers/ml-libraries.zip",),
    )  # fmt: skip
    out = _build_output(project, result)
    rows = {row[0]: row for row in out.rows}
    assert [row[0] for row in out.rows][-1] == "functions/predictions.zip"  # layers first
    assert [row[0] for row in out.rows][:3] == sorted(p for p in rows if p.startswith("layers/"))
    state = {path: row[5] for path, row in rows.items()}
    assert state == {
        "layers/aws-utilities.zip": "built",
        "layers/ml-libraries.zip": "cached",
        "layers/core-data-science.zip": "fresh",
        "functions/predictions.zip": "fresh",
    }
    check = {path: row[6] for path, row in rows.items()}
    assert check["layers/core-data-science.zip"] == "OVER BUDGET"
    assert check["layers/ml-libraries.zip"] == "over budget (accepted)"  # its layer.toml says why
    assert check["layers/aws-utilities.zip"] == "ok"
    assert "budget" not in check["functions/predictions.zip"].lower()  # it has no budget
    assert check["functions/predictions.zip"].startswith("OVER LAMBDA'S LIMIT")
    assert rows["functions/predictions.zip"][4] == "-"  # no budget column value either
    rendered = out.render().splitlines()
    assert rendered[1].split() == [
        "artifact", "unzipped", "MB", "zipped", "MB", "files", "budget", "MB", "state", "check",
    ]  # fmt: skip


def test_validate_says_the_deprecation_notice_in_the_same_words_as_build_and_deploy():
    from datetime import date

    from layerkit.check.findings import CheckReport, Severity
    from layerkit.check.template import lifecycle_finding
    from layerkit.commands import BuildChecks, ValidateOutput
    from layerkit.runtime.lifecycle import deprecation_notice, runtime_lifecycle
    from tests.unit.runtime.test_lifecycle import TABLE

    today = date(2026, 6, 15)
    status = runtime_lifecycle("python3.9", today, TABLE)
    finding = lifecycle_finding(status, today)
    assert finding is not None
    assert finding.severity is Severity.WARNING
    out = ValidateOutput(Target("python3.9"), BuildChecks((), CheckReport((finding,))), ())
    notice = deprecation_notice("python3.9", status, today, status.source)
    lines = out.render().splitlines()
    assert f"warning: {notice}" in lines  # no "template.yaml:" in front: one wording
    assert sum("is deprecated" in line for line in lines) == 1


def test_validate_of_a_template_mixing_targets_shows_and_fails_per_target():
    import dataclasses

    from layerkit.check.findings import CheckReport, Finding, Severity
    from layerkit.commands import BuildChecks, ValidateOutput

    ok = BuildChecks((), CheckReport(()))
    bad = BuildChecks((), CheckReport((Finding(Severity.ERROR, "PaymentsApiFunction", "too big"),)))
    arm = ValidateOutput(Target("python3.12", "arm64"), bad, ())
    out = ValidateOutput(Target("python3.12"), ok, (), others=(arm,))
    lines = out.render().splitlines()
    assert lines[0] == "target python3.12-x86_64:"
    assert "target python3.12-arm64:" in lines
    assert out.failure == "validation failed: python3.12-arm64: 1 size/template/handler error"
    passed = ValidateOutput(
        Target("python3.12"), ok, (), others=(dataclasses.replace(arm, checks=ok),)
    )
    assert passed.failure is None
    assert passed.render().endswith("validation passed on python3.12-x86_64, python3.12-arm64")
