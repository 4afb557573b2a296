"""The `layerkit` command through its argv entry point: help everywhere, one-paragraph errors."""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from layerkit import cli, commands

VERBS = {
    "lock", "build", "status", "validate", "report", "invoke",
    "deploy", "package", "optimize", "upgrade-runtime", "rollback", "releases", "unlock", "clean",
    "init",
}  # fmt: skip


def _choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def every_verb() -> Iterator[list[str]]:
    for name, parser in _choices(cli.build_parser()).items():
        yield [name]
        for sub in _choices(parser):
            yield [name, sub]


def test_the_verbs_are_the_tasks_verbs() -> None:
    parser = cli.build_parser()
    assert set(_choices(parser)) == VERBS
    assert set(_choices(_choices(parser)["build"])) == {"all", "layer", "functions"}
    assert set(_choices(_choices(parser)["validate"])) == {"all", "layer"}


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("verb", list(every_verb()), ids=" ".join)
def test_help_works_on_every_verb(
    verb: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*verb, flag]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: layerkit {' '.join(verb)} ")
    assert "--project-dir" in out


def test_top_level_help_lists_every_verb(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"    {verb} " in out for verb in VERBS)


def test_a_usage_mistake_exits_1_as_at_invs_door(capsys: pytest.CaptureFixture[str]) -> None:
    from invoke import Program

    from layerkit.tasks import collection

    assert cli.main(["build", "layer"]) == 1  # the layer name is missing
    assert "the following arguments are required: name" in capsys.readouterr().err
    with pytest.raises(SystemExit) as inv:
        Program(namespace=collection(), binary="inv").run(["inv", "build.layer"])
    assert inv.value.code == 1  # the same mistake at the other door
    assert cli.main(["--help"]) == 0


def test_an_input_error_is_one_paragraph_on_stderr_and_exit_1(
    make_project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project()
    assert cli.main(["--project-dir", str(root), "build", "layer", "nope"]) == 1
    out, err = capsys.readouterr()
    assert err == (
        "error: there is no layer 'nope'; the layers are: base, top (folders under layers/).\n"
    )
    assert out == ""


def test_not_a_project_is_one_paragraph_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["status", "--project-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    # issue 18: a layers/ folder is no longer required; the project is found by its template
    assert err.startswith(f"error: {tmp_path} is not in a layerkit project")
    assert err.count("\n") == 1


def test_status_without_a_lock_still_shows_the_manifest(
    make_project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project()
    assert cli.main(["--project-dir", str(root), "status"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{root / 'dist'} (python3.9-x86_64)\n")
    assert "note: freshness unknown:" in out
    assert "`layerkit lock`" in out  # issue 18: the front door in use names its own verbs


def test_clean_works_on_a_broken_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "dist" / "layers").mkdir(parents=True)
    (tmp_path / "dist" / "layers" / "x.zip").write_bytes(b"zip")
    assert cli.main(["--project-dir", str(tmp_path), "clean"]) == 0
    assert capsys.readouterr().out == f"removed: {tmp_path / 'dist'}\n"
    assert not (tmp_path / "dist" / "layers").exists()


def test_ctrl_c_exits_130_and_says_what_was_interrupted(
    make_project: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupted(*args: object, **kwargs: object) -> commands.DeployOutput:
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "deploy", interrupted)
    assert cli.main(["--project-dir", str(make_project()), "deploy"]) == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted during `layerkit --project-dir ")
    assert "a deploy rolls back what it changed" in err


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError


def test_a_closed_pipe_is_quiet(
    make_project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["--project-dir", str(make_project()), "status"]) == 0
    assert cli.main(["--help"]) == 0
    assert capsys.readouterr().err == ""


def test_validate_layer_verbose_reaches_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake(*args: object, **kwargs: object) -> None:
        seen.update(kwargs)

    monkeypatch.setattr(cli.commands, "validate_layer", fake)
    args = cli.build_parser().parse_args(["validate", "layer", "base", "-v"])
    args.run(args, cli.commands.QUIET)
    assert seen["verbose"] is True
