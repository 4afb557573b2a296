"""Installing a share of the lock into a staging folder: the only network I/O of a build.

Each distribution is installed exactly as locked (``--require-hashes``), without dependencies
(the partition decided those), for the target platform and interpreter, without bytecode (the
bytecode step compiles with the target interpreter later) and linked, not copied, from uv's
cache: hard links into uv's cache (uv copies instead when the cache is on another file system).
No byte is copied and a layer installs in a fraction of a second, so no later step may write
into an installed file: every change replaces the file instead (a new file renamed over the
link, as strip and this module's RECORD edit do; sources are unlinked, pycs are new files).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from layerkit.build.lock import LockedPackage
from layerkit.build.sdist import sdist_wheel
from layerkit.build.uv import PYPI_SIMPLE, Indexes, run_uv, target_args
from layerkit.errors import InstallError
from layerkit.runtime.target import Target


def requirement_lines(
    packages: Sequence[LockedPackage], target: Target | None = None, built: Path | None = None
) -> str:
    """A hash-pinned requirements file for exactly these locked distributions.

    A locked sdist is built into a wheel in ``built`` first (with the target interpreter, see
    build/sdist.py) and named by its path, pinned to the hash of that wheel.
    """
    lines = []
    for p in sorted(packages, key=lambda p: p.name):
        if p.is_sdist and target is not None and built is not None:
            wheel = sdist_wheel(p, target, built)
            digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
            lines.append(f"{p.name} @ {wheel.as_uri()} --hash=sha256:{digest}\n")
        else:
            lines.append(f"{p.pin} --hash=sha256:{p.sha256}\n")
    return "".join(lines)


def install_packages(
    packages: Sequence[LockedPackage],
    dest: Path,
    target: Target,
    indexes: Indexes | None = None,
) -> None:
    """Install ``packages`` into ``dest`` (created if needed) for ``target``.

    ``indexes`` are the project's (the lock's wheels may come from a private index); with a
    warm uv cache and ``UV_OFFLINE=1`` nothing is fetched. Leaves no uv ``.lock`` file and no
    ``bin/`` folder behind.
    """
    dest.mkdir(parents=True, exist_ok=True)
    if not packages:
        return
    with tempfile.TemporaryDirectory(prefix="layerkit-install-") as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(requirement_lines(packages, target, Path(tmp)), encoding="utf-8")
        proc = run_uv(
            [
                "pip",
                "install",
                "--target",
                str(dest),
                "--no-deps",
                "--require-hashes",
                "--link-mode",
                "hardlink",
                "--no-compile",
                *target_args(target),
                *(indexes.args() if indexes is not None else []),
                "-r",
                str(req),
            ],
            cwd=Path(tmp),
        )
    if proc.returncode != 0:
        names = ", ".join(p.pin for p in packages)
        raise InstallError(
            f"installing {names} for {target.key} failed; uv said:\n{proc.stderr.strip()}\n"
            + _install_hint(proc.stderr, indexes)
        )
    tidy_target(dest)


def tidy_target(dest: Path) -> None:
    """Remove uv's ``.lock`` and ``bin/`` from a ``--target`` folder, and ``bin/`` from RECORDs.

    A RECORD is replaced, never written through: it may be a hard link into uv's cache.
    """
    (dest / ".lock").unlink(missing_ok=True)
    shutil.rmtree(dest / "bin", ignore_errors=True)
    for record in dest.glob("*.dist-info/RECORD"):
        text = record.read_text(encoding="utf-8")
        kept = drop_script_entries(text)
        if kept == text:
            continue
        tmp = record.with_name("RECORD.layerkit-tmp")
        tmp.write_text(kept, encoding="utf-8")
        os.replace(tmp, record)


def drop_script_entries(record: str) -> str:
    """RECORD without its ``bin/`` lines.

    The installer rewrites console scripts' shebangs to the interpreter that ran it, so their
    hashes differ from machine to machine; the scripts themselves are not shipped.
    """
    kept = [line for line in record.splitlines(keepends=True) if not line.startswith("bin/")]
    return "".join(kept)


def _install_hint(stderr: str, indexes: Indexes | None) -> str:
    """The fix for a failed install: offline without the wheels, an index, or a stale lock."""
    asked = indexes.shown() if indexes is not None else PYPI_SIMPLE
    if "Network connectivity is disabled" in stderr:
        return (
            "uv runs offline (UV_OFFLINE is set) and its cache lacks these wheels: build once "
            f"online (indexes: {asked}) to warm the cache, then offline builds install from it."
        )
    if any(code in stderr for code in ("401", "403")):
        return (
            f"An index refused the request ({asked}): give uv its credentials (netrc, keyring, "
            "UV_INDEX_<NAME>_USERNAME/PASSWORD or ${VAR} in the URL) and build again."
        )
    if "Failed to fetch" in stderr or "error sending request" in stderr:
        return f"An index could not be reached ({asked}); check the URL and the network."
    return "If a hash does not match, the lock is out of date with its index: run `inv lock`."
