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
