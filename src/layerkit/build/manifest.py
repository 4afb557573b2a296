"""The build manifest: what each artifact in an output folder is and what it was built from.

``dist/manifest.json`` maps an artifact's path (``layers/<name>.zip``, ``functions/<name>.zip``)
to a record: target, sha256, zipped and unzipped bytes, file count, distributions and versions,
the input hash it was built from, what slimming and bytecode did, and how long each build step
took. It is written atomically after every artifact, so it never describes a zip that is not
there.

A manifest that cannot be read (truncated, ``null``, the wrong shape, a record without its
fields, written by another layerkit) is a :class:`DamagedManifestError` with one paragraph that
says what to run; a build itself treats it as "nothing built" and rewrites it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

from layerkit import __version__
from layerkit.digest import sha256_file
from layerkit.errors import BuildError

MANIFEST = "manifest.json"
#: Bumped when the manifest's shape changes; a manifest of another format is not read.
MANIFEST_FORMAT = 2


class ArtifactKind(str, Enum):
    """What an artifact is."""

    LAYER = "layer"
    FUNCTION = "function"

    def __str__(self) -> str:
        return self.value


class DamagedManifestError(BuildError):
    """``manifest.json`` exists but cannot be read as this layerkit writes it."""


@dataclass(frozen=True)
class ArtifactRecord:
    """One built zip."""

    kind: ArtifactKind
    name: str
    target: str
    path: str  # relative to the output folder
    sha256: str
    zipped_bytes: int
    unzipped_bytes: int
    files: int
    input_hash: str
    distributions: Mapping[str, str] = field(default_factory=dict)
    distribution_bytes: Mapping[str, int] = field(default_factory=dict)
    budget: int | None = None
    layers: tuple[str, ...] = ()  # a layer: the layers it requires; a function: what it attaches
    modules: tuple[str, ...] = ()  # a layer: its importable top-level modules
    slim: tuple[Mapping[str, Any], ...] = ()
    bytecode: Mapping[str, Any] = field(default_factory=dict)
    # how the build could check it: "native", "emulated" (qemu-user) or "static only" (the
    # host cannot run the target's code: nothing was imported or run; runtime/host.py)
    execution: str = "native"
    # Facts of this build of the artifact, not of the artifact: two records of the same zip
    # (built here, or downloaded from the build cache) are equal whatever they say.
    # (build step, seconds), in the order they ran
    timings: tuple[tuple[str, float], ...] = field(default=(), compare=False)
    mtime_ns: int = field(default=0, compare=False)  # the zip's mtime when written (0: unknown)
    # the zip's inode and ctime when written (0: unknown); with its size and mtime they only
    # decide when its sha256 is computed again (artifact_intact)
    ino: int = field(default=0, compare=False)
    ctime_ns: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        # a plain "layer"/"function" is accepted where the enum is meant
        object.__setattr__(self, "kind", ArtifactKind(self.kind))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["kind"] = self.kind.value
        data["layers"] = list(self.layers)
        data["modules"] = list(self.modules)
        data["slim"] = [dict(s) for s in self.slim]
        data["timings"] = [[step, seconds] for step, seconds in self.timings]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArtifactRecord:
        """Inverse of :meth:`to_json`; ValueError names the first field that is wrong."""
        problem = record_problem(data)
        if problem is not None:
            raise ValueError(problem)
        return cls(
            **{
                **data,
                "kind": ArtifactKind(data["kind"]),
                "layers": tuple(data.get("layers", ())),
                "modules": tuple(data.get("modules", ())),
                "slim": tuple(data.get("slim", ())),
                "timings": tuple((step, seconds) for step, seconds in data.get("timings", ())),
            }
        )

    @property
    def build_seconds(self) -> float:
        """The time its build steps took together."""
        return sum(seconds for _, seconds in self.timings)


def _is_str_map(value: object, item: type | tuple[type, ...]) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, item) and not isinstance(v, bool)
        for k, v in value.items()
    )


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_timings(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(p, list)
        and len(p) == 2
        and isinstance(p[0], str)
        and isinstance(p[1], (int, float))
        and not isinstance(p[1], bool)
        for p in value
    )


#: Each field's check (the JSON types ``to_json`` writes).
_FIELD_CHECKS: dict[str, tuple[str, Any]] = {
    "kind": ('"layer" or "function"', lambda v: v in {k.value for k in ArtifactKind}),
    "name": ("a string", lambda v: isinstance(v, str) and bool(v)),
    "target": ("a string", lambda v: isinstance(v, str)),
    "path": ("a string", lambda v: isinstance(v, str)),
    "sha256": ("a string", lambda v: isinstance(v, str)),
    "zipped_bytes": ("a number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "unzipped_bytes": ("a number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "files": ("a number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "input_hash": ("a string", lambda v: isinstance(v, str)),
    "distributions": ("a table of versions", lambda v: _is_str_map(v, str)),
    "distribution_bytes": ("a table of sizes", lambda v: _is_str_map(v, int)),
    "budget": ("a number or null", lambda v: v is None or type(v) is int),
    "layers": ("a list of names", _is_str_list),
    "modules": ("a list of names", _is_str_list),
    "slim": ("a list of passes", lambda v: isinstance(v, list)),
    "bytecode": ("a table", lambda v: isinstance(v, dict)),
    "execution": ("a string", lambda v: isinstance(v, str)),
    "timings": ("a list of [step, seconds]", _is_timings),
    "mtime_ns": ("a number", lambda v: type(v) is int),
    "ino": ("a number", lambda v: type(v) is int),
    "ctime_ns": ("a number", lambda v: type(v) is int),
}
_REQUIRED = tuple(
    f.name for f in fields(ArtifactRecord) if f.default is MISSING and f.default_factory is MISSING
)


def record_problem(data: object) -> str | None:
    """What is wrong with a manifest record read from JSON, or None when nothing is."""
    if not isinstance(data, dict):
        return f"is {_json_kind(data)}, not a record"
    for name in _REQUIRED:
        if name not in data:
            return f"has no `{name}`"
    for name, value in data.items():
        check = _FIELD_CHECKS.get(name)
        if check is None:
            return f"has a field `{name}` this layerkit does not know"
        if not check[1](value):
            return f"has `{name}` = {json.dumps(value)[:40]}, not {check[0]}"
    return None


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def artifact_path(kind: str, name: str) -> str:
    """``layers/<name>.zip`` or ``functions/<name>.zip``."""
    return f"{'layers' if kind == ArtifactKind.LAYER else 'functions'}/{name}.zip"


def _damaged(path: Path, what: str) -> DamagedManifestError:
    return DamagedManifestError(
        f"{path} {what}, so layerkit cannot tell what is built there. Run `inv build.all` "
        "(add `--runtime` for another target): the build treats the folder as empty, rebuilds "
        "every artifact and writes a new manifest. `inv clean` removes the folder instead."
    )


def read_manifest(out_dir: Path) -> dict[str, ArtifactRecord]:
    """The records in ``out_dir/manifest.json`` (empty if there is none yet).

    Raises :class:`DamagedManifestError` when the file exists but is not a manifest this
    layerkit wrote.
    """
    path = out_dir / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise _damaged(path, f"cannot be read ({exc})") from None
    if not text.strip():
        raise _damaged(path, "is empty")
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise _damaged(path, f"is not valid JSON (cut short? {exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("artifacts"), dict):
        shape = _json_kind(doc) if not isinstance(doc, dict) else "an object without `artifacts`"
        raise _damaged(path, f"holds {shape}, not a build manifest")
    if doc.get("format") != MANIFEST_FORMAT:
        raise _damaged(
            path,
            f"was written by layerkit {doc.get('layerkit', '(unknown version)')} in manifest "
            f"format {doc.get('format', 1)}; this layerkit ({__version__}) reads format "
            f"{MANIFEST_FORMAT}",
        )
    records = {}
    for key, data in doc["artifacts"].items():
        problem = record_problem(data)
        if problem is None and data["path"] != key:
            problem = f"says its path is {data['path']!r}"
        if problem is not None:
            raise _damaged(path, f"is damaged: its entry {key!r} {problem}")
        records[key] = ArtifactRecord.from_json(data)
    return records


def read_manifest_or_nothing(out_dir: Path) -> dict[str, ArtifactRecord]:
    """The records of ``out_dir``; a damaged manifest counts as nothing built."""
    try:
        return read_manifest(out_dir)
    except DamagedManifestError:
        return {}


def read_refusals(out_dir: Path) -> dict[str, str]:
    """Artifacts the last build refused, by path, and why (empty when none or unreadable)."""
    try:
        doc = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    refused = doc.get("refused") if isinstance(doc, dict) else None
    if not isinstance(refused, dict):
        return {}
    return {k: v for k, v in refused.items() if isinstance(k, str) and isinstance(v, str)}


def write_manifest(
    out_dir: Path,
    target: str,
    records: Mapping[str, ArtifactRecord],
    refused: Mapping[str, str] | None = None,
) -> Path:
    """Write the manifest atomically (temp file + rename).

    ``refused`` are artifacts a build refused and why (``status`` shows them); by default the
    refusals already written are kept, except for artifacts ``records`` now describe.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MANIFEST
    if refused is None:
        refused = read_refusals(out_dir)
    doc = {
        "layerkit": __version__,
        "format": MANIFEST_FORMAT,
        "target": target,
        "artifacts": {k: records[k].to_json() for k in sorted(records)},
    }
    kept = {k: v for k, v in sorted(refused.items()) if k not in records}
    if kept:
        doc["refused"] = kept
    tmp = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):  # on a read-only file system even this fails
            tmp.unlink(missing_ok=True)
    return path


