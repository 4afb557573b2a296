"""Installing a share of the lock into a staging folder: the only network I/O of a build.

Each distribution is installed exactly as locked (``--require-hashes``), without dependencies
(the partition decided those), for the target platform and interpreter, without bytecode (the
bytecode step compiles with the target interpreter later) and as real copies, never hard links
into uv's cache, so later steps may edit files freely.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from layerkit.build.lock import LockedPackage
from layerkit.build.uv import run_uv, target_args
from layerkit.errors import InstallError
from layerkit.runtime.target import Target


def requirement_lines(packages: Sequence[LockedPackage]) -> str:
    """A hash-pinned requirements file for exactly these locked distributions."""
    return "".join(
        f"{p.pin} --hash=sha256:{p.sha256}\n" for p in sorted(packages, key=lambda p: p.name)
    )


def install_packages(packages: Sequence[LockedPackage], dest: Path, target: Target) -> None:
    """Install ``packages`` into ``dest`` (created if needed) for ``target``.

    Leaves no uv ``.lock`` file and no ``bin/`` folder behind.
    """
    dest.mkdir(parents=True, exist_ok=True)
    if not packages:
        return
    with tempfile.TemporaryDirectory(prefix="layerkit-install-") as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(requirement_lines(packages), encoding="utf-8")
        proc = run_uv(
            [
                "pip",
                "install",
                "--target",
                str(dest),
                "--no-deps",
                "--require-hashes",
                "--link-mode",
                "copy",
                "--no-compile",
                *target_args(target),
                "-r",
                str(req),
            ],
            cwd=Path(tmp),
        )
    if proc.returncode != 0:
        names = ", ".join(p.pin for p in packages)
        raise InstallError(
            f"installing {names} for {target.key} failed; uv said:\n{proc.stderr.strip()}\n"
            "If a hash does not match, the lock is out of date with PyPI: run `inv lock`."
        )
    (dest / ".lock").unlink(missing_ok=True)
    shutil.rmtree(dest / "bin", ignore_errors=True)
    for record in dest.glob("*.dist-info/RECORD"):
        record.write_text(drop_script_entries(record.read_text(encoding="utf-8")), encoding="utf-8")


def drop_script_entries(record: str) -> str:
    """RECORD without its ``bin/`` lines.

    The installer rewrites console scripts' shebangs to the interpreter that ran it, so their
    hashes differ from machine to machine; the scripts themselves are not shipped.
    """
    kept = [line for line in record.splitlines(keepends=True) if not line.startswith("bin/")]
    return "".join(kept)
