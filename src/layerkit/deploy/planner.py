"""The deploy plan: the steps between what a stage runs and what it should run. All pure.

:func:`plan` turns a :class:`~layerkit.deploy.models.DesiredState` (from the build) and a
:class:`~layerkit.deploy.models.CurrentState` (what the stage runs now) into a tuple of frozen
:class:`Step` data; an unchanged build plans nothing at all. :func:`operations` lists the AWS
calls a plan makes, :func:`runtime_problems` the runtime lifecycle findings for it, given the
lifecycle as data. Nothing here talks to AWS, reads a file, or imports boto3 or cfn-lint.

Code always travels through S3 under content-addressed keys (``artifacts/<sha256>.zip``), never
as ``ZipFile``: the ML layer is larger than the 50 MiB a request may carry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import ClassVar

from layerkit.deploy.models import (
    DEFAULT_HEALTH_EVENT,
    CurrentFunction,
    CurrentLayer,
    CurrentState,
    DesiredState,
    FunctionArtifact,
    FunctionConfig,
    FunctionState,
    LayerArtifact,
    LayerRef,
    artifact_key,
    b64_from_hex,
    function_state,
    hex_from_b64,
)
from layerkit.errors import DeployError
from layerkit.project.stages import Stage
from layerkit.runtime.lifecycle import Lifecycle, deprecation_notice

__all__ = [  # the models are re-exported: the plan's callers read them from here too
    "DEFAULT_HEALTH_EVENT",
    "CurrentFunction",
    "CurrentLayer",
    "CurrentState",
    "DesiredState",
    "FunctionArtifact",
    "FunctionConfig",
    "FunctionState",
    "LayerArtifact",
    "LayerRef",
    "Step",
    "StepKind",
    "artifact_key",
    "b64_from_hex",
    "function_state",
    "hex_from_b64",
    "operations",
    "plan",
    "runtime_problems",
]


class StepKind(str, Enum):
    """What a step does, for progress events and printouts."""

    UPLOAD = "upload"
    PUBLISH_LAYER = "publish layer"
    CREATE_FUNCTION = "create function"
    UPDATE_CODE = "update code"
    UPDATE_CONFIGURATION = "update configuration"
    PUBLISH_VERSION = "publish version"
    HEALTH_CHECK = "health check"
    CREATE_ALIAS = "create alias"
    MOVE_ALIAS = "move alias"
    RECORD_RELEASE = "record release"

    def __str__(self) -> str:
        return self.value


# --------------------------------------------------------------------------- steps and plan


@dataclass(frozen=True)
class Step:
    """One deploy action. ``OPERATIONS`` lists the AWS calls it makes, as (service, operation)."""

    KIND: ClassVar[StepKind]
    OPERATIONS: ClassVar[tuple[tuple[str, str], ...]] = ()

    def describe(self) -> str:
        """One line for the plan printout."""
        raise NotImplementedError


@dataclass(frozen=True)
class FunctionStep(Step):
    """A step on one function: its folder name and its AWS name."""

    function: str
    function_name: str


#: A step that changes a function waits for Lambda to finish the change (GetFunction polls).
_WAIT = ("lambda", "GetFunction")


@dataclass(frozen=True)
class UploadArtifact(Step):
    """Upload a zip to its content-addressed key."""

    KIND = StepKind.UPLOAD
    OPERATIONS = (("s3", "PutObject"),)
    key: str
    path: Path
    sha256: str
    size: int

    def describe(self) -> str:
        """One line for the plan printout."""
        return f"upload  {self.path.name} ({self.size:,} bytes) -> {self.key}"


@dataclass(frozen=True)
class PublishLayerVersion(Step):
    """Publish a new layer version from an uploaded zip."""

    KIND = StepKind.PUBLISH_LAYER
    OPERATIONS = (("lambda", "PublishLayerVersion"),)
    layer: str
    layer_name: str
    key: str
    sha256: str
    compatible_runtimes: tuple[str, ...]
    compatible_architectures: tuple[str, ...]
    description: str

    def describe(self) -> str:
        """One line for the plan printout."""
        return f"publish layer {self.layer_name} (sha256 {self.sha256[:12]})"


@dataclass(frozen=True)
class CreateFunction(FunctionStep):
    """Create a function that does not exist yet, and wait until it is Active."""

    KIND = StepKind.CREATE_FUNCTION
    OPERATIONS = (
        ("lambda", "CreateFunction"),
        _WAIT,
    )
    key: str
    sha256: str
    architecture: str
    config: FunctionConfig

    def describe(self) -> str:
        """One line for the plan printout."""
        layers = ", ".join(r.layer for r in self.config.layers) or "no layers"
        return f"create  function {self.function_name} ({self.config.runtime}; {layers})"


@dataclass(frozen=True)
class UpdateFunctionCode(FunctionStep):
    """Point ``$LATEST`` at new code, and wait for the update to finish."""

    KIND = StepKind.UPDATE_CODE
    OPERATIONS = (
        ("lambda", "UpdateFunctionCode"),
        _WAIT,
    )
    key: str
    sha256: str
    architecture: str
    runtime: str = ""

    def describe(self) -> str:
        """One line for the plan printout."""
        return f"update  code of {self.function_name} (sha256 {self.sha256[:12]})"


@dataclass(frozen=True)
class UpdateFunctionConfiguration(FunctionStep):
    """Set ``$LATEST``'s configuration (layers in template order), and wait."""

    KIND = StepKind.UPDATE_CONFIGURATION
    OPERATIONS = (
        ("lambda", "UpdateFunctionConfiguration"),
        _WAIT,
    )
    config: FunctionConfig

    def describe(self) -> str:
        """One line for the plan printout."""
        layers = ", ".join(
            r.layer + (" (new version)" if r.arn is None else f":{r.arn.rsplit(':', 1)[-1]}")
            for r in self.config.layers
        )
        return f"update  configuration of {self.function_name} (layers: {layers or 'none'})"


