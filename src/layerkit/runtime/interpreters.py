"""Finding a target runtime's interpreter (``python3.9`` for the python3.9 target) on this machine.

Bytecode, the import check, the smoke tests and the sandbox must run on the *target* Python, so
layerkit looks for it in three places, in this order, and takes the first that really runs as
that version:

1. ``python3.9`` on PATH (a pyenv shim included: it is asked from the project folder, where a
   ``.python-version`` picks the version);
2. pyenv's installs, ``$PYENV_ROOT/versions/3.9.*/bin/python3.9`` (``~/.pyenv`` by default),
   newest first, even when pyenv is not on PATH;
3. a uv-managed Python: ``uv python find 3.9`` (after ``uv python install 3.9``).

The name is resolved to the real executable once, so that pyenv shims (which pick a version by the
working directory) keep working from temporary folders. The machine is reached only through
:class:`Tools`, so tests pass fakes and start no interpreter.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from layerkit.errors import InterpreterNotFoundError

if TYPE_CHECKING:
    from layerkit.runtime.target import Target

#: Prints the interpreter's real path and its (major, minor) version.
PROBE = "import sys; print(sys.executable); print(sys.version_info[:2])"

Run = Callable[[Sequence[str], "Path | None"], tuple[int, str]]


def run_command(args: Sequence[str], cwd: Path | None) -> tuple[int, str]:
    """Run ``args`` in ``cwd``; the exit code and stdout (127 when it cannot be started)."""
    try:
        proc = subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, check=False)
    except OSError:
        return 127, ""
    return proc.returncode, proc.stdout


def uv_executable() -> str | None:
    """The uv that came with layerkit (the ``uv`` package), else ``uv`` on PATH, else None."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


@dataclass(frozen=True)
class Tools:
    """How discovery reaches the machine: PATH lookup, running a command, the environment."""

    which: Callable[[str], str | None] = shutil.which
    run: Run = run_command
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    home: Callable[[], Path] = Path.home
    uv: Callable[[], str | None] = uv_executable


def pyenv_candidates(version: str, tools: Tools) -> tuple[Path, ...]:
    """The pyenv installs of ``version`` (``"3.9"``), newest patch release first."""
    root = Path(tools.environ.get("PYENV_ROOT") or tools.home() / ".pyenv") / "versions"
    pattern = re.compile(rf"^{re.escape(version)}(?:\.(\d+))?$")
    found = []
    for folder in sorted(root.iterdir()) if root.is_dir() else ():
        match = pattern.match(folder.name)
        executable = folder / "bin" / f"python{version}"
        if match and executable.exists():
            found.append((int(match.group(1) or -1), executable))
    return tuple(path for _, path in sorted(found, reverse=True))


def uv_candidate(version: str, tools: Tools) -> Path | None:
    """The uv-managed (or uv-known) Python ``version``, from ``uv python find``."""
    uv = tools.uv()
    if uv is None:
        return None
    code, out = tools.run([uv, "python", "find", "--no-config", version], None)
    path = out.strip().splitlines()[-1] if code == 0 and out.strip() else ""
    return Path(path) if path else None


def _candidates(version: str, tools: Tools, cwd: Path | None) -> Iterator[tuple[str, Path | None]]:
    """Each executable worth probing and the folder to probe it from, in order of preference."""
    on_path = tools.which(f"python{version}")
    if on_path is not None:
        # the project folder first: a pyenv shim picks versions by the .python-version there
        for folder in dict.fromkeys((cwd, None)):
            yield on_path, folder
    for path in pyenv_candidates(version, tools):
        yield str(path), None
    found = uv_candidate(version, tools)
    if found is not None:
        yield str(found), None


def probe(executable: str, version: tuple[int, int], tools: Tools, cwd: Path | None) -> Path | None:
    """The real path of ``executable`` if it runs and is Python ``version``, else None."""
    code, out = tools.run([executable, "-c", PROBE], cwd)
    lines = out.split("\n")
    if code == 0 and len(lines) >= 2 and lines[1] == str(version):
        return Path(lines[0])
    return None


def not_found_message(runtime: str, version: str) -> str:
    """The one paragraph that says the interpreter is missing and how to install one."""
    return (
        f"the {runtime} target needs a Python {version} interpreter to compile bytecode and test "
        f"imports, and none runs on this machine: python{version} is not on PATH, not in pyenv "
        f"($PYENV_ROOT/versions) and not managed by uv. Install one with `uv python install "
        f"{version}` (layerkit then finds it with `uv python find {version}`), or with `pyenv "
        f"install {version}` (and list it in .python-version), and try again."
    )


def find_interpreter(
    target: Target, cwd: Path | None = None, *, tools: Tools | None = None
) -> Path:
    """Return the absolute path of the target runtime's interpreter on this machine.

    PATH first, then pyenv's installs, then uv's (see the module docstring); raises
    InterpreterNotFoundError saying how to install one when none runs as the target's version.
    """
    tools = tools or Tools()
    version = target.python_version_text
    for executable, folder in _candidates(version, tools, cwd):
        found = probe(executable, target.python_version, tools, folder)
        if found is not None:
            return found
    raise InterpreterNotFoundError(not_found_message(target.runtime, version))
