"""Both front doors say the same help: `layerkit VERB --help` and `inv TASK --help`."""

from __future__ import annotations

import pytest
from invoke import Program

from layerkit import cli
from layerkit.helptext import HELP
from layerkit.tasks import ns


def words(text: str) -> str:
    return " ".join(text.split())


def cli_help(verb: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert cli.main([*verb.split(), "--help"]) == 0
    return words(capsys.readouterr().out)


def task_help(verb: str, capsys: pytest.CaptureFixture[str]) -> str:
    name = verb.replace(" ", ".")
    try:
        Program(namespace=ns, binary="inv[oke]").run(["inv", name, "--help"], exit=False)
    finally:
        for each in ns.task_names:  # invoke pops every task's help as it parses: restore it
            ns[each].help = dict(ns[each].saved_help)
    return words(capsys.readouterr().out)


def test_every_verb_of_both_front_doors_has_its_help_in_one_place() -> None:
    assert {v.replace(" ", ".") for v in HELP} == set(ns.task_names)


@pytest.mark.parametrize("verb", sorted(HELP))
def test_layerkit_and_invoke_say_the_same_help(
    verb: str, capsys: pytest.CaptureFixture[str]
) -> None:
    by_cli, by_task = cli_help(verb, capsys), task_help(verb, capsys)
    said = HELP[verb]
    assert words(said.summary) in by_cli
    assert words(said.summary) in by_task
    for name, text in said.options.items():
        # argparse and invoke wrap differently; the words are the same
        assert words(text) in by_cli, (verb, name)
        assert words(text) in by_task, (verb, name)
    t = ns[verb.replace(" ", ".")]
    assert set(t.saved_help) == set(said.options)  # the task documents exactly these


@pytest.mark.parametrize("verb", ["build layer", "validate layer", "invoke", "upgrade-runtime"])
def test_invokes_usage_line_shows_the_positional_arguments(
    verb: str, capsys: pytest.CaptureFixture[str]
) -> None:
    usage = task_help(verb, capsys).split(" Docstring:")[0]
    positional = ns[verb.replace(" ", ".")].positional
    assert positional
    for name in positional:
        assert f"[--options] {name.upper()}" in usage or f" {name.upper()} " in usage
    # argparse shows it too: the same argument, by the same name
    assert all(name in cli_help(verb, capsys) for name in positional)
