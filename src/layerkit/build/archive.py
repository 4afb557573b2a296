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
import struct
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from zipfile import ZIP64_LIMIT, ZIP_FILECOUNT_LIMIT, ZipInfo

from layerkit.build.memo import Memo, NoMemo, memo_key
from layerkit.digest import sha256_file
from layerkit.errors import BuildError

DEFAULT_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip can store
CHUNK = 1 << 20
LEVEL = zlib.Z_DEFAULT_COMPRESSION
#: Files this large or larger are deflated once and kept in the step cache.
MEMO_MIN = 16 * 1024
_UTF8_NAME = 0x800  # general purpose flag: the file name is UTF-8


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


def _zip_info(name: str, path: Path, date_time: tuple[int, int, int, int, int, int]) -> ZipInfo:
    """The entry for ``path``: fixed time, unix, mode 0644 or 0755, deflated."""
    mode = path.stat().st_mode
    perm = 0o755 if mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH) else 0o644
    info = ZipInfo(name, date_time=date_time)
    info.external_attr = (stat.S_IFREG | perm) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # unix, whatever the host
    return info


def _deflate(path: Path, memo: Memo) -> tuple[bytes, int, int]:
    """``path`` compressed exactly as :mod:`zipfile` does it: (data, crc32, size).

    Raw deflate at the default level, fed in the same 1 MiB pieces :func:`write_zip` used to
    write through ``ZipFile.open``, so the bytes are the same. zlib releases the GIL, so
    several files compress at once on several cores. A file of ``MEMO_MIN`` bytes or more is
    looked up in the step cache by its sha256 (and zlib's version and level) first.
    """
    content = path.read_bytes()
    crc, size = zlib.crc32(content), len(content)
    key = None
    if size >= MEMO_MIN:
        digest = hashlib.sha256(content).digest()
        key = memo_key("deflate", zlib.ZLIB_RUNTIME_VERSION, str(LEVEL), str(CHUNK), digest)
        if (cached := memo.get(key)) is not None:
            return cached, crc, size
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    view = memoryview(content)
    parts = [compressor.compress(view[i : i + CHUNK]) for i in range(0, size, CHUNK)]
    parts.append(compressor.flush())
    data = b"".join(parts)
    if key is not None:
        memo.put(key, data)
    return data, crc, size


def _central_entry(info: ZipInfo) -> bytes:
    """The central directory record of an entry, as ``ZipFile`` writes it (no zip64)."""
    dt = info.date_time
    dosdate = (dt[0] - 1980) << 9 | dt[1] << 5 | dt[2]
    dostime = dt[3] << 11 | dt[4] << 5 | (dt[5] // 2)
    try:
        filename, flag_bits = info.filename.encode("ascii"), info.flag_bits
    except UnicodeEncodeError:
        filename, flag_bits = info.filename.encode("utf-8"), info.flag_bits | _UTF8_NAME
    record = struct.pack(
        zipfile.structCentralDir,
        zipfile.stringCentralDir,
        info.create_version,
        info.create_system,
        info.extract_version,
        info.reserved,
        flag_bits,
        info.compress_type,
        dostime,
        dosdate,
        info.CRC,
        info.compress_size,
        info.file_size,
        len(filename),
        len(info.extra),
        len(info.comment),
        0,
        info.internal_attr,
        info.external_attr,
        info.header_offset,
    )
    return record + filename + info.extra + info.comment


def _deflated_in_order(
    paths: Sequence[Path], pool: ThreadPoolExecutor, ahead: int, memo: Memo
) -> Iterator[tuple[bytes, int, int]]:
    """Each path deflated, in order, at most ``ahead`` files compressed ahead of the writer."""
    pending: deque[Future[tuple[bytes, int, int]]] = deque()
    for path in paths:
        pending.append(pool.submit(_deflate, path, memo))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _write_entries(
    files: Sequence[tuple[str, Path]],
    out: BinaryIO,
    date_time: tuple[int, int, int, int, int, int],
    workers: int,
    memo: Memo,
) -> int:
    """Write every entry, its local header and data, then the central directory; unzipped bytes.

    The layout is the one ``ZipFile`` writes to a seekable file; the files are compressed by
    ``workers`` threads at once.
    """
    entries = []
    unzipped = 0
    with ThreadPoolExecutor(max(1, workers)) as pool:
        deflated = _deflated_in_order([p for _, p in files], pool, 4 * max(1, workers), memo)
        for (name, path), (data, crc, size) in zip(files, deflated, strict=True):
            if size > ZIP64_LIMIT or len(data) > ZIP64_LIMIT:
                raise BuildError(
                    f"{path} is {size} bytes, more than a zip without zip64 holds; no Lambda "
                    "artifact can be that large: remove it with a [slim] remove pattern."
                )
            info = _zip_info(name, path, date_time)
            info.CRC, info.compress_size, info.file_size = crc, len(data), size
            info.header_offset = out.tell()
            out.write(info.FileHeader(False))
            out.write(data)
            entries.append(info)
            unzipped += size
    start = out.tell()
    for info in entries:
        out.write(_central_entry(info))
    size = out.tell() - start
    count = len(entries)
    out.write(
        struct.pack(
            zipfile.structEndArchive, zipfile.stringEndArchive, 0, 0, count, count, size, start, 0
        )
    )
    return unzipped


def write_zip(
    root: Path,
    dest: Path,
    *,
    epoch: int | None = None,
    workers: int | None = None,
    memo: Memo | None = None,
) -> ArchiveInfo:
    """Zip the tree below ``root`` into ``dest`` deterministically and atomically.

    ``workers`` threads compress at once (default: one per core); ``memo`` is the step cache
    large files are deflated through (:mod:`layerkit.build.memo`). Neither changes a byte.
    """
    date_time = zip_date_time(epoch)
    files = collect_files(root)
    for name, _ in files:
        check_member_name(name)
    if len(files) > ZIP_FILECOUNT_LIMIT or sum(p.stat().st_size for _, p in files) > ZIP64_LIMIT:
        raise BuildError(
            f"{root} holds {len(files)} files: more (in number or bytes) than layerkit writes "
            "into a zip without zip64 extensions; remove what the layer does not need with "
            "[slim] remove patterns."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as out:
            unzipped = _write_entries(
                files, out, date_time, workers or os.cpu_count() or 1, memo or NoMemo()
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return ArchiveInfo(dest, sha256_file(dest), dest.stat().st_size, unzipped, len(files))
