"""What a build has to do: the input hash of every artifact and whether its zip is fresh.

An artifact is rebuilt only when the content hash of its inputs (its lock slice, its layer.toml
and requirements, the layers it requires, its source files, the layerkit version, the host tools
that shape its bytes and the target) differs from the one recorded in the manifest, or its zip
is missing or altered: fresh means its bytes hash to the manifest's sha256
(:func:`layerkit.build.manifest.artifact_intact`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import NamedTuple

from layerkit import __version__
from layerkit.build.lock import Lock, Partition, partition, read_lock
from layerkit.build.manifest import (
    ArtifactKind,
    ArtifactRecord,
    artifact_intact,
    artifact_path,
    read_manifest_or_nothing,
)
from layerkit.build.targets import buildable_functions, overlay_digest, overlay_dir, overlay_files
from layerkit.build.tools import SystemStrip, byte_shaping_versions
from layerkit.errors import SpecError
from layerkit.project.spec import Function, Project
from layerkit.runtime.target import Target

#: Bumped when what a build records or produces changes, so older artifacts count as stale.
BUILD_FORMAT = 5
DIST = "dist"  # the default output folder; a project's own is project.dist_dir


class ArtifactState(str, Enum):
    """Whether an artifact's zip can be used as it is."""

    FRESH = "fresh"  # built from the current inputs, zip intact
    STALE = "stale"  # inputs changed since, or the zip was altered
    MISSING = "missing"  # never built (or the manifest does not describe it)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Planned:
    """An artifact and whether it needs building."""

    kind: ArtifactKind
    name: str
    path: str
    input_hash: str
    state: ArtifactState
    record: ArtifactRecord | None
    why: str = ""  # why a stale artifact is stale when it is not its inputs (its zip altered)

    @property
    def label(self) -> str:
        """``layer core-data-science``."""
        return f"{self.kind} {self.name}"


class Plan(NamedTuple):
    """The planned artifacts (in build order), and the lock and partition they come from."""

    artifacts: tuple[Planned, ...]
    lock: Lock
    partition: Partition


def output_dir(project: Project, target: Target) -> Path:
    """``dist/`` for the template's target (what SAM and deploy read), ``dist/<key>/`` else."""
    base = project.dist_dir
    return base if target == project.deploy_target else base / target.key


def check_target(project: Project, target: Target) -> None:
    """Refuse a target no layer is built for (there is no lock for it either)."""
    if target not in project.targets:
        raise SpecError(
            f"no layer is built for {target.key}: the targets are "
            f"{', '.join(t.key for t in project.targets)}. Add the runtime to the `runtimes` (an "
            "architecture to the `architectures`) of the layers in their settings (layer.toml or "
            "the template), or a function's Runtime/Architectures, and run `inv lock`."
        )


# ---------------------------------------------------------------- input hashing (pure)


