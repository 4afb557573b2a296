"""Deterministic zip archives: the same tree always gives the same bytes.

Entries are sorted, timestamps fixed (``SOURCE_DATE_EPOCH`` is honoured, as reproducible-builds
tools do), modes normalised to 0644 (0755 for executables), and only regular files are stored: a
symlink, an absolute path or a ``..`` component is refused. The zip is written next to its
destination under a temporary name and renamed into place, so an interrupted build never leaves a
half-written archive under the real name.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from layerkit.errors import BuildError

DEFAULT_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip can store
CHUNK = 1 << 20


@dataclass(frozen=True)
class ArchiveInfo:
    """What was written."""

    path: Path
    sha256: str
    zipped_bytes: int
    unzipped_bytes: int
    files: int


def zip_date_time(epoch: int | None = None) -> tuple[int, int, int, int, int, int]:
    """The fixed entry timestamp: ``SOURCE_DATE_EPOCH`` if set, else 1980-01-01 (UTC)."""
    if epoch is None:
        epoch = int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_EPOCH))
    epoch = max(epoch, DEFAULT_EPOCH)
    return time.gmtime(epoch)[:6]  # type: ignore[return-value]


def collect_files(root: Path) -> list[tuple[str, Path]]:
    """Every regular file below ``root`` as (archive name, path), sorted by name.

    Raises BuildError for symlinks (Lambda and reproducibility both want plain files).
    """
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for name in dirnames + filenames:
            path = base / name
            if path.is_symlink():
                raise BuildError(
                    f"{path} is a symbolic link; layer and function archives hold regular files "
                    "only. Replace the link with a copy of its target or remove it."
                )
        for name in filenames:
            path = base / name
            relative = path.relative_to(root).as_posix()
            try:
                relative.encode("utf-8")
            except UnicodeEncodeError:
                raise BuildError(
                    f"{path!r}: the file name is not valid UTF-8, which a zip cannot record "
                    "portably; rename the file (or remove it with a [slim] remove pattern)."
                ) from None
            found.append((relative, path))
    found.sort()
    return found


def check_member_name(name: str) -> None:
    """Refuse absolute paths and ``..`` components in an archive name."""
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or name.startswith("\\"):
        raise BuildError(f"refusing to archive {name!r}: absolute or '..' paths are not allowed.")


def sha256_file(path: Path) -> str:
    """The sha256 of a file, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_zip(root: Path, dest: Path, *, epoch: int | None = None) -> ArchiveInfo:
    """Zip the tree below ``root`` into ``dest`` deterministically and atomically."""
    date_time = zip_date_time(epoch)
    files = collect_files(root)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    unzipped = 0
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, path in files:
                check_member_name(name)
                mode = path.stat().st_mode
                perm = 0o755 if mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH) else 0o644
                info = zipfile.ZipInfo(name, date_time=date_time)
                info.external_attr = (stat.S_IFREG | perm) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # unix, whatever the host
                with path.open("rb") as src, zf.open(info, "w") as out:
                    while chunk := src.read(CHUNK):
                        out.write(chunk)
                        unzipped += len(chunk)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return ArchiveInfo(dest, sha256_file(dest), dest.stat().st_size, unzipped, len(files))
