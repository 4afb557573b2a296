"""Deploy built layers and functions to a stage: plan, apply, roll back, record the release.

The flow, each part usable on its own:

- :func:`desired_state` turns the build manifest into what the stage should run (pure glue: it
  only reads the manifest and hashes the zips it names).
- :func:`read_current` asks AWS what the stage runs now: the latest version of each layer and
  its code sha256, each function's ``$LATEST`` configuration and the version its stage alias
  points to.
- :func:`plan` is pure: desired + current -> a tuple of frozen :class:`Step` data. An unchanged
  build plans nothing at all.
- :func:`apply` runs the steps. Before every change it journals how to undo it (the exact alias
  target, the exact previous ``$LATEST`` code sha and configuration, the layer version it
  published). On any failure it undoes the journal in reverse, attempting every undo even when
  another fails, and raises DeployError with a summary of what failed, what was restored and
  what could not be.
- :func:`deploy` wraps it all with the stage lock; :func:`rollback` moves a stage back to a
  recorded release.

Layer code is compared by sha256: a layer version's ``Content.CodeSha256`` is the base64 of the
zip's sha256 digest (real Lambda and moto alike), the build manifest holds hex; both are
compared as hex. Code always travels through S3 under content-addressed keys
(``artifacts/<sha256>.zip``), never as ``ZipFile``: the ML layer is larger than the 50 MiB a
request may carry.

What a failed deploy leaves behind, on purpose: uploaded artifacts (content-addressed, reused by
the next deploy) and function versions it published (immutable, no alias points to them).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from layerkit.awsclients import Clients
from layerkit.errors import DeployError
from layerkit.releases import (
    FunctionRelease,
    Release,
    list_releases,
    new_release_id,
    previous_release_id,
    read_release,
    write_release,
)
from layerkit.spec import Project
from layerkit.stagelock import acquire, default_owner
from layerkit.stagelock import release as release_lock
from layerkit.stages import Stage
from layerkit.templatecheck import RuntimeStatus, lifecycle_source, runtime_lifecycle

ARTIFACT_PREFIX = "artifacts/"
HEALTH_EVENT = "events/health.json"
DEFAULT_HEALTH_EVENT = b'{"layerkit": "health-check"}'
_AWS_ERRORS = (ClientError, BotoCoreError, WaiterError)


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


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _template_environment(project: Project, logical_id: str) -> dict[str, str]:
    doc = project.template.document
    merged: dict[str, Any] = {}
    globals_env = ((doc.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    merged.update(globals_env.get("Variables") or {})
    props = (doc["Resources"][logical_id].get("Properties") or {}) if logical_id else {}
    merged.update((props.get("Environment") or {}).get("Variables") or {})
    for key, value in merged.items():
        if not isinstance(value, (str, int, float, bool)):
            raise DeployError(
                f"{project.template.path}: {logical_id}: environment variable {key} is "
                f"{value!r}; layerkit deploys through the Lambda API and only sets literal "
                "values. Write a plain string, or set it per stage outside the template."
            )
    return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in merged.items()}


def _field(entry: Any, name: str) -> Any:
    return entry.get(name) if isinstance(entry, Mapping) else getattr(entry, name, None)


def _artifact_entry(records: Mapping[str, Any], rel: str, dist: Path) -> tuple[Path, str, int]:
    entry = records.get(rel)
    path = dist / rel
    if entry is None:
        raise DeployError(
            f"{dist / 'manifest.json'} has no {rel}: the build did not produce it. Run "
            "`inv build.all` and deploy again."
        )
    if not path.is_file():
        raise DeployError(
            f"{path} is missing although the manifest lists it; run `inv build.all` again."
        )
    actual = file_sha256(path)
    if actual != _field(entry, "sha256"):
        raise DeployError(
            f"{path} does not match {dist / 'manifest.json'} (sha256 {actual[:12]}… on disk, "
            f"{str(_field(entry, 'sha256'))[:12]}… in the manifest): it changed after the "
            "build. Run `inv build.all` and deploy again."
        )
    return path, actual, int(_field(entry, "zipped_bytes") or path.stat().st_size)


def desired_state(
    project: Project, manifest: Mapping[str, Any], dist: Path, commit: str | None = None
) -> DesiredState:
    """What to deploy: every template layer and function, from the built zips in ``dist``.

    ``manifest`` is either the parsed ``manifest.json`` (``{"target": ..., "artifacts": {...}}``)
    or its artifact records by path (``manifest.read_manifest(dist)``, ``BuildResult.records``).
    Refuses (DeployError) artifacts for another target, an artifact the manifest does not
    list, a missing zip, or a zip whose sha256 differs from the manifest's. Staleness against
    the current inputs is the build's business (``build.require_fresh``), checked first by the
    caller.
    """
    target = project.deploy_target
    records: Mapping[str, Any] = manifest.get("artifacts", manifest)
    targets = {manifest.get("target")} if "artifacts" in manifest else set()
    targets |= {_field(r, "target") for r in records.values()}
    wrong = sorted(str(t) for t in targets - {None, target.key})
    if wrong:
        raise DeployError(
            f"{dist / 'manifest.json'} holds artifacts built for {', '.join(wrong)}, but "
            f"template.yaml deploys {target.key}; run `inv build.all` and deploy again."
        )
    template_layers = {tl.layer: tl for tl in project.template.layers}
    layers = []
    for layer in project.layers:
        if layer.name not in template_layers:
            continue
        tl = template_layers[layer.name]
        path, sha, size = _artifact_entry(records, f"layers/{layer.name}.zip", dist)
        layers.append(
            LayerArtifact(
                name=layer.name,
                zip_path=path,
                sha256=sha,
                zipped_bytes=size,
                compatible_runtimes=tl.compatible_runtimes or (target.runtime,),
                compatible_architectures=tl.compatible_architectures,
                description=layer.description,
            )
        )
    functions = []
    for fn in project.functions:
        path, sha, size = _artifact_entry(records, f"functions/{fn.name}.zip", dist)
        health = fn.path / HEALTH_EVENT
        functions.append(
            FunctionArtifact(
                name=fn.name,
                logical_id=fn.logical_id,
                zip_path=path,
                sha256=sha,
                handler=fn.handler,
                runtime=fn.target.runtime,
                architecture=fn.target.architecture,
                memory_size=fn.memory_size,
                timeout=fn.timeout,
                layers=fn.layers,
                environment=_template_environment(project, fn.logical_id),
                health_event=health.read_bytes() if health.is_file() else DEFAULT_HEALTH_EVENT,
                zipped_bytes=size,
            )
        )
    return DesiredState(layers=tuple(layers), functions=tuple(functions), commit=commit)


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


def _error_code(exc: Exception) -> str:
    return (
        str(exc.response.get("Error", {}).get("Code", "")) if isinstance(exc, ClientError) else ""
    )


def _not_found(exc: Exception) -> bool:
    return _error_code(exc) in ("ResourceNotFoundException", "404", "NoSuchKey", "NotFound")


def _latest_layer(lam: Any, layer_name: str) -> CurrentLayer | None:
    newest: Mapping[str, Any] | None = None
    try:
        for page in lam.get_paginator("list_layer_versions").paginate(LayerName=layer_name):
            for item in page.get("LayerVersions", ()):
                if newest is None or item["Version"] > newest["Version"]:
                    newest = item
    except ClientError as exc:
        if _not_found(exc):
            return None
        raise
    if newest is None:
        return None
    version = lam.get_layer_version(LayerName=layer_name, VersionNumber=newest["Version"])
    return CurrentLayer(
        layer_name=layer_name,
        arn=version["LayerVersionArn"],
        version=int(version["Version"]),
        sha256=hex_from_b64(version["Content"]["CodeSha256"]),
    )


def _current_function(lam: Any, function_name: str, alias: str) -> CurrentFunction | None:
    try:
        latest = function_state(lam.get_function_configuration(FunctionName=function_name))
    except ClientError as exc:
        if _not_found(exc):
            return None
        raise
    try:
        alias_version: str | None = lam.get_alias(FunctionName=function_name, Name=alias)[
            "FunctionVersion"
        ]
    except ClientError as exc:
        if not _not_found(exc):
            raise
        alias_version = None
    alias_state = None
    if alias_version is not None:
        alias_state = function_state(
            lam.get_function_configuration(FunctionName=function_name, Qualifier=alias_version)
        )
    return CurrentFunction(function_name, latest, alias_version, alias_state)


def _object_exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _not_found(exc):
            return False
        raise
    return True


def read_current(clients: Clients, stage: Stage, desired: DesiredState) -> CurrentState:
    """Read what ``stage`` runs now, for the layers and functions of ``desired``."""
    try:
        layers = {}
        for layer in desired.layers:
            found = _latest_layer(clients.lambda_, stage.layer_name(layer.name))
            if found is not None:
                layers[layer.name] = found
        functions = {}
        for fn in desired.functions:
            current = _current_function(clients.lambda_, stage.function_name(fn.name), stage.alias)
            if current is not None:
                functions[fn.name] = current
        keys = {artifact_key(a.sha256) for a in (*desired.layers, *desired.functions)}
        present = frozenset(k for k in sorted(keys) if _object_exists(clients.s3, stage.bucket, k))
    except _AWS_ERRORS as exc:
        raise DeployError(
            f"stage {stage.name!r}: could not read what the stage runs now ({exc}); nothing was "
            "changed. Check the credentials' permissions (lambda:Get*/List*, s3:HeadObject on "
            f"{stage.bucket}) and try again."
        ) from exc
    return CurrentState(layers=layers, functions=functions, artifacts=present)


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
        return (
            all(ref.arn is not None for ref in self.layers)
            and tuple(ref.arn for ref in self.layers) == state.layers
            and (self.handler, self.runtime, self.memory_size, self.timeout, self.role)
            == (state.handler, state.runtime, state.memory_size, state.timeout, state.role)
            and self.environment == state.environment
        )


@dataclass(frozen=True)
class Step:
    """One deploy action. ``OPERATIONS`` lists the AWS calls it makes, as (service, operation)."""

    OPERATIONS: ClassVar[tuple[tuple[str, str], ...]] = ()

    def describe(self) -> str:
        """One line for the plan printout."""
        raise NotImplementedError


@dataclass(frozen=True)
class UploadArtifact(Step):
    """Upload a zip to its content-addressed key."""

    OPERATIONS: ClassVar[tuple[tuple[str, str], ...]] = (("s3", "PutObject"),)
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

    OPERATIONS: ClassVar[tuple[tuple[str, str], ...]] = (("lambda", "PublishLayerVersion"),)
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
class CreateFunction(Step):
    """Create a function that does not exist yet, and wait until it is Active."""

    OPERATIONS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("lambda", "CreateFunction"),
        ("lambda", "GetFunction"),
    )
    function: str
    function_name: str
    key: str
    sha256: str
    architecture: str
    config: FunctionConfig

    def describe(self) -> str:
        """One line for the plan printout."""
        layers = ", ".join(r.layer for r in self.config.layers) or "no layers"
        return f"create  function {self.function_name} ({self.config.runtime}; {layers})"


@dataclass(frozen=True)
class UpdateFunctionCode(Step):
    """Point ``$LATEST`` at new code, and wait for the update to finish."""

    OPERATIONS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("lambda", "UpdateFunctionCode"),
        ("lambda", "GetFunction"),
    )
    function: str
    function_name: str
    key: str
    sha256: str
    architecture: str
    runtime: str = ""

    def describe(self) -> str:
        """One line for the plan printout."""
        return f"update  code of {self.function_name} (sha256 {self.sha256[:12]})"


@dataclass(frozen=True)
class UpdateFunctionConfiguration(Step):
    """Set ``$LATEST``'s configuration (layers in template order), and wait."""

    OPERATIONS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("lambda", "UpdateFunctionConfiguration"),
        ("lambda", "GetFunction"),
    )
    function: str
    function_name: str
    config: FunctionConfig

    def describe(self) -> str:
        """One line for the plan printout."""
        layers = ", ".join(
            r.layer + (" (new version)" if r.arn is None else f":{r.arn.rsplit(':', 1)[-1]}")
            for r in self.config.layers
        )
        return f"update  configuration of {self.function_name} (layers: {layers or 'none'})"


