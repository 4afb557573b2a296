"""The deploy plan: what a stage should run, what it runs, and the steps between. All pure.

:func:`plan` turns a :class:`DesiredState` (from the build) and a :class:`CurrentState` (what
the stage runs now) into a tuple of frozen :class:`Step` data; an unchanged build plans
nothing at all. :func:`operations` lists the AWS calls a plan makes, :func:`runtime_problems`
the runtime lifecycle findings for it. Nothing here talks to AWS or reads a file.

Layer code is compared by sha256: a layer version's ``Content.CodeSha256`` is the base64 of the
zip's sha256 digest (real Lambda and moto alike), the build manifest holds hex; both are
compared as hex. Code always travels through S3 under content-addressed keys
(``artifacts/<sha256>.zip``), never as ``ZipFile``: the ML layer is larger than the 50 MiB a
request may carry.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from layerkit.errors import DeployError
from layerkit.project.stages import Stage
from layerkit.runtime.lifecycle import RuntimeStatus

ARTIFACT_PREFIX = "artifacts/"
DEFAULT_HEALTH_EVENT = b'{"layerkit": "health-check"}'


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


# --------------------------------------------------------------------------- steps and plan


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


@dataclass(frozen=True)
class Step:
    """One deploy action. ``OPERATIONS`` lists the AWS calls it makes, as (service, operation)."""

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

    OPERATIONS = (("lambda", "PublishVersion"),)
    sha256: str

    def describe(self) -> str:
        """One line for the plan printout."""
        return f"publish version of {self.function_name}"


@dataclass(frozen=True)
class HealthCheck(FunctionStep):
    """Invoke the freshly published version; a FunctionError fails the deploy."""

    OPERATIONS = (("lambda", "Invoke"),)
    payload: bytes

    def describe(self) -> str:
        """One line for the plan printout."""
        return f"invoke  the new version of {self.function_name} (health check)"


@dataclass(frozen=True)
class CreateAlias(FunctionStep):
    """Create the stage alias on the new version."""

    OPERATIONS = (("lambda", "CreateAlias"),)
    alias: str

    def describe(self) -> str:
        """One line for the plan printout."""
        return f"create  alias {self.function_name}:{self.alias} -> new version"


@dataclass(frozen=True)
class MoveAlias(FunctionStep):
    """Move the stage alias from ``from_version`` to the new version."""

    OPERATIONS = (("lambda", "UpdateAlias"),)
    alias: str
    from_version: str

    def describe(self) -> str:
        """One line for the plan printout."""
        return f"move    alias {self.function_name}:{self.alias} {self.from_version} -> new version"


@dataclass(frozen=True)
class RecordRelease(Step):
    """Write the release record (a new S3 object, never an overwrite)."""

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
    ("lambda", "GetFunction"),  # the tags: who owns an existing function (deploy.ownership)
    ("lambda", "GetAlias"),
    ("s3", "HeadObject"),
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


def plan(desired: DesiredState, current: CurrentState, stage: Stage) -> tuple[Step, ...]:
    """The steps that take ``stage`` from ``current`` to ``desired``. Pure.

    A layer is published only when its sha256 differs from the latest published version's. A
    function's ``$LATEST`` code and configuration are updated where they differ; a version is
    published and the alias moved only when the alias target differs from what is desired. An
    unchanged build yields ``()``: nothing uploaded, published, moved or recorded.
    """
    layer_steps: list[Step] = []
    function_steps: list[Step] = []
    alias_steps: list[Step] = []
    uploading: set[str] = set()

    def upload(into: list[Step], sha256: str, path: Path, size: int) -> str:
        key = artifact_key(sha256)
        if key not in current.artifacts and key not in uploading:
            uploading.add(key)
            into.append(UploadArtifact(key=key, path=path, sha256=sha256, size=size))
        return key

    refs: dict[str, LayerRef] = {}
    for layer in desired.layers:
        latest = current.layers.get(layer.name)
        if latest is not None and latest.sha256 == layer.sha256:
            refs[layer.name] = LayerRef(layer.name, latest.arn)
            continue
        key = upload(layer_steps, layer.sha256, layer.zip_path, layer.zipped_bytes)
        layer_steps.append(
            PublishLayerVersion(
                layer=layer.name,
                layer_name=stage.layer_name(layer.name),
                key=key,
                sha256=layer.sha256,
                compatible_runtimes=layer.compatible_runtimes,
                compatible_architectures=layer.compatible_architectures,
                description=layer.description,
            )
        )
        refs[layer.name] = LayerRef(layer.name, None)

    for fn in desired.functions:
        missing = [name for name in fn.layers if name not in refs]
        if missing:
            raise DeployError(
                f"function {fn.name} attaches layer(s) {', '.join(missing)} that this deploy "
                "does not carry; check template.yaml and the build manifest."
            )
        name = stage.function_name(fn.name)
        config = FunctionConfig(
            handler=fn.handler,
            runtime=fn.runtime,
            memory_size=fn.memory_size,
            timeout=fn.timeout,
            role=stage.role,
            environment=tuple(sorted(fn.environment.items())),
            layers=tuple(refs[layer] for layer in fn.layers),
        )
        cur = current.functions.get(fn.name)
        if cur is None:
            key = upload(function_steps, fn.sha256, fn.zip_path, fn.zipped_bytes)
            function_steps.append(
                CreateFunction(fn.name, name, key, fn.sha256, fn.architecture, config)
            )
        else:
            if not cur.latest.runs(fn.sha256, fn.architecture):
                key = upload(function_steps, fn.sha256, fn.zip_path, fn.zipped_bytes)
                function_steps.append(
                    UpdateFunctionCode(fn.name, name, key, fn.sha256, fn.architecture, fn.runtime)
                )
            if not config.matches(cur.latest):
                function_steps.append(UpdateFunctionConfiguration(fn.name, name, config))
            live = cur.alias_state
            if live is not None and live.runs(fn.sha256, fn.architecture) and config.matches(live):
                continue
        function_steps.append(PublishVersion(fn.name, name, fn.sha256))
        if stage.health_check:
            function_steps.append(HealthCheck(fn.name, name, fn.health_event))
        if cur is None or cur.alias_version is None:
            alias_steps.append(CreateAlias(fn.name, name, stage.alias))
        else:
            alias_steps.append(MoveAlias(fn.name, name, stage.alias, cur.alias_version))

    steps = [*layer_steps, *function_steps, *alias_steps]
    if steps:
        steps.append(RecordRelease(stage.name, tuple(fn.name for fn in desired.functions)))
    return tuple(steps)


# --------------------------------------------------------------------------- runtime lifecycle


def runtime_problems(
    steps: Sequence[Step], statuses: Mapping[str, RuntimeStatus]
) -> tuple[tuple[str, bool], ...]:
    """Runtime lifecycle findings for ``steps``: (message, blocked) pairs.

    ``statuses`` holds each runtime's lifecycle on the deploy day, as data (the caller reads
    them: :func:`layerkit.runtime.lifecycle.runtime_lifecycle`); a runtime not in it is live.
    ``blocked`` is True when AWS refuses the step's create or update that day; otherwise the
    message is a deprecation warning.
    """
    findings: dict[str, tuple[str, bool]] = {}
    for step in steps:
        if isinstance(step, CreateFunction):
            runtime, action = step.config.runtime, "create"
        elif isinstance(step, UpdateFunctionConfiguration):
            runtime, action = step.config.runtime, "update"
        elif isinstance(step, UpdateFunctionCode):
            runtime, action = step.runtime, "update"
        else:
            continue
        status = statuses.get(runtime) if runtime else None
        if status is None:
            continue
        blocked = status.blocked_for_create if action == "create" else status.blocked_for_update
        block_day = status.create_blocked if action == "create" else status.update_blocked
        later = (
            " The way out is one setting: Runtime in template.yaml Globals.Function "
            "(python3.12 is built and validated by `nox -s validate_layers`)"
            + (f"; AWS names {status.successor} as the successor." if status.successor else ".")
        )
        key = f"{runtime}:{action}"
        if blocked:
            findings[key] = (
                f"{runtime}: AWS blocks function {action}s since {block_day} "
                f"({status.source}).{later}",
                True,
            )
        elif status.is_deprecated:
            findings.setdefault(
                key,
                (
                    f"{runtime} is deprecated since {status.deprecated}; AWS blocks {action}s "
                    f"from {block_day or 'a date not yet set'}.{later}",
                    False,
                ),
            )
    return tuple(findings.values())
