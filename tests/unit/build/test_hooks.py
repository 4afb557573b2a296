"""One pipeline, two front doors: [tool.layerkit] build-steps, every target of the template."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from layerkit import commands
from layerkit.build import hooks
from layerkit.build.lock import Partition
from layerkit.build.pipeline import BuildResult
from layerkit.cli import in_layerkit_words
from layerkit.errors import SpecError
from layerkit.project.spec import load_project
from layerkit.runtime.target import Target
from tests.unit.project.test_sam_project import write_sam_project

STEP_MODULE = """\
CALLS = []


def step(context):
    CALLS.append((context.target.key, sorted(context.layers.built)))
"""


def _result(target: Target, built: tuple[str, ...]) -> BuildResult:
    return BuildResult(Path("/out") / target.key, target, built, {}, Partition({}, {}))


def test_build_steps_run_between_layers_and_functions_for_every_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_sam_project(tmp_path)
    (root / "pyproject.toml").write_text('[tool.layerkit]\nbuild-steps = ["my_steps:step"]\n')
    (root / "my_steps.py").write_text(STEP_MODULE)
    project = load_project(root)
    calls: list[tuple[str, Any]] = []

    def fake_build(project: Any, target: Target, **options: Any) -> BuildResult:
        what = "functions" if options.get("layers") == [] else "layers"
        calls.append((target.key, what))
        return _result(target, (f"{what}-{target.key}",))

    monkeypatch.setattr(hooks, "build", fake_build)
    sys.modules.pop("my_steps", None)
    output = commands.build(project)
    steps = sys.modules["my_steps"].CALLS
    # every target of the template, the deploy target first; the step between the two builds
    keys = [t.key for t in project.function_targets]
    assert [c[0] for c in steps] == keys
    assert calls == [(k, w) for k in keys for w in ("layers", "functions")]
    assert [steps[0][1]] == [[f"layers-{keys[0]}"]]
    assert [output.target.key, *(o.target.key for o in output.others)] == keys


def test_build_all_narrowed_by_arch_builds_that_target_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = load_project(write_sam_project(tmp_path))
    seen: list[str] = []

    def fake(project: Any, target: Target, **options: Any) -> BuildResult:
        seen.append(target.key)
        return _result(target, ())

    output = commands.build(project, arch="arm64", builder=fake)
    assert seen == ["python3.12-arm64"]
    assert output.others == ()


def test_a_step_that_cannot_be_imported_is_one_paragraph(tmp_path: Path) -> None:
    root = write_sam_project(tmp_path)
    (root / "pyproject.toml").write_text('[tool.layerkit]\nbuild-steps = ["nowhere_xyz:step"]\n')
    with pytest.raises(SpecError, match=r"build-steps: 'nowhere_xyz:step' names module") as exc:
        hooks.project_builder(load_project(root))
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("value", ['"model:step"', '["model"]', '["a:b:c"]', "[1]"])
def test_build_steps_must_be_module_function_entries(tmp_path: Path, value: str) -> None:
    root = write_sam_project(tmp_path)
    (root / "pyproject.toml").write_text(f"[tool.layerkit]\nbuild-steps = {value}\n")
    with pytest.raises(
        SpecError, match=r'build-steps must be a list of callables written "module:'
    ):
        load_project(root)


def test_a_project_without_steps_builds_with_the_plain_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[object, dict]] = []
    monkeypatch.setattr(hooks, "build", lambda project, target, **o: calls.append((target, o)))
    project = load_project(write_sam_project(tmp_path))
    target = project.deploy_target
    hooks.project_builder(project)(project, target, force=True, retrain=True)
    assert calls == [(target, {"force": True})]  # one pipeline run; retrain means nothing here


def test_the_repository_declares_its_model_step() -> None:
    from tests.conftest import REPO

    ((entry, step),) = hooks.load_steps(load_project(REPO))
    assert entry == "model_training:model_step"
    assert step.__name__ == "model_step"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Run `inv lock` first.", "Run `layerkit lock` first."),
        ("run `inv build.all --force`", "run `layerkit build all --force`"),
        (
            "`inv build.layer base --runtime python3.12`",
            "`layerkit build layer base --runtime python3.12`",
        ),
        ("`inv releases --stage=dev`", "`layerkit releases --stage=dev`"),
        ("an invoice, not `invoke`", "an invoice, not `invoke`"),
    ],
)
def test_the_layerkit_command_names_its_own_verbs(text: str, expected: str) -> None:
    assert in_layerkit_words(text) == expected


def test_inv_finds_the_project_from_a_subfolder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invoke import Context

    from layerkit.tasks import project_dir

    root = write_sam_project(tmp_path)
    monkeypatch.chdir(root / "src" / "orders" / "api")
    assert project_dir(Context()) == root.resolve()


def test_a_wrong_option_value_is_the_same_error_at_both_doors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from invoke import Context, Exit

    from layerkit import cli, tasks

    root = write_sam_project(tmp_path)
    assert cli.main(["--project-dir", str(root), "build", "all", "--arch", "sparc"]) == 1
    layerkit_err = capsys.readouterr().err
    context = Context()
    context.config["layerkit"] = {"project_dir": str(root)}
    with pytest.raises(Exit) as exc:
        tasks.build_all(context, arch="sparc")
    assert exc.value.code == 1
    assert layerkit_err.strip() == str(exc.value.message).strip()
    assert "--arch sparc: not a Lambda architecture" in layerkit_err


def test_layerkit_build_all_for_python312_trains_this_repository_s_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 18: `layerkit build all --runtime python3.12` packed the python3.9 model."""
    import model_training
    from tests.conftest import REPO

    project = load_project(REPO)
    py312 = Target("python3.12")
    order: list[str] = []

    def fake_build(project: Any, target: Target, **options: Any) -> BuildResult:
        order.append("functions" if options.get("layers") == [] else "layers")
        return _result(target, ())

    def fake_train(project: Any, target: Target, out_dir: Path) -> None:
        order.append(f"train {target.key}")

    monkeypatch.setattr(hooks, "build", fake_build)
    monkeypatch.setattr(model_training, "train_for_target", fake_train)
    monkeypatch.setattr(model_training, "build", fake_build)  # what build.model would call
    commands.build(project, runtime="python3.12")
    assert order == ["layers", "train python3.12-x86_64", "functions"]
    assert py312 in project.targets
