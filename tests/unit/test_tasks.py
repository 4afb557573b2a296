"""layerkit.tasks and this repository's tasks.py: introspection, help, MockContext runs."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from pathlib import Path

import pytest
from invoke import Collection, Config, Exit, MockContext, Program

from layerkit import commands
from layerkit.tasks import LayerkitTask, ns

TASKS = {
    "build.all", "build.layer", "build.functions", "validate.all", "validate.layer",
    "lock", "status", "clean", "report", "invoke", "deploy", "package", "optimize", "upgrade-runtime", "rollback", "releases",
    "unlock", "init",
}  # fmt: skip


def repo_ns() -> Collection:
    return importlib.import_module("tasks").ns


def context(root: Path) -> MockContext:
    return MockContext(config=Config(overrides={"layerkit": {"project_dir": str(root)}}))


def run(collection: Collection, *argv: str) -> int:
    try:
        Program(namespace=collection, binary="inv[oke]").run(["inv", *argv], exit=False)
    except SystemExit as exc:  # pragma: no cover - only if invoke exits on a failure
        return int(exc.code or 0)
    return 0


def test_the_collection_has_every_verb_and_the_repo_adds_build_model() -> None:
    assert set(ns.task_names) == TASKS
    # and `readme`, which rewrites the README's generated figures (not a layerkit command)
    assert set(repo_ns().task_names) == TASKS | {"build.model", "readme"}
    assert ns.collections["build"].default == "all"
    assert ns.collections["validate"].default == "all"


@pytest.mark.parametrize("name", sorted(TASKS | {"build.model"}))
def test_every_task_is_documented_and_maps_errors_in_one_place(name: str) -> None:
    t = repo_ns()[name]
    assert isinstance(t, LayerkitTask)
    assert inspect.getdoc(t)
    params = [p for p in inspect.signature(t.body).parameters if p != "c"]
    assert set(t.help) == set(params), f"{name}: every argument has a help text"
    body = inspect.getsource(t.body).split('"""')[-1]
    assert body.count("\n") <= 10, f"{name}: a task is a few lines over a command"


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("name", sorted(TASKS | {"build.model"}))
def test_help_works_after_every_task(
    name: str, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(repo_ns(), name, flag) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: inv[oke] [--core-opts] {name} ")
    assert inspect.getdoc(repo_ns()[name]).splitlines()[0] in out
    assert "Options:" in out
    task = repo_ns()[name]
    for option, text in task.saved_help.items():  # each option's help, parsed before or not
        assert " ".join(text.split()[:3]) in " ".join(out.split()), (name, option)


def test_help_after_a_positional_task_does_not_run_it(
    make_project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # invoke hands a missing positional argument the next word, "--help" included
    out = ns["build.layer"](context(make_project()), name="--help")
    assert out is None
    assert "--name=STRING" in capsys.readouterr().out


def test_an_input_error_becomes_exit_1_with_one_paragraph(
    make_project: Callable[..., Path],
) -> None:
    with pytest.raises(Exit) as info:
        ns["build.layer"](context(make_project()), name="nope")
    assert info.value.code == 1
    assert info.value.message == (
        "error: there is no layer 'nope'; the layers are: base, top (folders under layers/)."
    )


def test_a_task_prints_its_commands_output_and_returns_it(
    make_project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project()
    output = ns["status"](context(root))
    assert isinstance(output, commands.StatusOutput)
    assert output.rows == ()  # nothing built
    assert output.note is not None
    assert output.note.startswith("note: freshness unknown: ")  # and no lock yet
    assert capsys.readouterr().out == output.render() + "\n"


def test_the_project_is_the_folder_tasks_py_was_loaded_from(tmp_path: Path) -> None:
    from layerkit.tasks import project_dir

    config = Config()
    config.set_project_location(str(tmp_path))
    assert project_dir(MockContext(config=config)) == tmp_path
