"""What a CI log gets: `layerkit` with stdout a pipe writes one event per line, no trailing spaces.

A small SAM project (the second project's: one layer carrying six from PyPI, one function) is
locked, built and deployed to the built-in local stage by the real `layerkit` command in a child
process whose stdout and stderr are pipes, with COLUMNS=40 so that any hard wrap would show.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import layerkit
from tests.integration.test_second_project import write_second_project

pytestmark = pytest.mark.integration

#: A progress line: ``[layer six-layer] bytecode: ...`` or ``[function hello_world] done: ...``.
EVENT = re.compile(r"^\[(layer|function) [\w-]+\] [\w-]+(: .+)?$")
#: A deploy step: ``[3/8] upload hello_world.zip (705 bytes) -> artifacts/<sha256>.zip``.
STEP = re.compile(r"^\[\d+/\d+\] \S.*$")


def piped(project: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    src = str(Path(layerkit.__file__).resolve().parents[1])
    env |= {"COLUMNS": "40", "PYTHONPATH": os.pathsep.join([src, env.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "layerkit", "--project-dir", str(project), *argv],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc


def assert_log_lines(text: str) -> list[str]:
    lines = text.splitlines()
    assert lines, "nothing was written"
    trailing = [line for line in lines if line != line.rstrip()]
    assert not trailing, f"lines ending with spaces: {trailing}"
    assert "\x1b[" not in text  # a pipe gets no colour codes
    return lines


def test_a_piped_build_and_deploy_write_one_line_per_event(tmp_path: Path) -> None:
    project = write_second_project(tmp_path)
    piped(project, "lock")

    build = assert_log_lines(piped(project, "build", "all").stdout)
    events = [line for line in build if line.startswith("[")]
    assert all(EVENT.match(line) for line in events), events
    # the long ones stay whole: the bytecode line, the zip line, the artifact's done line
    bytecode = next(line for line in events if line.startswith("[layer six-layer] bytecode: "))
    assert re.search(r"module with python3\.12 \(\w[\w-]*\), [+-]\d+\.\d MB$", bytecode)
    assert len(bytecode) > 40  # longer than the width: it would have been broken
    done = next(line for line in events if line.startswith("[layer six-layer] done: "))
    assert re.search(r"MB zipped {2}\(\d+\.\ds\)$", done)
    # every line is an event, the folder, or the summary table (a row per artifact, unbroken)
    table = build[build.index(next(x for x in build if x.startswith("artifact "))) :]
    assert len(table) == 2 + 3  # header, rule, the layer, the two functions
    assert table[2].startswith("layers/six-layer.zip ")  # layers first
    assert table[3].startswith("functions/audit.zip ")
    assert table[4].startswith("functions/hello_world.zip ")
    assert re.match(r"^-+( -+)+$", table[1])

    deploy = assert_log_lines(piped(project, "deploy").stdout)
    steps = [line for line in deploy if STEP.match(line)]
    assert steps, deploy
    upload = next(line for line in steps if " upload six-layer.zip " in line)
    assert re.search(r"\(\d[\d,]* bytes\) -> artifacts/[0-9a-f]{64}\.zip$", upload)
    total = int(steps[0].split("/")[1].split("]")[0])
    assert len(steps) == total  # each step one line
    assert any(line.startswith("local stage: moto on http://127.0.0.1:") for line in deploy)
    assert deploy[-1].startswith("release ")
    assert deploy[-1].endswith(" recorded")
