"""The deploy's data: what a stage should run, what it runs, and the configuration between.

Frozen dataclasses and pure helpers only; the planner (:mod:`layerkit.deploy.planner`), the
state reader (:mod:`layerkit.deploy.state`), the executor and the release records all share
them. Nothing here talks to AWS or reads a file.

Layer code is compared by sha256: a layer version's ``Content.CodeSha256`` is the base64 of the
zip's sha256 digest (real Lambda and moto alike), the build manifest holds hex; both are
compared as hex. Code always travels through S3 under content-addressed keys
(``artifacts/<sha256>.zip``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from layerkit.project.parameters import DEFAULT_HEALTH_PAYLOAD


class ReleaseKind(str, Enum):
    """What made a release record."""

    DEPLOY = "deploy"
    ROLLBACK = "rollback"

    def __str__(self) -> str:
        return self.value


ARTIFACT_PREFIX = "artifacts/"
DEFAULT_HEALTH_EVENT = DEFAULT_HEALTH_PAYLOAD  # what a function without a health-check event gets


def artifact_key(sha256: str) -> str:
    """The content-addressed S3 key of a zip: ``artifacts/<sha256>.zip``."""
    return f"{ARTIFACT_PREFIX}{sha256}.zip"


def hex_from_b64(digest: str) -> str:
    """Lambda's base64 ``CodeSha256`` as the hex the build manifest uses."""
    return base64.b64decode(digest).hex()


def b64_from_hex(digest: str) -> str:
    """A hex sha256 as Lambda's base64 ``CodeSha256``."""
    return base64.b64encode(bytes.fromhex(digest)).decode("ascii")


# --------------------------------------------------------------------------- desired state


@dataclass(frozen=True)
class LayerArtifact:
    """A built layer zip, ready to publish."""

    name: str
    zip_path: Path
    sha256: str
    zipped_bytes: int
    compatible_runtimes: tuple[str, ...]
    compatible_architectures: tuple[str, ...]
    description: str = ""
    layer_name: str = ""  # its name on the stage ("": the stage's prefix + its folder name)


@dataclass(frozen=True)
class FunctionArtifact:
    """A built function zip and the configuration template.yaml gives it."""

    name: str  # functions/<name>/ folder
    logical_id: str
    zip_path: Path
    sha256: str
    handler: str
    runtime: str
    architecture: str
    memory_size: int
    timeout: int
    layers: tuple[str, ...]  # layer names, in the template's order
    environment: Mapping[str, str] = field(default_factory=dict)
    health_event: bytes = DEFAULT_HEALTH_EVENT
    zipped_bytes: int = 0
    function_name: str = ""  # its name on the stage ("": the stage's prefix + its folder name)
    not_run: str = ""  # the local stage cannot run it on this host: why, and what was checked


@dataclass(frozen=True)
class DesiredState:
    """What a stage should run after the deploy."""

    layers: tuple[LayerArtifact, ...]
    functions: tuple[FunctionArtifact, ...]
    commit: str | None = None


# --------------------------------------------------------------------------- current state


@dataclass(frozen=True)
class FunctionState:
    """One function version's code and configuration, as Lambda reports it."""

    code_sha256: str  # hex
    handler: str
    runtime: str
    architecture: str
    memory_size: int
    timeout: int
    role: str
    environment: tuple[tuple[str, str], ...]
    layers: tuple[str, ...]  # layer version ARNs
    version: str = "$LATEST"

    def runs(self, sha256: str, architecture: str) -> bool:
        """Whether this version runs the zip ``sha256`` on ``architecture``."""
        return (self.code_sha256, self.architecture) == (sha256, architecture)

    def configuration(self) -> tuple[Any, ...]:
        """The configuration layerkit manages, as one comparable value (layer ARNs last)."""
        return (
            self.handler,
            self.runtime,
            self.memory_size,
            self.timeout,
            self.role,
            self.environment,
            self.layers,
        )


@dataclass(frozen=True)
class CurrentFunction:
    """A deployed function: ``$LATEST`` and what the stage alias points to."""

    function_name: str
    latest: FunctionState
    alias_version: str | None  # None: the stage alias does not exist
    alias_state: FunctionState | None


@dataclass(frozen=True)
class CurrentLayer:
    """The latest published version of a layer."""

    layer_name: str
    arn: str
    version: int
    sha256: str  # hex


@dataclass(frozen=True)
class CurrentState:
    """What the stage runs now (keys are project layer and function folder names)."""

    layers: Mapping[str, CurrentLayer] = field(default_factory=dict)
    functions: Mapping[str, CurrentFunction] = field(default_factory=dict)
    artifacts: frozenset[str] = frozenset()  # artifact keys already in the bucket
    #: folder name -> alias version the stage's newest release record names ({}: no record;
    #: None: not known, e.g. the record is unreadable: then nothing is planned for it)
    recorded: Mapping[str, str] | None = None

    def unrecorded(self, functions: Sequence[str]) -> bool:
        """Whether what the aliases of ``functions`` point to differs from the newest record.

        A deploy killed between its last alias move and its record leaves the stage so; the
        next deploy then records the release even though nothing else is left to do.
        """
        live = {
            name: fn.alias_version
            for name, fn in self.functions.items()
            if name in functions and fn.alias_version is not None
        }
        if self.recorded is None or not live:
            return False
        return any(self.recorded.get(name) != version for name, version in live.items())


def function_state(config: Mapping[str, Any]) -> FunctionState:
    """A :class:`FunctionState` from a Lambda ``FunctionConfiguration`` response."""
    env = (config.get("Environment") or {}).get("Variables") or {}
    return FunctionState(
        code_sha256=hex_from_b64(config["CodeSha256"]),
        handler=config.get("Handler", ""),
        runtime=config.get("Runtime", ""),
        architecture=(config.get("Architectures") or ["x86_64"])[0],
        memory_size=int(config.get("MemorySize", 128)),
        timeout=int(config.get("Timeout", 3)),
        role=config.get("Role", ""),
        environment=tuple(sorted((str(k), str(v)) for k, v in env.items())),
        layers=tuple(layer["Arn"] for layer in config.get("Layers") or ()),
        version=str(config.get("Version", "$LATEST")),
    )


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class LayerRef:
    """A layer a function attaches: a known version ARN, or the version this deploy publishes."""

    layer: str
    arn: str | None  # None: resolved at apply time from the PublishLayerVersion step


@dataclass(frozen=True)
class FunctionConfig:
    """The configuration layerkit manages for a function."""

    handler: str
    runtime: str
    memory_size: int
    timeout: int
    role: str
    environment: tuple[tuple[str, str], ...]
    layers: tuple[LayerRef, ...]

    def matches(self, state: FunctionState) -> bool:
        """Whether ``state`` already has exactly this configuration."""
        arns = tuple(ref.arn for ref in self.layers)
        return None not in arns and state.configuration() == (
            self.handler,
            self.runtime,
            self.memory_size,
            self.timeout,
            self.role,
            self.environment,
            arns,
        )