@dataclass(frozen=True)
class PublishVersion(FunctionStep):
    """Publish ``$LATEST`` as a version, guarded by the expected code sha."""

    KIND = StepKind.PUBLISH_VERSION
    OPERATIONS = (("lambda", "PublishVersion"),)
    sha256: str

    def describe(self) -> str:
        """One line for the plan printout."""
        return f"publish version of {self.function_name}"


@dataclass(frozen=True)
class HealthCheck(FunctionStep):
    """Invoke the freshly published version; a FunctionError fails the deploy."""

    KIND = StepKind.HEALTH_CHECK
    OPERATIONS = (("lambda", "Invoke"),)
    payload: bytes
    not_run: str = ""  # why it cannot run here, and what was checked instead ("": it runs)

    def describe(self) -> str:
        """One line for the plan printout."""
        if self.not_run:
            name = self.function_name
            return f"health check of the new version of {name} NOT RUN: {self.not_run}"
        return f"invoke  the new version of {self.function_name} (health check)"


@dataclass(frozen=True)
class CreateAlias(FunctionStep):
    """Create the stage alias on the new version."""

    KIND = StepKind.CREATE_ALIAS
    OPERATIONS = (("lambda", "CreateAlias"),)
    alias: str

    def describe(self) -> str:
        """One line for the plan printout."""
        return f"create  alias {self.function_name}:{self.alias} -> new version"


@dataclass(frozen=True)
class MoveAlias(FunctionStep):
    """Move the stage alias from ``from_version`` to the new version."""

    KIND = StepKind.MOVE_ALIAS
    OPERATIONS = (("lambda", "UpdateAlias"),)
    alias: str
    from_version: str

    def describe(self) -> str:
        """One line for the plan printout."""
        return f"move    alias {self.function_name}:{self.alias} {self.from_version} -> new version"


@dataclass(frozen=True)
class RecordRelease(Step):
    """Write the release record (a new S3 object, never an overwrite)."""

    KIND = StepKind.RECORD_RELEASE
    OPERATIONS = (("s3", "PutObject"),)
    stage: str
    functions: tuple[str, ...]  # every function of the release, changed or not

    def describe(self) -> str:
        """One line for the plan printout."""
        return f"record  release of stage {self.stage}"


