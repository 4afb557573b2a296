"""One advisory file lock for every "only one process at a time" rule (builds, the local stage).

An OS lock (``flock``) on a file: it is released when the holder exits, however it exits (a
``kill -9`` included), so a stale lock never blocks the next run. The holder writes who it is into
the file, so the refusal can name it. (The ``filelock`` library would truncate the file while
acquiring, erasing exactly that note, so this stays a dozen lines of ``fcntl``.)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from layerkit.errors import LayerkitError


@contextlib.contextmanager
def exclusive(path: Path, refuse: Callable[[str], LayerkitError]) -> Iterator[None]:
    """Hold the lock on ``path`` for the ``with`` block, or raise ``refuse(holder)`` at once.

    ``holder`` is what the current holder wrote ("pid 123, started ...") or "another process".
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            raise refuse(fh.read().strip() or "another process") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        fh.flush()
        yield
