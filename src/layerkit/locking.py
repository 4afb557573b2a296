"""One advisory file lock for every "only one process at a time" rule (builds, the local stage).

An OS lock (``flock``) on a file: it is released when the holder exits, however it exits (a
``kill -9`` included), so a stale lock never blocks the next run. The holder writes who it is into
the file, so the refusal can name it. (The ``filelock`` library would truncate the file while
acquiring, erasing exactly that note, so this stays a dozen lines of ``fcntl``.)

A folder that cannot be written (a read-only checkout, a full disk) is one paragraph naming the
folder, what was needed there and the fix (:func:`storage_error`), never an ``OSError``
traceback; a command that only reads may go on without the lock when it cannot create it
(``skip_unwritable``): nobody can write through a read-only folder either.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from layerkit.errors import LayerkitError, StorageError

#: errno values that mean "this folder cannot be written here", not "a bug".
UNWRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_storage_problem(exc: OSError) -> bool:
    """Whether ``exc`` is a folder that cannot be written (read-only, no permission, full)."""
    return exc.errno in UNWRITABLE | FULL


def storage_error(folder: Path, needed: str, exc: OSError) -> StorageError:
    """One paragraph for an OS error writing in ``folder``: what failed, what was needed, the fix.

    ``needed`` says what the command wanted to write there ("the build lock", "the zip of
    layer base").
    """
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    where = Path(exc.filename) if exc.filename else folder
    if exc.errno in FULL:
        fix = (
            "free some space on that disk (`inv clean` removes the build output; the caches "
            "in .layerkit/cache or $LAYERKIT_CACHE_DIR are safe to delete) and run the command "
            "again"
        )
    elif exc.errno == errno.EROFS:
        fix = (
            "the folder is on a read-only file system: run the command in a writable copy of "
            "the project, or point `[tool.layerkit] dist-dir` in pyproject.toml (and "
            "LAYERKIT_CACHE_DIR for the caches) at a writable folder"
        )
    else:
        fix = (
            f"make {folder} writable for this user (or run as the user who owns it), then run "
            "the command again"
        )
    return StorageError(
        f"{folder} cannot be written ({reason}: {where}), and layerkit needed it for {needed}; "
        f"{fix}. Nothing was left half-written."
    )


@contextlib.contextmanager
def exclusive(
    path: Path,
    refuse: Callable[[str], LayerkitError],
    *,
    needed: str = "its lock file",
    skip_unwritable: bool = False,
) -> Iterator[bool]:
    """Hold the lock on ``path`` for the ``with`` block, or raise ``refuse(holder)`` at once.

    ``holder`` is what the current holder wrote ("pid 123, started ...") or "another process".
    Yields True while the lock is held. When the lock file cannot be created because its folder
    cannot be written, it is a :func:`storage_error` (``needed`` says what for), or with
    ``skip_unwritable`` (a command that only reads) the block runs without the lock and this
    yields False.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = path.open("a+")
    except OSError as exc:
        if not is_storage_problem(exc):
            raise
        if skip_unwritable and exc.errno in UNWRITABLE:
            yield False
            return
        raise storage_error(path.parent, needed, exc) from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            raise refuse(fh.read().strip() or "another process") from None
        with contextlib.suppress(OSError):  # the note is a courtesy; the lock is the flock
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
            fh.flush()
        yield True