def _digest(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _slice(lock: Lock, names: Sequence[str]) -> list[list[str]]:
    wanted = set(names)
    return [[p.name, p.version, p.sha256] for p in lock.packages if p.name in wanted]


def layer_hashes(
    project: Project,
    target: Target,
    lock: Lock,
    part: Partition,
    tool_versions: Mapping[str, str],
) -> dict[str, str]:
    """The input hash of every layer (required layers' hashes feed their dependents')."""
    hashes: dict[str, str] = {}
    for layer in project.layers:
        hashes[layer.name] = _digest(
            {
                "layerkit": __version__,
                "format": BUILD_FORMAT,
                "tools": dict(tool_versions),
                "target": target.key,
                "config": layer.config_sha256,
                "slice": _slice(lock, part.layers[layer.name]),
                "requires": {r: hashes[r] for r in project.required_closure(layer.name)},
            }
        )
    return hashes


def function_files(fn: Function) -> tuple[Path, ...]:
    """The files of a function folder that go into its package, relative to the folder."""
    from layerkit.build.package import package_files, refuse_secrets

    files = package_files(fn.path)
    refuse_secrets(fn.path, files)
    return files


def function_hash(
    fn: Function,
    target: Target,
    lock: Lock,
    part: Partition,
    files: Sequence[Path],
    overlay: Sequence[tuple[str, Path]] = (),
) -> str:
    """The input hash of a function package: its files, its lock slice, what layers carry.

    Which distributions every layer carries counts (not only the attached layers: the import
    check names the layer that would provide a missing module), their versions do not: a new
    numpy in core-data-science changes nothing in a function's package. ``overlay`` is the
    target's data for the function (:mod:`layerkit.build.targets`).
    """
    extra = {"overlay": overlay_digest(tuple(overlay))} if overlay else {}
    return _digest(
        {
            **extra,
            "layerkit": __version__,
            "format": BUILD_FORMAT,
            "target": target.key,
            "files": [
                [f.as_posix(), hashlib.sha256((fn.path / f).read_bytes()).hexdigest()]
                for f in files
            ],
            "slice": _slice(lock, part.functions[fn.name]),
            "attached": list(fn.layers),
            "layers": {name: list(names) for name, names in sorted(part.layers.items())},
        }
    )


# ---------------------------------------------------------------- planning (what is fresh)


def _refuse_unbuilt_attachments(project: Project, target: Target) -> None:
    """One paragraph for a function on ``target`` attaching a layer not built for it."""
    resources = {tl.layer: tl for tl in project.template.layers}
    for fn in project.functions:
        if fn.target != target:
            continue
        for name in fn.layers:
            layer = project.layer(name)
            if target in layer.targets():
                continue
            tl = resources.get(name)
            if layer.settings_file.endswith("layer.toml"):
                tl = None  # layer.toml lists the targets: that is the line to change
            if (
                tl is not None
                and tl.compatible_runtimes
                and target.runtime not in (tl.compatible_runtimes)
            ):
                prop, listed = "CompatibleRuntimes", tl.compatible_runtimes
            elif tl is not None and target.architecture not in tl.compatible_architectures:
                prop = (
                    "CompatibleArchitectures"
                    if tl.architectures_written or tl.build_architecture is None
                    else "Metadata BuildArchitecture"
                )
                listed = tl.compatible_architectures
            else:
                raise SpecError(
                    f"{project.config.template}: {fn.logical_id} runs on {target.key} and "
                    f"attaches {name}, but {layer.settings_file} does not build it for "
                    f"{target.key}; add the runtime there or change the function's Runtime."
                )
            runtime = prop == "CompatibleRuntimes"
            raise SpecError(
                f"{project.config.template}: function {fn.logical_id} runs on {target.key} and "
                f"attaches layer {tl.logical_id}, whose {prop} lists only "
                f"{', '.join(listed)}; add {target.runtime if runtime else target.architecture} "
                f"to the layer's {prop}, or change the function's "
                f"{'Runtime' if runtime else 'Architectures'}."
            )


def state_of(out: Path, record: ArtifactRecord | None, input_hash: str) -> ArtifactState:
    """Whether the artifact ``record`` describes in ``out`` is fresh for ``input_hash``."""
    if record is None or not (out / record.path).is_file():
        return ArtifactState.MISSING
    if record.input_hash != input_hash or not artifact_intact(out, record):
        return ArtifactState.STALE
    return ArtifactState.FRESH


def plan(
    project: Project,
    target: Target,
    *,
    layers: Sequence[str] | None = None,
    functions: bool = True,
    lock: Lock | None = None,
    tool_versions: Mapping[str, str] | None = None,
) -> Plan:
    """Decide for each wanted artifact whether it is fresh, stale or missing.

    ``tool_versions`` are the build tools' versions (:meth:`Tools.versions`); by default those
    of the real tools. A damaged manifest counts as nothing built.
    """
    if functions:
        _refuse_unbuilt_attachments(project, target)
    lock = lock or read_lock(project, target)
    part = partition(project, lock)
    out = output_dir(project, target)
    records = read_manifest_or_nothing(out)
    if tool_versions is None:
        tool_versions = byte_shaping_versions(SystemStrip.for_target(target))
    hashes = layer_hashes(project, target, lock, part, tool_versions)
    wanted: list[tuple[ArtifactKind, str, str]] = [
        (ArtifactKind.LAYER, layer.name, hashes[layer.name])
        for layer in project.layers
        if (layers is None or layer.name in layers) and target in layer.targets()
    ]
    if functions:  # every target builds the functions whose layers it builds
        wanted += [
            (
                ArtifactKind.FUNCTION,
                fn.name,
                function_hash(
                    fn, target, lock, part, function_files(fn), overlay(project, target, fn.name)
                ),
            )
            for fn in buildable_functions(project, target)
        ]
    planned = []
    for kind, name, digest in wanted:
        path = artifact_path(kind, name)
        record = records.get(path)
        state = state_of(out, record, digest)
        why = ""
        if state == ArtifactState.STALE and record is not None and record.input_hash == digest:
            why = (
                f"{out / path} does not hash to the sha256 the manifest recorded for it "
                "(altered or damaged since it was built); it is rebuilt"
            )
        planned.append(Planned(kind, name, path, digest, state, record, why))
    return Plan(tuple(planned), lock, part)


def overlay(project: Project, target: Target, function: str) -> tuple[tuple[str, Path], ...]:
    """The target's own data for a function (none for the template's target)."""
    if target == project.deploy_target:
        return ()
    return overlay_files(overlay_dir(output_dir(project, target), function))