STEP_TYPES: tuple[type[Step], ...] = (
    UploadArtifact,
    PublishLayerVersion,
    CreateFunction,
    UpdateFunctionCode,
    UpdateFunctionConfiguration,
    PublishVersion,
    HealthCheck,
    CreateAlias,
    MoveAlias,
    RecordRelease,
)

#: AWS calls made around the steps: reading the current state and the stage lock.
READ_OPERATIONS: tuple[tuple[str, str], ...] = (
    ("lambda", "ListLayerVersions"),
    ("lambda", "GetLayerVersion"),
    ("lambda", "GetFunctionConfiguration"),
    ("lambda", "GetAlias"),
    ("lambda", "GetFunction"),  # the tags: who owns an existing function (deploy.ownership)
    ("s3", "HeadObject"),
    ("s3", "ListObjectsV2"),
    ("s3", "GetObject"),
)
LOCK_OPERATIONS: tuple[tuple[str, str], ...] = (("s3", "PutObject"), ("s3", "DeleteObject"))


def operations(steps: Sequence[Step]) -> tuple[tuple[str, str], ...]:
    """Every distinct AWS operation a deploy of ``steps`` performs, reads and lock included."""
    found: dict[tuple[str, str], None] = dict.fromkeys(LOCK_OPERATIONS[:1])
    found.update(dict.fromkeys(READ_OPERATIONS))
    for step in steps:
        found.update(dict.fromkeys(step.OPERATIONS))
    found.update(dict.fromkeys(LOCK_OPERATIONS[1:]))
    return tuple(found)


class _Planner:
    """The parts of :func:`plan`: layers first, then functions, then aliases and the record."""

    def __init__(self, current: CurrentState, stage: Stage) -> None:
        self.current = current
        self.stage = stage
        self.layer_steps: list[Step] = []
        self.function_steps: list[Step] = []
        self.alias_steps: list[Step] = []
        self.uploading: set[str] = set()
        self.refs: dict[str, LayerRef] = {}

    def upload(self, into: list[Step], sha256: str, path: Path, size: int) -> str:
        """The artifact key of a zip, planning its upload unless the bucket has it already."""
        key = artifact_key(sha256)
        if key not in self.current.artifacts and key not in self.uploading:
            self.uploading.add(key)
            into.append(UploadArtifact(key=key, path=path, sha256=sha256, size=size))
        return key

    def layer(self, layer: LayerArtifact) -> None:
        """Reuse the latest layer version when its sha256 matches, else upload and publish."""
        latest = self.current.layers.get(layer.name)
        if latest is not None and latest.sha256 == layer.sha256:
            self.refs[layer.name] = LayerRef(layer.name, latest.arn)
            return
        key = self.upload(self.layer_steps, layer.sha256, layer.zip_path, layer.zipped_bytes)
        self.layer_steps.append(
            PublishLayerVersion(
                layer=layer.name,
                layer_name=layer.layer_name or self.stage.layer_name(layer.name),
                key=key,
                sha256=layer.sha256,
                compatible_runtimes=layer.compatible_runtimes,
                compatible_architectures=layer.compatible_architectures,
                description=layer.description,
            )
        )
        self.refs[layer.name] = LayerRef(layer.name, None)

    def config(self, fn: FunctionArtifact) -> FunctionConfig:
        """The configuration ``fn`` should have, its layers resolved to this plan's refs."""
        missing = [name for name in fn.layers if name not in self.refs]
        if missing:
            raise DeployError(
                f"function {fn.name} attaches layer(s) {', '.join(missing)} that this deploy "
                "does not carry; check template.yaml and the build manifest."
            )
        return FunctionConfig(
            handler=fn.handler,
            runtime=fn.runtime,
            memory_size=fn.memory_size,
            timeout=fn.timeout,
            role=self.stage.role,
            environment=tuple(sorted(fn.environment.items())),
            layers=tuple(self.refs[layer] for layer in fn.layers),
        )

    def function(self, fn: FunctionArtifact) -> None:
        """Create or update ``$LATEST``; publish, check and alias a version unless live already."""
        name = fn.function_name or self.stage.function_name(fn.name)
        config = self.config(fn)
        cur = self.current.functions.get(fn.name)
        steps = self.function_steps
        if cur is None:
            key = self.upload(steps, fn.sha256, fn.zip_path, fn.zipped_bytes)
            steps.append(CreateFunction(fn.name, name, key, fn.sha256, fn.architecture, config))
        else:
            if not cur.latest.runs(fn.sha256, fn.architecture):
                key = self.upload(steps, fn.sha256, fn.zip_path, fn.zipped_bytes)
                steps.append(
                    UpdateFunctionCode(fn.name, name, key, fn.sha256, fn.architecture, fn.runtime)
                )
            if not config.matches(cur.latest):
                steps.append(UpdateFunctionConfiguration(fn.name, name, config))
            live = cur.alias_state
            if live is not None and live.runs(fn.sha256, fn.architecture) and config.matches(live):
                return
        steps.append(PublishVersion(fn.name, name, fn.sha256))
        if self.stage.health_check:
            steps.append(HealthCheck(fn.name, name, fn.health_event, fn.not_run))
        if cur is None or cur.alias_version is None:
            self.alias_steps.append(CreateAlias(fn.name, name, self.stage.alias))
        else:
            self.alias_steps.append(MoveAlias(fn.name, name, self.stage.alias, cur.alias_version))


