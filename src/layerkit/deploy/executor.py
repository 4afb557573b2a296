"""Execute a deploy plan: run its steps, journal how to undo each change, undo all on failure.

One plan, several executors (the idea of chalice's ``DisplayOnlyExecutor``): :func:`execute`
runs the steps of :func:`layerkit.deploy.planner.plan` through an :class:`Executor` and streams
a :class:`StepEvent` per step to a progress callback as it happens. :class:`AwsExecutor` makes
the AWS calls; :class:`DescribeOnlyExecutor` (a dry run) only describes them. :func:`apply` is
``execute`` with an :class:`AwsExecutor`. Before every change it journals how to
undo it (the exact alias target, the exact previous ``$LATEST`` code sha and configuration, the
layer version it published). On any failure it undoes the journal in reverse, attempting every
undo even when another fails, and raises DeployError with a summary of what failed, what was
restored and what could not be. The undo actions (:func:`point_alias`, :func:`restore_latest`)
also serve :mod:`layerkit.deploy.rollback`.

What a failed deploy leaves behind, on purpose: uploaded artifacts (content-addressed, reused by
the next deploy) and function versions it published (immutable, no alias points to them).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from layerkit.deploy.clients import AWS_ERRORS, Clients, if_found
from layerkit.deploy.models import (
    CurrentState,
    FunctionConfig,
    FunctionState,
    ReleaseKind,
    artifact_key,
    b64_from_hex,
    function_state,
    hex_from_b64,
)
from layerkit.deploy.ownership import INV_DEPLOY, OWNER_TAG
from layerkit.deploy.planner import (
    CreateAlias,
    CreateFunction,
    HealthCheck,
    MoveAlias,
    PublishLayerVersion,
    PublishVersion,
    RecordRelease,
    Step,
    UpdateFunctionCode,
    UpdateFunctionConfiguration,
    UploadArtifact,
)
from layerkit.deploy.releases import FunctionRelease, Release, new_release, write_release
from layerkit.errors import DeployError, DeployInterrupted
from layerkit.project.stages import Stage


@dataclass(frozen=True)
class ApplyResult:
    """What a successful apply changed."""

    release: Release | None
    uploaded: tuple[str, ...]
    published_layers: tuple[tuple[str, str], ...]  # (layer, new version ARN)
    published_versions: tuple[tuple[str, str], ...]  # (function name, version)
    aliases: tuple[tuple[str, str | None, str], ...]  # (function name, from, to)


NOTHING_APPLIED = ApplyResult(None, (), (), (), ())


class StepPhase(str, Enum):
    """Where a step is: about to run, done, or failed (the undo follows)."""

    STARTED = "started"
    DONE = "done"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class StepEvent:
    """One progress event of a deploy: step ``index`` of ``total`` and where it is."""

    index: int
    total: int
    step: Step
    phase: StepPhase

    def line(self) -> str:
        """``[3/16] publish version of local-predictions`` (a failed step says so)."""
        text = " ".join(self.step.describe().split())
        return f"[{self.index}/{self.total}] {text}" + (
            " FAILED" if self.phase is StepPhase.FAILED else ""
        )


Progress = Callable[[StepEvent], None]


class Executor(Protocol):
    """Runs the steps of one plan, and undoes what it did when a later one fails."""

    #: False for an executor that only describes: the deploy then takes no stage lock.
    changes_stage: bool

    def run(self, step: Step) -> None:
        """Carry out ``step`` (journalling how to undo it first)."""

    def undo(self) -> tuple[list[str], list[str]]:
        """Undo everything done so far in reverse: (what was restored, what was not)."""

    def result(self) -> ApplyResult:
        """What the steps run so far changed."""


class DescribeOnlyExecutor:
    """A dry run: every step is described in :attr:`described`, nothing is called."""

    changes_stage = False

    def __init__(self) -> None:
        self.described: list[str] = []

    def run(self, step: Step) -> None:
        """Describe ``step``; change nothing."""
        self.described.append(step.describe())

    def undo(self) -> tuple[list[str], list[str]]:
        """Nothing was done, so nothing is undone."""
        return [], []

    def result(self) -> ApplyResult:
        """A dry run changes nothing."""
        return NOTHING_APPLIED


@dataclass
class _Undo:
    description: str
    action: Callable[[], str]  # returns what was restored


class AwsExecutor:
    """Makes a plan's AWS calls, journalling the undo of each change before making it."""

    changes_stage = True

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
        self._wait = function_waiter(self.lam, waiter_delay)
        self.journal: list[_Undo] = []
        self.layer_arns: dict[str, str] = {}
        self.versions: dict[str, Mapping[str, Any]] = {}  # function folder -> published config
        self.names: dict[str, str] = {}  # function folder -> its name on the stage
        self.latest_saved: set[str] = set()
        self.uploaded: list[str] = []
        self.aliases: list[tuple[str, str | None, str]] = []
        self.release: Release | None = None

    # -- helpers
    def _name(self, function: str) -> str:
        """The stage's name of the function folder ``function`` (the template's FunctionName)."""
        if function in self.names:
            return self.names[function]
        if function in self.current.functions:
            return self.current.functions[function].function_name
        return self.stage.function_name(function)

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
        """Carry out ``step``."""
        handlers: dict[type[Step], Callable[[Any], None]] = {
            UploadArtifact: self._upload,
            PublishLayerVersion: self._publish_layer,
            CreateFunction: self._create_function,
            UpdateFunctionCode: self._update_code,
            UpdateFunctionConfiguration: self._update_configuration,
            PublishVersion: self._publish_version,
            HealthCheck: self._health_check,
            CreateAlias: self._create_alias,
            MoveAlias: self._move_alias,
            RecordRelease: self._record_release,
        }
        handlers[type(step)](step)

    def _upload(self, step: UploadArtifact) -> None:
        with step.path.open("rb") as body:
            self.s3.put_object(
                Bucket=self.stage.bucket,
                Key=step.key,
                Body=body,
                ChecksumSHA256=b64_from_hex(step.sha256),
                ContentType="application/zip",
            )
        self.uploaded.append(step.key)

    def _publish_layer(self, step: PublishLayerVersion) -> None:
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

    def _create_function(self, step: CreateFunction) -> None:
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
            Tags={OWNER_TAG: INV_DEPLOY},  # see layerkit.deploy.ownership
            Publish=False,
        )
        self._wait("function_active_v2", step.function_name)

    def _update_code(self, step: UpdateFunctionCode) -> None:
        self._save_latest(step.function, step.function_name)
        self.lam.update_function_code(
            FunctionName=step.function_name,
            S3Bucket=self.stage.bucket,
            S3Key=step.key,
            Architectures=[step.architecture],
        )
        self._wait("function_updated_v2", step.function_name)

    def _update_configuration(self, step: UpdateFunctionConfiguration) -> None:
        self._save_latest(step.function, step.function_name)
        self.lam.update_function_configuration(
            **_config_kwargs(step.function_name, step.config, self._layer_arns(step.config))
        )
        self._wait("function_updated_v2", step.function_name)

    def _publish_version(self, step: PublishVersion) -> None:
        response = self.lam.publish_version(
            FunctionName=step.function_name, CodeSha256=b64_from_hex(step.sha256)
        )
        self.versions[step.function] = response
        self.names[step.function] = step.function_name

    def _health_check(self, step: HealthCheck) -> None:
        if step.not_run:  # this host cannot run it: the step's line says so and what was checked
            return
        version = self.versions[step.function]["Version"]
        check_health(self.lam, step.function_name, str(version), step.payload)

    def _create_alias(self, step: CreateAlias) -> None:
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

    def _move_alias(self, step: MoveAlias) -> None:
        version = self.versions[step.function]["Version"]
        self.journal.append(
            _Undo(
                f"move alias {step.function_name}:{step.alias} back to {step.from_version}",
                lambda: point_alias(self.lam, step.function_name, step.alias, step.from_version),
            )
        )
        self.lam.update_alias(
            FunctionName=step.function_name, Name=step.alias, FunctionVersion=version
        )
        self.aliases.append((step.function_name, step.from_version, version))

    def _record_release(self, step: RecordRelease) -> None:
        functions = []
        for function in step.functions:
            if function in self.versions:
                state = function_state(self.versions[function])
            else:
                live = self.current.functions[function].alias_state
                assert live is not None  # plan() skips a function only when its alias is live
                state = live
            functions.append(FunctionRelease.of(function, self._name(function), state))
        release = new_release(
            self.stage,
            ReleaseKind.DEPLOY,
            functions,
            sorted(self.layer_arns.items()),
            self.commit,
            self.now,
        )
        write_release(self.s3, self.stage, release)
        self.release = release

    # -- rollback
    def undo(self) -> tuple[list[str], list[str]]:
        """Undo the journal in reverse, attempting every entry."""
        restored: list[str] = []
        failed: list[str] = []
        for entry in reversed(self.journal):
            try:
                restored.append(entry.action())
            except (*AWS_ERRORS, DeployError) as exc:  # every undo is attempted
                failed.append(f"{entry.description}: {exc}")
        return restored, failed

    def result(self) -> ApplyResult:
        """What the steps run so far changed."""
        return ApplyResult(
            release=self.release,
            uploaded=tuple(self.uploaded),
            published_layers=tuple(self.layer_arns.items()),
            published_versions=tuple(
                (self._name(fn), str(cfg["Version"])) for fn, cfg in self.versions.items()
            ),
            aliases=tuple(self.aliases),
        )


