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

    monkeypatch.setattr(commands, "run_build", lambda *a, **k: Built())
    monkeypatch.setattr(invocation, "invoke_function", fake_invoke)
    commands.invoke(root, "Fn", event=event, parameter_overrides="LogLevel=DEBUG")
    assert seen["function"] == "fn"
    env = seen["env"]
    # the local stage: Stage is "local" (allowed), LogLevel from --parameter-overrides
    assert (env["STAGE"], env["LEVEL"], env["SIZE"]) == ("local", "DEBUG", "128")
    assert env["SELF"] == "arn:aws:lambda:us-east-1:123456789012:function:shop-fn-local"
