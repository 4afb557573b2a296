"""Roll a stage back to a recorded release: ``inv rollback --stage=X [--release ID]``.

Each function's alias moves to the version the release recorded; that version carries its own
layers and code, so this alone restores traffic. ``$LATEST`` is then restored to the release's
code and configuration too, so the next deploy plans against what runs. The rollback is
recorded as a new release (kind ``rollback``); history is never rewritten.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from layerkit.deploy.clients import AWS_ERRORS, Clients, if_found
from layerkit.deploy.executor import (
    check_health,
    function_waiter,
    point_alias,
    restore_latest,
    restore_report,
    utcnow,
)
from layerkit.deploy.models import DEFAULT_HEALTH_EVENT, ReleaseKind
from layerkit.deploy.releases import (
    Release,
    effective_release,
    list_releases,
    new_release,
    previous_release_id,
    read_drift,
    read_release,
    write_release,
)
from layerkit.deploy.stagelock import acquire, default_owner, held
from layerkit.errors import DeployError
from layerkit.project.stages import Stage


@dataclass(frozen=True)
class RollbackOutcome:
    """What :func:`rollback` restored."""

    stage: str
    target: Release
    release: Release | None  # the new record of kind "rollback"; None: it already ran target
    restored: tuple[str, ...]
    skipped: tuple[str, ...]  # functions the stage runs that the target release does not name
    notes: tuple[str, ...] = ()  # health checks this host could not run (local stage, arm64)


def rollback(
    clients: Clients,
    stage: Stage,
    release_id: str | None = None,
    *,
    owner: str | None = None,
    commit: str | None = None,
    now: Callable[[], dt.datetime] = utcnow,
    waiter_delay: int = 1,
    health_events: Mapping[str, bytes] | None = None,
    unusable: Mapping[str, str] | None = None,
) -> RollbackOutcome:
    """Move ``stage`` back to a recorded release (by default: the deploy before the live one).

    When the stage has drifted from its live release (a deploy or rollback killed between its
    alias moves), the default is the live release itself: the rollback puts the aliases back.
    With the stage's ``health_check``, each version of the release is invoked first (with
    ``health_events[function folder]``, default the deploy's health event); one that fails stops
    the rollback before anything moves. Everything that can refuse (no release to go back to,
    the release already running, a failing health check, a release in ``unusable`` — release id
    to why it cannot run again, as the local stage says of a release whose stored zip is
    damaged) is decided before the stage lock is taken, so a refused rollback writes nothing;
    the choice is read again under the lock.
    Aliases move first (traffic), then ``$LATEST`` follows. Every step is attempted; failures
    are collected into one DeployError, and then no rollback release is recorded.
    """
    lam = clients.lambda_
    unusable = unusable or {}
    history, target = _choose(clients, stage, release_id)
    if _already_running(lam, stage, history, target):
        return RollbackOutcome(stage.name, target, None, (), ())
    _refuse_unusable(stage, target, unusable)
    notes: tuple[str, ...] = ()
    if stage.health_check:
        notes = _check_release(lam, stage, target, health_events or {})
    lock = acquire(clients.s3, stage, owner or default_owner(), "rollback", now())
    failures: list[str] = []
    restored: list[str] = []
    with held(clients.s3, stage, lock):
        checked = target
        history, target = _choose(clients, stage, release_id)  # another may have run meanwhile
        if _already_running(lam, stage, history, target):
            return RollbackOutcome(stage.name, target, None, (), ())
        if target.release_id != checked.release_id:
            _refuse_unusable(stage, target, unusable)
            if stage.health_check:
                notes = _check_release(lam, stage, target, health_events or {})
        wait = function_waiter(lam, waiter_delay)
        for fn in target.functions:  # traffic first: aliases
            try:
                restored.append(
                    _point_or_create_alias(lam, fn.function_name, stage.alias, fn.version)
                )
            except AWS_ERRORS as exc:
                failures.append(f"alias {fn.function_name}:{stage.alias} -> {fn.version}: {exc}")
        for fn in target.functions:  # then $LATEST, for the next deploy's plan
            try:
                restored.append(restore_latest(lam, stage, fn.function_name, fn, wait))
            except (*AWS_ERRORS, DeployError) as exc:
                failures.append(f"$LATEST of {fn.function_name}: {exc}")
        live_names = {f.function for r in history[-1:] for f in r.functions}
        skipped = tuple(sorted(live_names - {f.function for f in target.functions}))
        record = new_release(
            stage,
            ReleaseKind.ROLLBACK,
            target.functions,
            target.layers,
            commit if commit is not None else target.commit,
            now,
            rolled_back_to=target.release_id,
        )
        if failures:
            raise DeployError(
                f"rollback of stage {stage.name!r} to release {target.release_id} was "
                "incomplete (no rollback release recorded):\n"
                + "\n".join(restore_report(restored, failures))
            )
        try:
            write_release(clients.s3, stage, record)
        except AWS_ERRORS as exc:
            raise DeployError(
                f"stage {stage.name!r} runs release {target.release_id} again, but the rollback "
                f"could not be recorded ({exc}); `inv releases` will not show it."
            ) from exc
    return RollbackOutcome(stage.name, target, record, tuple(restored), skipped, notes)


def _refuse_unusable(stage: Stage, target: Release, unusable: Mapping[str, str]) -> None:
    """DeployError if ``target`` is a release that cannot run again (``unusable`` says why)."""
    why = unusable.get(target.release_id)
    if why is not None:
        raise DeployError(
            f"not rolling stage {stage.name!r} back to release {target.release_id}: its code "
            f"could not run. {why[0].upper()}{why[1:]} Nothing was changed."
        )


def _choose(
    clients: Clients, stage: Stage, release_id: str | None
) -> tuple[list[Release], Release]:
    """The stage's releases and the one to go back to (see :func:`rollback`)."""
    try:
        history = list(list_releases(clients.s3, stage))
        if release_id is None and history and read_drift(clients.lambda_, stage, tuple(history)):
            by_id = {r.release_id: r for r in history}
            release_id = effective_release(by_id, history[-1].release_id)
        target_id = release_id or previous_release_id(tuple(history))
        return history, read_release(clients.s3, stage, target_id)
    except AWS_ERRORS as exc:
        raise DeployError(f"stage {stage.name!r}: could not read the releases: {exc}") from exc


