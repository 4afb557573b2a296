"""The step cache: results of the build's pure steps, kept by the hash of all they depend on.

Three steps of a layer build are pure functions of file contents: compiling a module (its
source, where it lives at run time, the target interpreter's compiler, the invalidation mode),
stripping an extension module (its bytes, strip's version) and deflating a file for the zip (its
bytes, zlib's version and level). ``inv build.all --force`` after a lock or layer.toml change,
or a rebuild of a layer whose inputs moved, repeats most of that work on unchanged files; the
step cache (as ccache does for a C compiler) looks each result up by a key over every input and
only computes what it has not seen. A result is the same bytes either way, so zips stay
byte-identical with the cache, without it and from a cold one.

An entry is one file ``<root>/<key[:2]>/<key>``: a magic, the sha256 of the payload, the
payload. A read checks both and treats a damaged or truncated entry as missing (and removes
it), so the cache can make a build faster, never wrong. Entries are written under a temporary
name and renamed into place (concurrent builds share one cache safely); a hit touches the entry,
and :meth:`StepCache.trim` removes the least recently used entries above a size limit after
each build. Any I/O error on the cache is treated as a miss: a full disk slows a build, it
does not fail it.

Where: ``<cache dir>/steps`` (the cache dir is ``$LAYERKIT_CACHE_DIR``, else ``.layerkit/cache``
in the project); ``LAYERKIT_STEP_CACHE=off`` switches it off (any value that is neither on nor
off is an error, not silently on).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from layerkit.errors import SpecError

ENV_VAR = "LAYERKIT_STEP_CACHE"
OFF = frozenset({"0", "off", "no", "none", "false"})
ON = frozenset({"", "1", "on", "yes", "true"})
#: Default size limit: the least recently used entries above it are removed after a build.
DEFAULT_LIMIT = 2 * 1024**3
_MAGIC = b"LKSC1\n"
_HEADER = len(_MAGIC) + 32


class Memo(Protocol):
    """Where step results are looked up and kept."""

    def get(self, key: str) -> bytes | None:
        """The payload stored under ``key``, or None."""
        ...

    def put(self, key: str, payload: bytes) -> None:
        """Keep ``payload`` under ``key`` (best effort)."""
        ...

    def trim(self, limit: int = DEFAULT_LIMIT) -> int:
        """Remove the least recently used results above ``limit`` bytes; the bytes removed."""
        ...


class NoMemo:
    """No step cache: every result is computed."""

    def get(self, key: str) -> bytes | None:
        """Never a hit."""
        return None

    def put(self, key: str, payload: bytes) -> None:
        """Keep nothing."""

    def trim(self, limit: int = DEFAULT_LIMIT) -> int:
        """Nothing to remove."""
        return 0


def memo_key(kind: str, *parts: str | bytes) -> str:
    """The key of a result: sha256 over ``kind`` and every input, each length-prefixed."""
    digest = hashlib.sha256()
    for part in (kind, *parts):
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(struct.pack(">Q", len(data)))
        digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True)
class StepCache:
    """A step cache in a local folder."""

    root: Path
    # why the first entry could not be written (read-only, full), for the build's note
    unwritable: list[str] = field(default_factory=list, compare=False)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> bytes | None:
        """The payload under ``key`` if the entry is whole and unchanged, else None."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        payload = data[_HEADER:]
        if (
            data[: len(_MAGIC)] != _MAGIC
            or hashlib.sha256(payload).digest() != data[len(_MAGIC) : _HEADER]
        ):
            path.unlink(missing_ok=True)  # damaged: computed again and rewritten
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: kept by trim
        return payload

    def put(self, key: str, payload: bytes) -> None:
        """Write the entry under a temporary name, then rename it into place."""
        path = self._path(key)
        tmp = path.with_name(f".{key}.{uuid.uuid4().hex}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as out:
                out.write(_MAGIC + hashlib.sha256(payload).digest())
                out.write(payload)
            os.replace(tmp, path)
        except OSError as exc:  # a cache that cannot be written is a cache that misses
            if not self.unwritable:
                self.unwritable.append(f"{exc.strerror or exc}: {exc.filename or self.root}")
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)

    def entries(self) -> Iterable[os.DirEntry[str]]:
        """Every entry file (temporary ones too)."""
        try:
            folders = list(os.scandir(self.root))
        except OSError:
            return
        for folder in folders:
            if folder.is_dir(follow_symlinks=False):
                try:
                    yield from (
                        e for e in os.scandir(folder.path) if e.is_file(follow_symlinks=False)
                    )
                except OSError:
                    continue

    def size(self) -> int:
        """The bytes the entries take."""
        return sum(_stat(e)[1] for e in self.entries())

    def trim(self, limit: int = DEFAULT_LIMIT) -> int:
        """Remove the least recently used entries until the cache holds ``limit`` bytes or less.

        Returns the bytes removed. Temporary files of builds that are gone are removed as any
        other old entry.
        """
        found = sorted((_stat(e), e.path) for e in self.entries())
        total = sum(size for (_, size), _ in found)
        removed = 0
        for (_, size), path in found:
            if total - removed <= limit:
                break
            try:
                os.unlink(path)
            except OSError:
                continue
            removed += size
        return removed


def _stat(entry: os.DirEntry[str]) -> tuple[float, int]:
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:
        return (0.0, 0)
    return (st.st_mtime, st.st_size)


def step_cache(cache_dir: Path) -> StepCache | NoMemo:
    """The step cache a build uses: ``<cache_dir>/steps``, or none when switched off.

    Raises SpecError for a value of ``LAYERKIT_STEP_CACHE`` that is neither on nor off.
    """
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value in OFF:
        return NoMemo()
    if value not in ON:
        raise SpecError(
            f"{ENV_VAR}={os.environ[ENV_VAR]!r} is neither on nor off: set it to off (or 0, no, "
            "false) to build without the step cache, or unset it to use it. To move the cache, "
            "set LAYERKIT_CACHE_DIR instead."
        )
    return StepCache(cache_dir / "steps")