def stat_fields(path: Path) -> dict[str, int]:
    """The file facts a record keeps of its zip: mtime, inode and ctime (see artifact_intact)."""
    info = path.stat()
    return {"mtime_ns": info.st_mtime_ns, "ino": info.st_ino, "ctime_ns": info.st_ctime_ns}


def unchanged_since_recorded(info: os.stat_result, record: ArtifactRecord) -> bool:
    """Whether a zip's size, mtime, inode and ctime are all the ones its record kept.

    Any zero (a record of an older layerkit, or downloaded from the build cache without them)
    counts as changed.
    """
    return (
        info.st_size == record.zipped_bytes
        and 0 not in (record.mtime_ns, record.ino, record.ctime_ns)
        and (info.st_mtime_ns, info.st_ino, info.st_ctime_ns)
        == (record.mtime_ns, record.ino, record.ctime_ns)
    )


def artifact_intact(out_dir: Path, record: ArtifactRecord) -> bool:
    """Whether the zip a record describes is on disk with the recorded size and sha256.

    Fresh means "its bytes hash to the recorded sha256". The file's size, mtime, inode and
    ctime only decide when to hash again: a zip is only ever renamed into place, never edited,
    so while all four are the ones recorded when it was written its bytes are those bytes.
    Anything that rewrites the file in place, even to the same size with the old mtime put
    back (``touch -d``), changes its ctime; a copy or a rename-over has another inode.
    """
    path = out_dir / record.path
    try:
        info = path.stat()
    except FileNotFoundError:
        return False
    if info.st_size != record.zipped_bytes:
        return False
    if unchanged_since_recorded(info, record):
        return True
    return sha256_file(path) == record.sha256


def step_timings(records: Mapping[str, ArtifactRecord]) -> dict[str, dict[str, float]]:
    """Seconds per build step of each artifact: ``{path: {step: seconds}}``, steps in order.

    For ``status --timings`` and the report; an artifact built by a layerkit that recorded no
    timings maps to an empty table.
    """
    return {path: dict(records[path].timings) for path in sorted(records)}