@dataclass(frozen=True)
class PublishVersion(Step):
    """Publish ``$LATEST`` as a version, guarded by the expected code sha."""

    OPERATIONS: ClassVar[tuple[tuple[str, str], ...]] = (("lambda", "PublishVersion"),)
    function: str
    function_name: str
    sha256: str

    def describe(self) -> str:
        """One line for the plan printout."""
        return f"publish version of {self.function_name}"


@dataclass(frozen=True)
class HealthCheck(Step):
    """Invoke the freshly published version; a FunctionError fails the deploy."""

    OPERATIONS: ClassVar[tuple[tuple[str, str], ...]] = (("lambda", "Invoke"),)
    function: str
    function_name: str
    payload: bytes

    def describe(self) -> str:
        """One line for the plan printout."""
        return f"invoke  the new version of {self.function_name} (health check)"


@dataclass(frozen=True)
class CreateAlias(Step):
    """Create the stage alias on the new version."""

    OPERATIONS: ClassVar[tuple[tuple[str, str], ...]] = (("lambda", "CreateAlias"),)
    function: str
    function_name: str
    alias: str

    def describe(self) -> str:
        """One line for the plan printout."""
        return f"create  alias {self.function_name}:{self.alias} -> new version"


@dataclass(frozen=True)
class MoveAlias(Step):
    """Move the stage alias from ``from_version`` to the new version."""

    OPERATIONS: ClassVar[tuple[tuple[str, str], ...]] = (("lambda", "UpdateAlias"),)
    function: str
    function_name: str
    alias: str
    from_version: str

    def describe(self) -> str:
        """One line for the plan printout."""
        return f"move    alias {self.function_name}:{self.alias} {self.from_version} -> new version"