def check_health(lam: Any, function_name: str, version: str, payload: bytes) -> None:
    """Invoke ``function_name:version``; a FunctionError raises DeployError with Lambda's error."""
    # FunctionName "name:version": moto ignores Qualifier= on invoke.
    response = lam.invoke(FunctionName=f"{function_name}:{version}", Payload=payload)
    if response.get("FunctionError") or response.get("StatusCode", 200) >= 300:
        kind = response.get("FunctionError") or f"status {response.get('StatusCode')}"
        raise DeployError(
            f"health check of {function_name}:{version} failed ({kind}): "
            f"{invoke_error(response['Payload'].read())}"
        )


def invoke_error(payload: bytes) -> str:
    """A failed invoke's payload as ``ErrorType: message`` (Lambda's error shape), or raw."""
    try:
        shape = json.loads(payload)
    except ValueError:
        shape = None
    if isinstance(shape, dict) and "errorMessage" in shape:
        return f"{shape.get('errorType', 'Error')}: {shape['errorMessage']}"
    return payload[:500].decode("utf-8", "replace")


def _config_kwargs(
    function_name: str, config: FunctionConfig | FunctionState, layers: list[str]
) -> dict[str, Any]:
    """UpdateFunctionConfiguration's arguments: ``config`` with the layer version ARNs."""
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
    if if_found(lam.delete_function, FunctionName=function_name) is None:
        return f"function {function_name} was not created: nothing to delete"
    return f"deleted function {function_name}"


