"""Installing the runtime's own SDK (Lambda's /var/runtime) with the build's uv.

:mod:`layerkit.runtime.sdk` keeps the versions and the cache; this module gives it the installer:
uv, for the target's platform and Python version (real wheels, never the host's), as every other
install of the build.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from layerkit.build.bytecode import compile_tree
from layerkit.build.install import tidy_target
from layerkit.build.uv import run_uv, target_args
from layerkit.errors import InstallError, InterpreterNotFoundError
from layerkit.runtime.sdk import SDK_SOURCE, cached_sdk
from layerkit.runtime.target import Target, find_interpreter


def install_sdk(requirements: Sequence[str], target: Target, dest: Path) -> None:
    """Install ``requirements`` (with their dependencies, resolved for ``target``) into ``dest``.

    Copied, not linked, from uv's cache: the folder is made read-only afterwards, which must not
    change uv's cached files. Compiled to bytecode by the target's Python version, as
    ``/var/runtime`` is (a ``.pyc`` does not depend on the CPU, so this works for arm64 too).
    """
    with tempfile.TemporaryDirectory(prefix="layerkit-sdk-") as tmp:
        proc = run_uv(
            [
                "pip",
                "install",
                "--target",
                str(dest),
                "--link-mode",
                "copy",
                "--no-compile",
                *target_args(target),
                *requirements,
            ],
            cwd=Path(tmp),
        )
    if proc.returncode != 0:
        raise InstallError(
            f"installing the {target.runtime} runtime's own SDK ({', '.join(requirements)}, what "
            f"Lambda keeps in /var/runtime; versions from {SDK_SOURCE}) for {target.key} failed; "
            f"uv said:\n{proc.stderr.strip()}\nIt is installed once per target and cached; "
            "check that PyPI (or your index) is reachable, then run the command again."
        )
    tidy_target(dest)
    try:  # /var/runtime ships bytecode: without it every cold import of boto3 compiles it
        interpreter = find_interpreter(target)
    except InterpreterNotFoundError:
        return  # still correct, only slower to import; the sandbox needs this interpreter anyway
    compile_tree(dest, interpreter, "all", dest_dir="/var/runtime")


def runtime_sdk_dir(target: Target, cache: Path) -> Path:
    """The folder holding ``target``'s runtime SDK (boto3, botocore and their dependencies).

    Installed the first time with uv into ``<cache>/runtime-sdk/`` and reused afterwards; pass
    it as ``runtime_sdk=`` to :func:`layerkit.runtime.sandbox.prepare` or ``invoke_zips``.
    """
    return cached_sdk(target, cache, install_sdk)