@dataclass(frozen=True)
class RecordRelease(Step):
    """Write the release record (a new S3 object, never an overwrite)."""

    OPERATIONS: ClassVar[tuple[tuple[str, str], ...]] = (("s3", "PutObject"),)
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
            code_differs = (cur.latest.code_sha256, cur.latest.architecture) != (
                fn.sha256,
                fn.architecture,
            )
            if code_differs:
                key = upload(function_steps, fn.sha256, fn.zip_path, fn.zipped_bytes)
                function_steps.append(
                    UpdateFunctionCode(fn.name, name, key, fn.sha256, fn.architecture, fn.runtime)
                )
            if not config.matches(cur.latest):
                function_steps.append(UpdateFunctionConfiguration(fn.name, name, config))
            live = cur.alias_state
            if (
                live is not None
                and (live.code_sha256, live.architecture) == (fn.sha256, fn.architecture)
                and config.matches(live)
            ):
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
    steps: Sequence[Step],
    today: dt.date,
    lifecycle: Callable[[str, dt.date], RuntimeStatus] = runtime_lifecycle,
) -> tuple[tuple[str, bool], ...]:
    """Runtime lifecycle findings for ``steps``: (message, blocked) pairs.

    The dates come from cfn-lint's lifecycle data (:func:`templatecheck.runtime_lifecycle`).
    ``blocked`` is True when AWS refuses the step's create or update on ``today``; otherwise
    the message is a deprecation warning.
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
        if not runtime:
            continue
        status = lifecycle(runtime, today)
        blocked = status.blocked_for_create if action == "create" else status.blocked_for_update
        block_day = status.create_blocked if action == "create" else status.update_blocked
        later = f" Move to {status.successor}." if status.successor else ""
        key = f"{runtime}:{action}"
        if blocked:
            findings[key] = (
                f"{runtime}: AWS blocks function {action}s since {block_day} "
                f"({lifecycle_source()}).{later}",
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


# --------------------------------------------------------------------------- apply


@dataclass(frozen=True)
class ApplyResult:
    """What a successful apply changed."""

    release: Release | None
    uploaded: tuple[str, ...]
    published_layers: tuple[tuple[str, str], ...]  # (layer, new version ARN)
    published_versions: tuple[tuple[str, str], ...]  # (function name, version)
    aliases: tuple[tuple[str, str | None, str], ...]  # (function name, from, to)


@dataclass
class _Undo:
    description: str
    action: Callable[[], str]  # returns what was restored


class _Applier:
    def __init__(
        self,
        clients: Clients,
        stage: Stage,
        current: CurrentState,
        commit: str | None,
        now: Callable[[], dt.datetime],
        waiter_delay: int,
    ) -> None:
        self.lam = clients.lambda_
        self.s3 = clients.s3
        self.stage = stage
        self.current = current
        self.commit = commit
        self.now = now
        self.waiter_config = {"Delay": waiter_delay, "MaxAttempts": max(1, 600 // waiter_delay)}
        self.journal: list[_Undo] = []
        self.layer_arns: dict[str, str] = {}
        self.versions: dict[str, Mapping[str, Any]] = {}  # function folder -> published config
        self.latest_saved: set[str] = set()
        self.uploaded: list[str] = []
        self.aliases: list[tuple[str, str | None, str]] = []
        self.release: Release | None = None

    # -- helpers
    def _wait(self, waiter: str, function_name: str) -> None:
        self.lam.get_waiter(waiter).wait(
            FunctionName=function_name, WaiterConfig=self.waiter_config
        )

    def _layer_arns(self, config: FunctionConfig) -> list[str]:
        return [ref.arn or self.layer_arns[ref.layer] for ref in config.layers]

    def _save_latest(self, function: str, function_name: str) -> None:
        """Journal the restore of $LATEST once per function, before its first change."""
        if function in self.latest_saved:
            return
        self.latest_saved.add(function)
        previous = self.current.functions[function].latest
        self.journal.append(
            _Undo(
                f"restore $LATEST of {function_name}",
                lambda: restore_latest(self.lam, self.stage, function_name, previous, self._wait),
            )
        )

    # -- steps
    def run(self, step: Step) -> None:
        handler = getattr(self, f"_do_{type(step).__name__}")
        handler(step)

    def _do_UploadArtifact(self, step: UploadArtifact) -> None:
        with step.path.open("rb") as body:
            self.s3.put_object(
                Bucket=self.stage.bucket,
                Key=step.key,
                Body=body,
                ChecksumSHA256=b64_from_hex(step.sha256),
                ContentType="application/zip",
            )
        self.uploaded.append(step.key)

    def _do_PublishLayerVersion(self, step: PublishLayerVersion) -> None:
        response = self.lam.publish_layer_version(
            LayerName=step.layer_name,
            Description=step.description[:256],
            Content={"S3Bucket": self.stage.bucket, "S3Key": step.key},
            CompatibleRuntimes=list(step.compatible_runtimes),
            CompatibleArchitectures=list(step.compatible_architectures),
        )
        version = int(response["Version"])
        self.layer_arns[step.layer] = response["LayerVersionArn"]
        self.journal.append(
            _Undo(
                f"delete layer version {response['LayerVersionArn']}",
                lambda: _delete_layer_version(self.lam, step.layer_name, version),
            )
        )
        got = hex_from_b64(response["Content"]["CodeSha256"])
        if got != step.sha256:
            raise DeployError(
                f"layer {step.layer_name}: Lambda reports sha256 {got[:12]}… for the published "
                f"version, the build {step.sha256[:12]}…; {step.key} in {self.stage.bucket} "
                "does not hold the built zip."
            )

    def _do_CreateFunction(self, step: CreateFunction) -> None:
        self.journal.append(
            _Undo(
                f"delete function {step.function_name} (created by this deploy)",
                lambda: _delete_function(self.lam, step.function_name),
            )
        )
        self.lam.create_function(
            FunctionName=step.function_name,
            Runtime=step.config.runtime,
            Role=step.config.role,
            Handler=step.config.handler,
            Code={"S3Bucket": self.stage.bucket, "S3Key": step.key},
            MemorySize=step.config.memory_size,
            Timeout=step.config.timeout,
            Architectures=[step.architecture],
            Layers=self._layer_arns(step.config),
            Environment={"Variables": dict(step.config.environment)},
            Publish=False,
        )
        self._wait("function_active_v2", step.function_name)

    def _do_UpdateFunctionCode(self, step: UpdateFunctionCode) -> None:
        self._save_latest(step.function, step.function_name)
        self.lam.update_function_code(
            FunctionName=step.function_name,
            S3Bucket=self.stage.bucket,
            S3Key=step.key,
            Architectures=[step.architecture],
        )
        self._wait("function_updated_v2", step.function_name)

    def _do_UpdateFunctionConfiguration(self, step: UpdateFunctionConfiguration) -> None:
        self._save_latest(step.function, step.function_name)
        self.lam.update_function_configuration(
            **_config_kwargs(step.function_name, step.config, self._layer_arns(step.config))
        )
        self._wait("function_updated_v2", step.function_name)

    def _do_PublishVersion(self, step: PublishVersion) -> None:
        response = self.lam.publish_version(
            FunctionName=step.function_name, CodeSha256=b64_from_hex(step.sha256)
        )
        self.versions[step.function] = response

    def _do_HealthCheck(self, step: HealthCheck) -> None:
        version = self.versions[step.function]["Version"]
        # FunctionName "name:version": moto ignores Qualifier= on invoke.
        response = self.lam.invoke(
            FunctionName=f"{step.function_name}:{version}", Payload=step.payload
        )
        if response.get("FunctionError") or response.get("StatusCode", 200) >= 300:
            detail = response["Payload"].read()[:500].decode("utf-8", "replace")
            raise DeployError(
                f"health check of {step.function_name}:{version} failed "
                f"({response.get('FunctionError', 'status ' + str(response.get('StatusCode')))}): "
                f"{detail}"
            )

    def _do_CreateAlias(self, step: CreateAlias) -> None:
        version = self.versions[step.function]["Version"]
        self.journal.append(
            _Undo(
                f"delete alias {step.function_name}:{step.alias} (created by this deploy)",
                lambda: _delete_alias(self.lam, step.function_name, step.alias),
            )
        )
        self.lam.create_alias(
            FunctionName=step.function_name, Name=step.alias, FunctionVersion=version
        )
        self.aliases.append((step.function_name, None, version))

    def _do_MoveAlias(self, step: MoveAlias) -> None:
        version = self.versions[step.function]["Version"]
        self.journal.append(
            _Undo(
                f"move alias {step.function_name}:{step.alias} back to {step.from_version}",
                lambda: _point_alias(self.lam, step.function_name, step.alias, step.from_version),
            )
        )
        self.lam.update_alias(
            FunctionName=step.function_name, Name=step.alias, FunctionVersion=version
        )
        self.aliases.append((step.function_name, step.from_version, version))

    def _do_RecordRelease(self, step: RecordRelease) -> None:
        functions = []
        for function in step.functions:
            if function in self.versions:
                state = function_state(self.versions[function])
            else:
                live = self.current.functions[function].alias_state
                assert live is not None  # plan() skips a function only when its alias is live
                state = live
            functions.append(
                FunctionRelease(
                    function=function,
                    function_name=self.stage.function_name(function),
                    version=state.version,
                    code_sha256=state.code_sha256,
                    layers=state.layers,
                    handler=state.handler,
                    runtime=state.runtime,
                    architecture=state.architecture,
                    memory_size=state.memory_size,
                    timeout=state.timeout,
                    role=state.role,
                    environment=state.environment,
                )
            )
        draft = Release(
            release_id="",
            stage=self.stage.name,
            created=self.now().astimezone(dt.timezone.utc).isoformat(timespec="seconds"),
            commit=self.commit,
            kind="deploy",
            functions=tuple(functions),
            layers=tuple(sorted(self.layer_arns.items())),
        )
        release = replace(draft, release_id=new_release_id(draft.to_json(), self.now()))
        write_release(self.s3, self.stage, release)
        self.release = release

    # -- rollback
    def undo(self) -> tuple[list[str], list[str]]:
        restored: list[str] = []
        failed: list[str] = []
        for entry in reversed(self.journal):
            try:
                restored.append(entry.action())
            except (*_AWS_ERRORS, DeployError) as exc:  # every undo is attempted
                failed.append(f"{entry.description}: {exc}")
        return restored, failed


def _config_kwargs(function_name: str, config: FunctionConfig, layers: list[str]) -> dict[str, Any]:
    return {
        "FunctionName": function_name,
        "Role": config.role,
        "Handler": config.handler,
        "Runtime": config.runtime,
        "MemorySize": config.memory_size,
        "Timeout": config.timeout,
        "Layers": layers,
        "Environment": {"Variables": dict(config.environment)},
    }


def _delete_layer_version(lam: Any, layer_name: str, version: int) -> str:
    lam.delete_layer_version(LayerName=layer_name, VersionNumber=version)
    return f"deleted layer version {layer_name}:{version}"


def _delete_function(lam: Any, function_name: str) -> str:
    try:
        lam.delete_function(FunctionName=function_name)
    except ClientError as exc:
        if not _not_found(exc):
            raise
        return f"function {function_name} was not created: nothing to delete"
    return f"deleted function {function_name}"


def _delete_alias(lam: Any, function_name: str, alias: str) -> str:
    try:
        lam.delete_alias(FunctionName=function_name, Name=alias)
    except ClientError as exc:
        if not _not_found(exc):
            raise
        return f"alias {function_name}:{alias} was not created: nothing to delete"
    return f"deleted alias {function_name}:{alias}"


def _point_alias(lam: Any, function_name: str, alias: str, version: str) -> str:
    current = lam.get_alias(FunctionName=function_name, Name=alias)["FunctionVersion"]
    if current == version:
        return f"alias {function_name}:{alias} still on version {version}"
    lam.update_alias(FunctionName=function_name, Name=alias, FunctionVersion=version)
    return f"alias {function_name}:{alias} back on version {version} (was {current})"


def restore_latest(
    lam: Any,
    stage: Stage,
    function_name: str,
    previous: FunctionState,
    wait: Callable[[str, str], None],
) -> str:
    """Put ``$LATEST`` back to ``previous``'s code and configuration, whatever fails first.

    Code comes back from ``artifacts/<sha256>.zip`` in the stage bucket (every layerkit deploy
    leaves it there). Code and configuration are each attempted; errors are collected and
    raised together as one DeployError.
    """
    now = function_state(lam.get_function_configuration(FunctionName=function_name))
    done: list[str] = []
    errors: list[str] = []
    if (now.code_sha256, now.architecture) != (previous.code_sha256, previous.architecture):
        try:
            lam.update_function_code(
                FunctionName=function_name,
                S3Bucket=stage.bucket,
                S3Key=artifact_key(previous.code_sha256),
                Architectures=[previous.architecture],
            )
            wait("function_updated_v2", function_name)
            done.append(f"code sha256 {previous.code_sha256[:12]}")
        except _AWS_ERRORS as exc:
            errors.append(
                f"code (from s3://{stage.bucket}/{artifact_key(previous.code_sha256)}): {exc}"
            )
    if now.layers != previous.layers or (
        now.handler,
        now.runtime,
        now.memory_size,
        now.timeout,
        now.role,
        now.environment,
    ) != (
        previous.handler,
        previous.runtime,
        previous.memory_size,
        previous.timeout,
        previous.role,
        previous.environment,
    ):
        try:
            lam.update_function_configuration(
                FunctionName=function_name,
                Role=previous.role,
                Handler=previous.handler,
                Runtime=previous.runtime,
                MemorySize=previous.memory_size,
                Timeout=previous.timeout,
                Layers=list(previous.layers),
                Environment={"Variables": dict(previous.environment)},
            )
            wait("function_updated_v2", function_name)
            done.append(f"configuration ({len(previous.layers)} layers)")
        except _AWS_ERRORS as exc:
            errors.append(f"configuration: {exc}")
    if errors:
        raise DeployError("; ".join(errors) + (f" (restored: {', '.join(done)})" if done else ""))
    if not done:
        return f"$LATEST of {function_name} unchanged"
    return f"$LATEST of {function_name} restored: {', '.join(done)}"


def apply(
    steps: Sequence[Step],
    clients: Clients,
    stage: Stage,
    current: CurrentState,
    *,
    commit: str | None = None,
    now: Callable[[], dt.datetime] | None = None,
    waiter_delay: int = 1,
) -> ApplyResult:
    """Run ``steps`` (from :func:`plan` against ``current``); on any failure undo and raise.

    The undo runs in reverse order and attempts every entry: aliases back to their exact
    previous versions, ``$LATEST`` back to its exact previous code and configuration, functions
    this deploy created deleted, layer versions it published deleted. The DeployError names the
    failed step, what was restored and what could not be.
    """
    clock = now or (lambda: dt.datetime.now(dt.timezone.utc))
    applier = _Applier(clients, stage, current, commit, clock, waiter_delay)
    for index, step in enumerate(steps, 1):
        try:
            applier.run(step)
        except (*_AWS_ERRORS, DeployError) as exc:
            restored, failed = applier.undo()
            lines = [
                f"deploy to stage {stage.name!r} failed at step {index}/{len(steps)} "
                f"({' '.join(step.describe().split())}): {exc}",
                "Rolled back in reverse order:",
                *(f"  restored: {line}" for line in restored),
                *(f"  NOT restored: {line}" for line in failed),
            ]
            if not restored and not failed:
                lines[1] = "Nothing had been changed yet."
            if failed:
                lines.append(
                    "Some changes could not be undone: fix the cause above, then run "
                    f"`inv rollback --stage={stage.name}` or deploy again."
                )
            else:
                lines.append("The stage runs exactly what it ran before this deploy.")
            raise DeployError("\n".join(lines)) from exc
    return ApplyResult(
        release=applier.release,
        uploaded=tuple(applier.uploaded),
        published_layers=tuple(applier.layer_arns.items()),
        published_versions=tuple(
            (stage.function_name(fn), str(cfg["Version"])) for fn, cfg in applier.versions.items()
        ),
        aliases=tuple(applier.aliases),
    )


# --------------------------------------------------------------------------- deploy / rollback


@dataclass(frozen=True)
class DeployOutcome:
    """What :func:`deploy` planned and, unless a dry run, did."""

    stage: str
    steps: tuple[Step, ...]
    result: ApplyResult | None  # None: dry run, or nothing to do
    warnings: tuple[str, ...]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _release_lock(clients: Clients, stage: Stage, lock: Any) -> str | None:
    try:
        release_lock(clients.s3, stage, lock)
    except _AWS_ERRORS as exc:
        return (
            f"the deploy lock s3://{stage.bucket}/{stage.lock_key} could not be removed "
            f"({exc}); remove it with `inv deploy --stage={stage.name} --force-unlock`."
        )
    return None


def deploy(
    desired: DesiredState,
    clients: Clients,
    stage: Stage,
    *,
    dry_run: bool = False,
    allow_deprecated_runtime: bool = False,
    owner: str | None = None,
    today: dt.date | None = None,
    now: Callable[[], dt.datetime] = _utcnow,
    lifecycle: Callable[[str, dt.date], RuntimeStatus] = runtime_lifecycle,
    waiter_delay: int = 1,
) -> DeployOutcome:
    """Deploy ``desired`` to ``stage`` under the stage lock; see :func:`plan` and :func:`apply`.

    A dry run takes no lock and changes nothing: it returns the plan. A runtime AWS blocks
    (cfn-lint's lifecycle data) is refused on real AWS unless ``allow_deprecated_runtime``; the
    local stage only warns.
    """
    if dry_run:
        current = read_current(clients, stage, desired)
        steps = plan(desired, current, stage)
        warnings = tuple(m for m, _ in runtime_problems(steps, today or now().date(), lifecycle))
        return DeployOutcome(stage.name, steps, None, warnings)
    try:
        lock = acquire(clients.s3, stage, owner or default_owner(), "deploy", now())
    except _AWS_ERRORS as exc:  # pragma: no cover - acquire wraps its own errors
        raise DeployError(f"stage {stage.name!r}: could not take the deploy lock: {exc}") from exc
    outcome: DeployOutcome | None = None
    try:
        current = read_current(clients, stage, desired)
        steps = plan(desired, current, stage)
        warnings: list[str] = []
        for message, blocked in runtime_problems(steps, today or now().date(), lifecycle):
            if blocked and not stage.local and not allow_deprecated_runtime:
                raise DeployError(
                    f"{message} Refusing to deploy to stage {stage.name!r}; pass "
                    "--allow-deprecated-runtime to try anyway, or change Runtime in "
                    "template.yaml."
                )
            warnings.append(message)
        result = (
            apply(
                steps,
                clients,
                stage,
                current,
                commit=desired.commit,
                now=now,
                waiter_delay=waiter_delay,
            )
            if steps
            else None
        )
        outcome = DeployOutcome(stage.name, steps, result, tuple(warnings))
    except DeployError as exc:
        problem = _release_lock(clients, stage, lock)
        if problem:
            raise DeployError(f"{exc}\nAlso: {problem}") from exc
        raise
    problem = _release_lock(clients, stage, lock)
    if problem:
        raise DeployError(f"the deploy succeeded, but {problem}")
    return outcome


@dataclass(frozen=True)
class RollbackOutcome:
    """What :func:`rollback` restored."""

    stage: str
    target: Release
    release: Release  # the new record of kind "rollback"
    restored: tuple[str, ...]
    skipped: tuple[str, ...]  # functions the stage runs that the target release does not name


def rollback(
    clients: Clients,
    stage: Stage,
    release_id: str | None = None,
    *,
    owner: str | None = None,
    commit: str | None = None,
    now: Callable[[], dt.datetime] = _utcnow,
    waiter_delay: int = 1,
) -> RollbackOutcome:
    """Move ``stage`` back to a recorded release (by default: the deploy before the live one).

    Each function's alias moves to the version the release recorded; that version carries its
    own layers and code, so this alone restores traffic. ``$LATEST`` is then restored to the
    release's code and configuration too, so the next deploy plans against what runs. Every
    step is attempted; failures are collected into one DeployError. The rollback is recorded
    as a new release (kind ``rollback``); history is never rewritten.
    """
    lock = acquire(clients.s3, stage, owner or default_owner(), "rollback", now())
    failures: list[str] = []
    restored: list[str] = []
    try:
        try:
            history = list_releases(clients.s3, stage)
            target_id = release_id or previous_release_id(history)
            target = read_release(clients.s3, stage, target_id)
        except _AWS_ERRORS as exc:
            raise DeployError(f"stage {stage.name!r}: could not read the releases: {exc}") from exc
        lam = clients.lambda_
        waiter_config = {"Delay": waiter_delay, "MaxAttempts": max(1, 600 // waiter_delay)}

        def wait(waiter: str, function_name: str) -> None:
            lam.get_waiter(waiter).wait(FunctionName=function_name, WaiterConfig=waiter_config)

        for fn in target.functions:  # traffic first: aliases
            try:
                restored.append(
                    _point_or_create_alias(lam, fn.function_name, stage.alias, fn.version)
                )
            except _AWS_ERRORS as exc:
                failures.append(f"alias {fn.function_name}:{stage.alias} -> {fn.version}: {exc}")
        for fn in target.functions:  # then $LATEST, for the next deploy's plan
            previous = FunctionState(
                code_sha256=fn.code_sha256,
                handler=fn.handler,
                runtime=fn.runtime,
                architecture=fn.architecture,
                memory_size=fn.memory_size,
                timeout=fn.timeout,
                role=fn.role,
                environment=fn.environment,
                layers=fn.layers,
            )
            try:
                restored.append(restore_latest(lam, stage, fn.function_name, previous, wait))
            except (*_AWS_ERRORS, DeployError) as exc:
                failures.append(f"$LATEST of {fn.function_name}: {exc}")
        live_names = {f.function for r in history[-1:] for f in r.functions}
        skipped = tuple(sorted(live_names - {f.function for f in target.functions}))
        draft = Release(
            release_id="",
            stage=stage.name,
            created=now().astimezone(dt.timezone.utc).isoformat(timespec="seconds"),
            commit=commit if commit is not None else target.commit,
            kind="rollback",
            functions=target.functions,
            layers=target.layers,
            rolled_back_to=target.release_id,
        )
        record = replace(draft, release_id=new_release_id(draft.to_json(), now()))
        if failures:
            raise DeployError(
                f"rollback of stage {stage.name!r} to release {target.release_id} was "
                "incomplete (no rollback release recorded):\n"
                + "\n".join(f"  restored: {line}" for line in restored)
                + ("\n" if restored else "")
                + "\n".join(f"  NOT restored: {line}" for line in failures)
            )
        try:
            write_release(clients.s3, stage, record)
        except _AWS_ERRORS as exc:
            raise DeployError(
                f"stage {stage.name!r} runs release {target.release_id} again, but the rollback "
                f"could not be recorded ({exc}); `inv releases` will not show it."
            ) from exc
    except DeployError as exc:
        problem = _release_lock(clients, stage, lock)
        if problem:
            raise DeployError(f"{exc}\nAlso: {problem}") from exc
        raise
    problem = _release_lock(clients, stage, lock)
    if problem:
        raise DeployError(f"the rollback succeeded, but {problem}")
    return RollbackOutcome(stage.name, target, record, tuple(restored), skipped)


def _point_or_create_alias(lam: Any, function_name: str, alias: str, version: str) -> str:
    try:
        return _point_alias(lam, function_name, alias, version)
    except ClientError as exc:
        if not _not_found(exc):
            raise
    lam.create_alias(FunctionName=function_name, Name=alias, FunctionVersion=version)
    return f"alias {function_name}:{alias} created on version {version}"