def plan(desired: DesiredState, current: CurrentState, stage: Stage) -> tuple[Step, ...]:
    """The steps that take ``stage`` from ``current`` to ``desired``. Pure.

    A layer is published only when its sha256 differs from the latest published version's. A
    function's ``$LATEST`` code and configuration are updated where they differ; a version is
    published and the alias moved only when the alias target differs from what is desired. An
    unchanged build yields ``()``: nothing uploaded, published, moved or recorded — unless the
    aliases differ from the newest release record (a deploy killed before it recorded), then
    the plan is that record alone.
    """
    planner = _Planner(current, stage)
    for layer in desired.layers:
        planner.layer(layer)
    for fn in desired.functions:
        planner.function(fn)
    steps = [*planner.layer_steps, *planner.function_steps, *planner.alias_steps]
    names = tuple(fn.name for fn in desired.functions)
    if steps or current.unrecorded(names):
        steps.append(RecordRelease(stage.name, names))
    return tuple(steps)


# --------------------------------------------------------------------------- runtime lifecycle


def _runtime_action(step: Step) -> tuple[str, str] | None:
    """(runtime, "create" or "update") for a step that creates or updates a function."""
    if isinstance(step, CreateFunction):
        return step.config.runtime, "create"
    if isinstance(step, UpdateFunctionConfiguration):
        return step.config.runtime, "update"
    if isinstance(step, UpdateFunctionCode):
        return step.runtime, "update"
    return None


def runtime_problems(
    steps: Sequence[Step],
    today: dt.date,
    lifecycle: Callable[[str, dt.date], Lifecycle],
    source: str = "AWS's runtime lifecycle dates",
) -> tuple[tuple[str, bool], ...]:
    """Runtime lifecycle findings for ``steps``: a (message, blocked) pair per runtime.

    The message is :func:`~layerkit.runtime.lifecycle.deprecation_notice`, the wording every
    command uses.

    ``lifecycle(runtime, today)`` is the lifecycle as data (the deployer passes cfn-lint's
    table); ``source`` names it in messages. ``blocked`` is True when AWS refuses the step's
    create or update on ``today``; otherwise the message is a deprecation warning.
    """
    findings: dict[str, tuple[str, bool]] = {}
    for step in steps:
        found = _runtime_action(step)
        if found is None or not found[0]:
            continue
        runtime, action = found
        status = lifecycle(runtime, today)
        blocked = status.blocked_for_create if action == "create" else status.blocked_for_update
        notice = deprecation_notice(runtime, status, today, source)
        if notice is not None:  # one notice per runtime: blocked if any of its steps is
            findings[runtime] = (notice, blocked or findings.get(runtime, ("", False))[1])
    return tuple(findings.values())