def _delete_alias(lam: Any, function_name: str, alias: str) -> str:
    if if_found(lam.delete_alias, FunctionName=function_name, Name=alias) is None:
        return f"alias {function_name}:{alias} was not created: nothing to delete"
    return f"deleted alias {function_name}:{alias}"


def point_alias(lam: Any, function_name: str, alias: str, version: str) -> str:
    """Move ``alias`` back to ``version`` unless it is there already; says what it did."""
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
    if not now.runs(previous.code_sha256, previous.architecture):
        try:
            lam.update_function_code(
                FunctionName=function_name,
                S3Bucket=stage.bucket,
                S3Key=artifact_key(previous.code_sha256),
                Architectures=[previous.architecture],
            )
            wait("function_updated_v2", function_name)
            done.append(f"code sha256 {previous.code_sha256[:12]}")
        except AWS_ERRORS as exc:
            errors.append(
                f"code (from s3://{stage.bucket}/{artifact_key(previous.code_sha256)}): {exc}"
            )
    if now.configuration() != previous.configuration():
        try:
            lam.update_function_configuration(
                **_config_kwargs(function_name, previous, list(previous.layers))
            )
            wait("function_updated_v2", function_name)
            done.append(f"configuration ({len(previous.layers)} layers)")
        except AWS_ERRORS as exc:
            errors.append(f"configuration: {exc}")
    if errors:
        raise DeployError("; ".join(errors) + (f" (restored: {', '.join(done)})" if done else ""))
    if not done:
        return f"$LATEST of {function_name} unchanged"
    return f"$LATEST of {function_name} restored: {', '.join(done)}"


