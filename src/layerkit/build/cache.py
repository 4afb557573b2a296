"""The hook for a shared build cache: fetch an artifact by its input hash, publish a new one.

Two builds from the same inputs give the same bytes, so a zip built elsewhere (a colleague, CI)
from the same input hash can stand in for building it here. A cache implements
:class:`ArtifactCache`; :func:`layerkit.build.pipeline.build` asks it before building an
artifact (not with ``force``) and hands it every artifact it built. What comes back is checked
before it is used: the record must be for this artifact, target and input hash, and the zip
must have the recorded size and sha256.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol

from layerkit.build.archive import sha256_file
from layerkit.build.manifest import ArtifactRecord
from layerkit.build.plan import Planned


class ArtifactCache(Protocol):
    """Where built artifacts are shared, keyed by input hash."""

    def fetch(self, planned: Planned, target: str, dest: Path) -> ArtifactRecord | None:
        """Write the zip built from ``planned.input_hash`` for ``target`` to ``dest``.

        Returns its manifest record, or None when the cache has none (then ``dest`` is left
        as it was). Write ``dest`` atomically (a temporary name, then rename).
        """
        ...

    def publish(self, record: ArtifactRecord, zip_path: Path) -> None:
        """Store a freshly built artifact (its record names the input hash and target)."""
        ...


def fetched(planned: Planned, target: str, dest: Path, record: ArtifactRecord | None) -> bool:
    """Whether a fetched ``record`` and the zip at ``dest`` are the artifact ``planned`` wants."""
    if record is None or not dest.is_file():
        return False
    return (
        record.input_hash == planned.input_hash
        and record.kind == planned.kind
        and record.name == planned.name
        and record.path == planned.path
        and record.target == target
        and dest.stat().st_size == record.zipped_bytes
        and sha256_file(dest) == record.sha256
    )


def fetch_checked(
    cache: ArtifactCache, planned: Planned, target: str, dest: Path
) -> ArtifactRecord | None:
    """The record of a zip the cache put at ``dest``, when it is the one wanted; else None.

    A zip that is not what was asked for is removed (the build then makes it itself).
    """
    record = cache.fetch(planned, target, dest)
    if record is None:
        return None
    if not fetched(planned, target, dest, record):
        dest.unlink(missing_ok=True)
        return None
    return dataclasses.replace(record, mtime_ns=dest.stat().st_mtime_ns)
