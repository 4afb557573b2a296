from __future__ import annotations

import io
import re
from dataclasses import dataclass

import pytest
from rich.console import Console

from layerkit.build.pipeline import BuildEvent
from layerkit.report.console import Level, ProgressEvent, Terminal
from layerkit.report.data import build_report
from tests.unit.report.manifests import make_manifest

WARNING = (
    "python3.9 is deprecated by AWS Lambda (deprecation 2025-12-15, functions can no longer be "
    "created 2026-06-01, no longer updated 2026-07-01): move the template's Runtime to "
    "python3.12 or python3.13, rebuild with `inv build.all`, then validate with `inv validate`; "
    "until then every deploy repeats this warning and the release records it, which is noisy."
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class CountedEvent:
    """The event shape the restructured build sends: counts and time included."""

    artifact: str
    step: str
    detail: str = ""
    done: int | None = None
    total: int | None = None
    elapsed: float | None = None


def terminal(
    *,
    tty: bool,
    live: bool | None = False,
    verbose: bool = False,
    clock: Clock | None = None,
    width: int = 100,
) -> tuple[Terminal, io.StringIO]:
    out = io.StringIO()
    console = Console(
        file=out, width=width, force_terminal=tty, color_system="standard" if tty else None
    )
    term = Terminal(console, live=live, verbose=verbose, clock=clock or Clock(), wrap=tty)
    return term, out


def test_both_event_shapes_satisfy_the_protocol() -> None:
    assert isinstance(BuildEvent("layer a", "install", "3 distributions"), ProgressEvent)
    assert isinstance(CountedEvent("layer a", "install"), ProgressEvent)


def test_plain_lines_have_step_counts_and_time() -> None:
    clock = Clock()
    term, out = terminal(tty=False, clock=clock)
    with term.tracking("build python3.9-x86_64", total=2):
        term.progress(BuildEvent("layer core", "install", "6 distributions"))
        clock.now += 12.5
        term.progress(BuildEvent("layer core", "done", "96.9 MB unzipped"))
        term.progress(CountedEvent("layer ml", "done", "135.0 MB", done=2, total=2, elapsed=40.0))
    lines = out.getvalue().splitlines()
    assert lines == [
        "[layer core] install: 6 distributions  (0/2)",
        "[layer core] done: 96.9 MB unzipped  (1/2, 12.5s)",
        "[layer ml] done: 135.0 MB  (2/2, 40.0s)",
    ]
    assert "\x1b[" not in out.getvalue()  # a pipe or CI log: no colour, no cursor moves


def test_the_same_fresh_message_for_nine_artifacts_is_one_line() -> None:
    term, out = terminal(tty=False)
    with term.tracking("validate"):
        for i in range(9):
            term.progress(BuildEvent(f"layer l{i}", "fresh", "up to date"))
        # validation then builds each layer on its own: the same news again, not printed again
        for i in range(9):
            term.progress(BuildEvent(f"layer l{i}", "fresh", "up to date"))
    text = out.getvalue()
    assert text.count("up to date") == 1
    assert re.match(
        r"\[9 artifacts\] fresh: up to date: layer l0, layer l1, .* layer l8",
        text.replace("\n", " "),
    )


def test_a_single_fresh_artifact_reads_as_usual() -> None:
    term, out = terminal(tty=False)
    with term.tracking("build"):
        term.progress(BuildEvent("layer a", "fresh", "up to date"))
        term.progress(BuildEvent("layer b", "install", "2 distributions"))
    assert out.getvalue().splitlines()[0] == "[layer a] fresh: up to date"


def test_warnings_wrap_to_the_terminal_width() -> None:
    term, out = terminal(tty=True)
    term.warning(WARNING)
    term.warning(WARNING)  # an exact repeat is said once
    lines = strip_ansi(out.getvalue()).splitlines()
    assert len(lines) == 4
    assert all(len(line) <= 100 for line in lines)
    assert lines[0].startswith("warning: python3.9 is deprecated")
    assert " ".join(line.strip() for line in lines) == f"warning: {WARNING}"


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_a_log_gets_one_line_per_event_and_no_trailing_spaces() -> None:
    # a CI log or a pipe: nothing is broken at the width, however long
    term, out = terminal(tty=False, width=40)
    long_detail = "all: 188 modules with python3.9 (unchecked-hash), +2.1 MB"
    term.progress(BuildEvent("layer aws-utilities", "bytecode", long_detail))
    term.step("upload aws-utilities.zip (2,650,636 bytes) -> artifacts/" + "x" * 60)
    term.warning(WARNING)
    term.table(["artifact", "state"], [["layers/aws-utilities.zip", "built"], ["f", "fresh"]])
    lines = out.getvalue().splitlines()
    assert lines[0] == f"[layer aws-utilities] bytecode: {long_detail}"
    assert lines[1].startswith("upload aws-utilities.zip")
    assert lines[1].endswith("x" * 60)
    assert lines[2] == f"warning: {WARNING}"
    assert lines[3:] == [
        "artifact                  state",
        "------------------------- -----",
        "layers/aws-utilities.zip  built",
        "f                         fresh",
    ]
    assert not [line for line in lines if line != line.rstrip()]


def test_a_terminal_folds_long_lines_at_its_width() -> None:
    term, out = terminal(tty=True, width=40)
    term.progress(BuildEvent("layer aws-utilities", "bytecode", "x" * 60))
    lines = strip_ansi(out.getvalue()).splitlines()
    assert len(lines) > 1
    assert all(len(line) <= 40 for line in lines)


def test_colour_on_a_terminal_not_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    term, out = terminal(tty=True)
    term.message("over budget", Level.ERROR)
    assert "\x1b[" in out.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    term, out = terminal(tty=True)
    term.message("over budget", Level.ERROR)
    plain = out.getvalue().replace("\x1b[1m", "").replace("\x1b[0m", "")  # bold stays
    assert "\x1b[" not in plain
    assert "error: over budget" in plain


def test_force_color_colours_a_pipe_and_ci_gets_plain_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("TTY_INTERACTIVE", raising=False)
    out = io.StringIO()
    term = Terminal(Console(file=out, width=100))
    assert term.console.is_terminal  # FORCE_COLOR: colour even into a pipe
    assert not term.live  # but a CI log gets lines, not redraws
    monkeypatch.delenv("CI")
    assert Terminal(Console(file=io.StringIO(), width=100)).live


def test_live_view_has_a_line_per_artifact_with_step_time_and_counts() -> None:
    clock = Clock()
    term, out = terminal(tty=True, live=True, clock=clock)
    with term.tracking("build python3.9-x86_64", total=3):
        term.progress(BuildEvent("layer core-data-science", "install", "6 distributions"))
        term.progress(BuildEvent("layer ml-libraries", "slim", "12 passes"))
        clock.now += 21.0
        term.progress(BuildEvent("layer core-data-science", "done", "96.9 MB"))
        clock.now += 4.0
    final = out.getvalue().split("build python3.9-x86_64")[-1]  # the last frame drawn
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", final)
    assert "1/3" in plain
    assert "00:25" in plain
    assert re.search(r"✓ layer core-data-science\s+done\s+96\.9 MB\s+21\.0s", plain)
    assert re.search(r"… layer ml-libraries\s+slim\s+12 passes\s+25\.0s", plain)


def test_deploy_steps_stream_with_their_number() -> None:
    @dataclass(frozen=True)
    class Step:
        name: str

        def describe(self) -> str:
            return f"publish layer {self.name}"

    term, out = terminal(tty=False)
    with term.tracking("deploy local", total=2):
        term.step(Step("core"))
        first = out.getvalue()
        term.step("move alias live")
    assert first == "[1/2] publish layer core\n"  # printed before the next step starts
    assert out.getvalue().splitlines()[1] == "[2/2] move alias live"


def test_tables_fit_100_columns_on_a_wide_terminal() -> None:
    out = io.StringIO()
    term = Terminal(Console(file=out, width=200, force_terminal=False), live=False)
    term.table(["artifact", "size"], [["layers/" + "x" * 150 + ".zip", "1.0"]], title="summary")
    assert max(len(line) for line in out.getvalue().splitlines()) <= 100


def test_report_details_only_with_verbose() -> None:
    report = build_report(make_manifest())
    term, out = terminal(tty=False)
    term.report(report)
    assert "bytecode" not in out.getvalue()
    term, out = terminal(tty=False, verbose=True)
    term.report(report)
    assert "bytecode" in out.getvalue()


def test_outside_a_tracked_block_nothing_is_held_back() -> None:
    term, out = terminal(tty=False)
    term.progress(BuildEvent("layer a", "fresh", "up to date"))
    assert out.getvalue() == "[layer a] fresh: up to date\n"
    term.progress(BuildEvent("layer a", "fresh", "up to date"))  # said already
    assert out.getvalue().count("up to date") == 1


def test_names_are_never_read_as_markup_and_failures_are_red() -> None:
    term, out = terminal(tty=True)
    term.table(["artifact", "status"], [["layers/[bold]x.zip", "OVER"]])
    text = out.getvalue()
    assert "layers/[bold]x.zip" in text
    assert "\x1b[1;31mOVER" in text