def utcnow() -> dt.datetime:
    """The current time, in UTC."""
    return dt.datetime.now(dt.timezone.utc)


def function_waiter(lam: Any, delay: int) -> Callable[[str, str], None]:
    """``wait(waiter, function_name)``: a Lambda waiter polling every ``delay`` s for 10 min."""
    config = {"Delay": delay, "MaxAttempts": max(1, 600 // delay)}

    def wait(waiter: str, function_name: str) -> None:
        lam.get_waiter(waiter).wait(FunctionName=function_name, WaiterConfig=config)

    return wait


def restore_report(restored: Sequence[str], failed: Sequence[str]) -> list[str]:
    """The summary lines of an undo or rollback: what was restored, then what was not."""
    return [
        *(f"  restored: {line}" for line in restored),
        *(f"  NOT restored: {line}" for line in failed),
    ]


def _rolled_back(
    executor: Executor,
    stage: Stage,
    total: int,
    index: int,
    step: Step,
    what: str,
    reason: str,
) -> str:
    """Undo everything the deploy changed and describe the outcome."""
    restored, failed = executor.undo()
    lines = [
        f"deploy to stage {stage.name!r} {what} {index}/{total} "
        f"({' '.join(step.describe().split())}): {reason}",
        "Rolled back in reverse order:",
        *restore_report(restored, failed),
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
    return "\n".join(lines)


def _failure(exc: BaseException) -> tuple[str, str, type[DeployError]]:
    """How a step ended: (what happened, why, the error to raise)."""
    if isinstance(exc, KeyboardInterrupt):
        reason = (
            f"the deploy was stopped ({str(exc) or 'Ctrl-C / SIGINT'}) while this step ran; "
            "what it had changed was undone"
        )
        return "was interrupted at step", reason, DeployInterrupted
    if isinstance(exc, (*AWS_ERRORS, DeployError)):
        return "failed at step", str(exc), DeployError
    return f"was {type(exc).__name__} at step", str(exc) or repr(exc), DeployError


def execute(
    steps: Sequence[Step],
    executor: Executor,
    stage: Stage,
    progress: Progress | None = None,
) -> ApplyResult:
    """Run ``steps`` through ``executor``, one :class:`StepEvent` to ``progress`` per change.

    On any failure the executor undoes what it did in reverse and a DeployError names the failed
    step, what was restored and what could not be; an interrupt (KeyboardInterrupt) is undone
    the same way and raised as :class:`~layerkit.errors.DeployInterrupted` (exit 130).
    """
    emit = progress or (lambda _event: None)
    total = len(steps)
    for index, step in enumerate(steps, 1):
        try:  # the events too: a Ctrl-C while one is printed is undone like any other
            emit(StepEvent(index, total, step, StepPhase.STARTED))
            executor.run(step)
            emit(StepEvent(index, total, step, StepPhase.DONE))
        except (KeyboardInterrupt, Exception) as exc:  # interrupted, failed, or a bug: undo
            emit(StepEvent(index, total, step, StepPhase.FAILED))
            what, reason, error = _failure(exc)
            message = _rolled_back(executor, stage, total, index, step, what, reason)
            raise error(message) from exc
    return executor.result()


def apply(
    steps: Sequence[Step],
    clients: Clients,
    stage: Stage,
    current: CurrentState,
    *,
    commit: str | None = None,
    now: Callable[[], dt.datetime] | None = None,
    waiter_delay: int = 1,
    progress: Progress | None = None,
) -> ApplyResult:
    """Run ``steps`` (from :func:`plan` against ``current``) on AWS; on any failure undo and raise.

    The undo runs in reverse order and attempts every entry: aliases back to their exact
    previous versions, ``$LATEST`` back to its exact previous code and configuration, functions
    this deploy created deleted, layer versions it published deleted. See :func:`execute`.
    """
    executor = AwsExecutor(clients, stage, current, commit, now or utcnow, waiter_delay)
    return execute(steps, executor, stage, progress)
