"""Apply a deploy plan: run its steps, journal how to undo each change, undo all on failure.

:func:`apply` runs the steps of :func:`deployplan.plan`. Before every change it journals how to
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from layerkit.deploy.clients import AWS_ERRORS, Clients, if_found
from layerkit.deploy.ownership import INV_DEPLOY, OWNER_TAG
from layerkit.deploy.planner import (
    CreateAlias,
    CreateFunction,
    CurrentState,
    FunctionConfig,
    FunctionState,
    HealthCheck,
    MoveAlias,
    PublishLayerVersion,
    PublishVersion,
    RecordRelease,
    Step,
    UpdateFunctionCode,
    UpdateFunctionConfiguration,
    UploadArtifact,
    artifact_key,
    b64_from_hex,
    function_state,
    hex_from_b64,
)
from layerkit.deploy.releases import FunctionRelease, Release, new_release, write_release
from layerkit.errors import DeployError
from layerkit.project.stages import Stage


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
        self._wait = function_waiter(self.lam, waiter_delay)
        self.journal: list[_Undo] = []
        self.layer_arns: dict[str, str] = {}
        self.versions: dict[str, Mapping[str, Any]] = {}  # function folder -> published config
        self.latest_saved: set[str] = set()
        self.uploaded: list[str] = []
        self.aliases: list[tuple[str, str | None, str]] = []
        self.release: Release | None = None

    # -- helpers
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
            Tags={OWNER_TAG: INV_DEPLOY},  # see layerkit.deploy.ownership
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
                lambda: point_alias(self.lam, step.function_name, step.alias, step.from_version),
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
                FunctionRelease.of(function, self.stage.function_name(function), state)
            )
        release = new_release(
            self.stage,
            "deploy",
            functions,
            sorted(self.layer_arns.items()),
            self.commit,
            self.now,
        )
        write_release(self.s3, self.stage, release)
        self.release = release

    # -- rollback
    def undo(self) -> tuple[list[str], list[str]]:
        restored: list[str] = []
        failed: list[str] = []
        for entry in reversed(self.journal):
            try:
                restored.append(entry.action())
            except (*AWS_ERRORS, DeployError) as exc:  # every undo is attempted
                failed.append(f"{entry.description}: {exc}")
        return restored, failed


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
    applier: _Applier,
    stage: Stage,
    steps: Sequence[Step],
    index: int,
    step: Step,
    what: str,
    exc: BaseException,
) -> DeployError:
    """Undo everything the deploy changed and describe the outcome."""
    restored, failed = applier.undo()
    lines = [
        f"deploy to stage {stage.name!r} {what} {index}/{len(steps)} "
        f"({' '.join(step.describe().split())}): {exc}",
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
    return DeployError("\n".join(lines))


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
    clock = now or utcnow
    applier = _Applier(clients, stage, current, commit, clock, waiter_delay)
    for index, step in enumerate(steps, 1):
        try:
            applier.run(step)
        except (*AWS_ERRORS, DeployError) as exc:
            raise _rolled_back(applier, stage, steps, index, step, "failed at step", exc) from exc
        except (KeyboardInterrupt, Exception) as exc:  # interrupted, or a bug: undo all the same
            reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else type(exc).__name__
            raise _rolled_back(
                applier, stage, steps, index, step, f"was {reason} at step", exc
            ) from exc
    return ApplyResult(
        release=applier.release,
        uploaded=tuple(applier.uploaded),
        published_layers=tuple(applier.layer_arns.items()),
        published_versions=tuple(
            (stage.function_name(fn), str(cfg["Version"])) for fn, cfg in applier.versions.items()
        ),
        aliases=tuple(applier.aliases),
    )
