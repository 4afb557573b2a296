"""Running uv: the one place layerkit starts the resolver/installer, always with argument lists."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from layerkit.errors import LayerkitError
from layerkit.runtime.interpreters import uv_executable
from layerkit.runtime.target import Target


def uv_binary() -> str:
    """The uv executable: the one shipped with the ``uv`` package layerkit depends on."""
    found = uv_executable()
    if found is None:
        raise LayerkitError(
            "uv is not installed; layerkit resolves and installs with uv. Install the project "
            "(`python -m pip install -e .`), which brings uv with it."
        )
    return found


def target_args(target: Target, sdists: Iterable[str] = ()) -> list[str]:
    """Arguments that make uv resolve and install for the target, never for the host.

    Wheels only, except for the distributions in ``sdists`` (a layer's ``allow-sdist``), which
    uv then takes from their source distribution. The Python version carries the runtime's
    patch: ``3.9`` would mean 3.9.0 to uv.
    """
    args = [
        "--python-platform",
        target.uv_platform,
        "--python-version",
        target.python_full_version,
        "--only-binary",
        ":all:",
        # uv needs some interpreter to run; the markers come from --python-version/-platform.
        "--python",
        sys.executable,
    ]
    for name in sorted(sdists):
        args += ["--no-binary", name]
    return args


def run_uv(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``uv ARGS`` in ``cwd``; never downloads interpreters; returns the finished process.

    ``--no-config``: a user's or project's uv.toml (annotation style, index, resolution
    strategy) must not change what a lock or a build contains from one machine to the next.
    """
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    return subprocess.run(
        [uv_binary(), "--no-config", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
