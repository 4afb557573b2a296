"""Content digests shared by every stage: the one sha256 of a file.

A neutral module below ``runtime/``, ``build/`` and ``deploy/`` so each can hash a zip without
importing another stage (the sandbox's cache and the build's manifest agree on the same digest).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

#: Bytes read at a time while hashing.
CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """The sha256 of a file, hex."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
