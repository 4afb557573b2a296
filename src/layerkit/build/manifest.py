"""The build manifest: what each artifact in an output folder is and what it was built from.

``dist/manifest.json`` maps an artifact's path (``layers/<name>.zip``, ``functions/<name>.zip``)
to a record: target, sha256, zipped and unzipped bytes, file count, distributions and versions,
the input hash it was built from, and what slimming and bytecode did. It is written atomically
after every artifact, so it never describes a zip that is not there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from layerkit import __version__
from layerkit.build.archive import sha256_file
from layerkit.errors import BuildError

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ArtifactRecord:
    """One built zip."""

    kind: str  # "layer" or "function"
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

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["layers"] = list(self.layers)
        data["modules"] = list(self.modules)
        data["slim"] = [dict(s) for s in self.slim]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArtifactRecord:
        """Inverse of :meth:`to_json`."""
        return cls(
            **{
                **data,
                "layers": tuple(data.get("layers", ())),
                "modules": tuple(data.get("modules", ())),
                "slim": tuple(data.get("slim", ())),
            }
        )


def artifact_path(kind: str, name: str) -> str:
    """``layers/<name>.zip`` or ``functions/<name>.zip``."""
    return f"{'layers' if kind == 'layer' else 'functions'}/{name}.zip"


def read_manifest(out_dir: Path) -> dict[str, ArtifactRecord]:
    """The records in ``out_dir/manifest.json`` (empty if there is none yet)."""
    path = out_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise BuildError(
            f"{path} is not valid JSON ({exc}); run `inv clean` and build again."
        ) from None
    try:
        return {k: ArtifactRecord.from_json(v) for k, v in data.get("artifacts", {}).items()}
    except (TypeError, AttributeError):
        return {}  # written by another layerkit version: every artifact counts as missing


def write_manifest(out_dir: Path, target: str, records: Mapping[str, ArtifactRecord]) -> Path:
    """Write the manifest atomically (temp file + rename)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MANIFEST
    doc = {
        "layerkit": __version__,
        "target": target,
        "artifacts": {k: records[k].to_json() for k in sorted(records)},
    }
    tmp = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def artifact_intact(out_dir: Path, record: ArtifactRecord) -> bool:
    """Whether the zip a record describes is on disk with the recorded size and sha256."""
    path = out_dir / record.path
    try:
        if path.stat().st_size != record.zipped_bytes:
            return False
    except FileNotFoundError:
        return False
    return sha256_file(path) == record.sha256
