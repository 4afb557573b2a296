from pathlib import Path

from layerkit.build.manifest import ArtifactRecord
from layerkit.commands import StatusOutput
from layerkit.runtime.target import Target


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


def _module_level_imports(module: str) -> set[str]:
    """What importing ``module`` imports, following layerkit's modules: module-level imports
    only (not those inside functions or under ``if TYPE_CHECKING``), read, not run."""
    import ast

    src = Path(__file__).resolve().parents[2] / "src"
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        for i in range(1, len(parts)):  # a package's __init__ runs first
            todo.append(".".join(parts[:i]))
        path = src.joinpath(*parts)
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        if not path.is_file():
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                todo.append(node.module)
                todo += [f"{node.module}.{a.name}" for a in node.names]  # submodules
            elif isinstance(node, ast.Try):  # tomllib / tomli fallbacks
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and inner.module:
                        todo.append(inner.module)
    return seen


def test_a_build_does_not_import_the_deploy_optimize_or_elf_stacks() -> None:
    """`inv build.all` starts in a fraction of a second: commands imports those in the verbs."""
    found = {m.split(".")[0] for m in _module_level_imports("layerkit.commands")}
    heavy = {"boto3", "botocore", "moto", "cfnlint", "tomlkit", "elftools", "ruamel"}
    assert not found & heavy
    layerkit = _module_level_imports("layerkit.commands")
    for module in ("layerkit.deploy.deployer", "layerkit.optimize.apply", "layerkit.upgrade"):
        assert module not in layerkit
    assert "layerkit.build.pipeline" in layerkit