def _check_release(
    lam: Any, stage: Stage, target: Release, health_events: Mapping[str, bytes]
) -> tuple[str, ...]:
    """Invoke every version of ``target``; the first failure refuses the rollback.

    On the local stage, a version this host cannot run (arm64 on x86_64) is not invoked: it is
    returned as a note, never skipped silently (its deploy checked it statically).
    """
    notes = []
    for fn in target.functions:
        payload = health_events.get(fn.function, DEFAULT_HEALTH_EVENT)
        try:
            if stage.local:
                note = _not_runnable(lam, fn.function_name, fn.version)
                if note:
                    notes.append(note)
                    continue
            check_health(lam, fn.function_name, fn.version, payload)
        except (*AWS_ERRORS, DeployError) as exc:
            raise DeployError(
                f"rollback of stage {stage.name!r} to release {target.release_id} refused, "
                f"nothing was changed: {exc}. Name another release with --release (see "
                "`inv releases`), or deploy a fixed build."
            ) from exc
    return tuple(notes)


def _not_runnable(lam: Any, function_name: str, version: str) -> str | None:
    """Why this host cannot run ``function_name:version`` (None: it can)."""
    from layerkit.runtime.host import host_support
    from layerkit.runtime.target import Target

    config = lam.get_function_configuration(FunctionName=function_name, Qualifier=version)
    target = Target(config["Runtime"], (config.get("Architectures") or ["x86_64"])[0])
    support = host_support(target)
    if support.runs_code:
        return None
    return (
        f"health check of {function_name}:{version} not run: {support.cannot_run}; the deploy "
        "that published it checked its Handler and ELF files statically"
    )


def _already_running(lam: Any, stage: Stage, history: list[Release], target: Release) -> bool:
    """Whether the stage's live release is ``target`` and every alias still points at it."""
    if not history:
        return False
    live = history[-1]
    if target.release_id not in (live.release_id, live.rolled_back_to):
        return False
    for fn in target.functions:
        alias = if_found(lam.get_alias, FunctionName=fn.function_name, Name=stage.alias)
        if alias is None or alias["FunctionVersion"] != fn.version:
            return False
    return True


def _point_or_create_alias(lam: Any, function_name: str, alias: str, version: str) -> str:
    moved = if_found(point_alias, lam, function_name, alias, version)
    if moved is not None:
        return moved
    lam.create_alias(FunctionName=function_name, Name=alias, FunctionVersion=version)
    return f"alias {function_name}:{alias} created on version {version}"
