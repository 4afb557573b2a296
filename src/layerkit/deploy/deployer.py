"""Deploy built layers and functions to a stage: what ``inv deploy`` and ``inv rollback`` call.

The flow, each part usable on its own:

- :func:`desired_state` turns the build manifest into what the stage should run (pure glue: it
  only reads the manifest and hashes the zips it names).
- :func:`layerkit.deploy.state.read_current` asks AWS what the stage runs now.
- :func:`layerkit.deploy.planner.plan` is pure: desired + current -> a tuple of frozen steps. An
  unchanged build plans nothing at all.
- :func:`layerkit.deploy.executor.execute` runs the steps through an executor (AWS calls, or a
  describe-only dry run), streams a progress event per step, journals how to undo each change,
  and on any failure or interrupt undoes them all in reverse.
- :func:`deploy` wraps it all with the stage lock; :func:`rollback` (from
  :mod:`layerkit.deploy.rollback`) moves a stage back to a recorded release.
- :func:`open_stage`, :func:`invoke_on_stage` and :func:`unlock` are what the commands call to
  reach a stage, run a function as it runs there, and remove a killed run's lock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from layerkit.build.archive import sha256_file
from layerkit.build.manifest import read_manifest
from layerkit.build.plan import output_dir
from layerkit.deploy.clients import AWS_ERRORS, Clients, explain_aws_error
from layerkit.deploy.connect import StageSession, open_session
from layerkit.deploy.executor import (
    ApplyResult,
    AwsExecutor,
    DescribeOnlyExecutor,
    Executor,
    Progress,
    execute,
    utcnow,
)
from layerkit.deploy.models import (
    DEFAULT_HEALTH_EVENT,
    CurrentState,
    DesiredState,
    FunctionArtifact,
    LayerArtifact,
)
from layerkit.deploy.ownership import guard_inv_deploy
from layerkit.deploy.planner import Step, plan, runtime_problems
from layerkit.deploy.rollback import RollbackOutcome, rollback
from layerkit.deploy.stageinvoke import invoke_on_stage
from layerkit.deploy.stagelock import LockInfo, acquire, default_owner, force_unlock, held
from layerkit.deploy.state import read_current
from layerkit.deploy.variants import layer_variants, variant_key
from layerkit.errors import DeployError
from layerkit.project.parameters import StageTemplate, for_stage
from layerkit.project.spec import Function, Project
from layerkit.project.stages import DEFAULT_LOCAL_STAGE, Stage, get_stage
from layerkit.runtime.lifecycle import RuntimeStatus, lifecycle_source, runtime_lifecycle
from layerkit.runtime.target import Target

__all__ = [
    "DeployOutcome",
    "RollbackOutcome",
    "StageSession",
    "deploy",
    "desired_state",
    "invoke_on_stage",
    "open_stage",
    "rollback",
    "unlock",
]


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
    actual = sha256_file(path)
    if actual != _field(entry, "sha256"):
        raise DeployError(
            f"{path} does not match {dist / 'manifest.json'} (sha256 {actual[:12]}… on disk, "
            f"{str(_field(entry, 'sha256'))[:12]}… in the manifest): it changed after the "
            "build. Run `inv build.all` and deploy again."
        )
    return path, actual, int(_field(entry, "zipped_bytes") or path.stat().st_size)


def desired_state(
    project: Project,
    manifest: Mapping[str, Any],
    dist: Path,
    commit: str | None = None,
    *,
    view: StageTemplate | None = None,
    others: Mapping[Target, tuple[Mapping[str, Any], Path]] | None = None,
) -> DesiredState:
    """What to deploy: every template layer and function, from the built zips of their targets.

    ``manifest`` and ``dist`` are the build of the template's main target; a function on
    another target (arm64, another runtime) comes from that target's build: ``others[target]``
    (its records and output folder), else ``output_dir(project, target)``'s manifest. A layer
    attached on several targets is one layer version per target
    (:mod:`layerkit.deploy.variants`).

    ``manifest`` is either the parsed ``manifest.json`` (``{"target": ..., "artifacts": {...}}``)
    or its artifact records by path (``manifest.read_manifest(dist)``, ``BuildResult.records``).
    Refuses (DeployError) artifacts for another target, an artifact the manifest does not
    list, a missing zip, or a zip whose sha256 differs from the manifest's. Staleness against
    the current inputs is the build's business (``build.require_fresh``), checked first by the
    caller.

    ``view`` is the template as the stage sees it (:func:`layerkit.project.parameters.for_stage`):
    the names, Environment and health-check events it resolves. Without one, the local stage's
    view gives Environment and health checks, and names follow the deploying stage's prefix.
    """
    if view is None:
        view = for_stage(project, DEFAULT_LOCAL_STAGE)
        view = replace(view, function_names={}, layer_names={})
    main = project.deploy_target
    builds: dict[Target, tuple[Mapping[str, Any], Path]] = {**(others or {})}
    builds[main] = (manifest, dist)

    def build_of(target: Target) -> tuple[Mapping[str, Any], Path]:
        """The records and output folder of ``target``'s build (checked for its target)."""
        if target not in builds:
            out = output_dir(project, target)
            builds[target] = (read_manifest(out), out)
        found, out = builds[target]
        records: Mapping[str, Any] = found.get("artifacts", found)
        targets = {found.get("target")} if "artifacts" in found else set()
        targets |= {_field(r, "target") for r in records.values()}
        wrong = sorted(str(t) for t in targets - {None, target.key})
        if wrong:
            raise DeployError(
                f"{out / 'manifest.json'} holds artifacts built for {', '.join(wrong)}, but "
                f"{project.config.template} deploys {target.key} from {out}; run "
                "`inv build.all` and deploy again."
            )
        return records, out

    build_of(main)
    template_layers = {tl.logical_id: tl for tl in project.template.layers}
    variants = layer_variants(project)
    layers = []
    for variant in variants:
        if variant.logical_id in view.excluded:
            continue
        tl = template_layers[variant.logical_id]
        layer = project.layer(variant.layer)
        records, out = build_of(variant.target)
        path, sha, size = _artifact_entry(records, f"layers/{layer.name}.zip", out)
        runtimes = tl.compatible_runtimes or (variant.target.runtime,)
        architectures = tl.compatible_architectures
        if variant.several:  # this version holds one target's build: it says so
            runtimes = (variant.target.runtime,)
            architectures = (variant.target.architecture,)
        name = view.layer_names.get(tl.logical_id, "")
        layers.append(
            LayerArtifact(
                name=variant.key,
                zip_path=path,
                sha256=sha,
                zipped_bytes=size,
                compatible_runtimes=runtimes,
                compatible_architectures=architectures,
                description=layer.description,
                layer_name=name + variant.name_suffix if name else "",
            )
        )
    left_out = {tl.layer: lid for lid, tl in template_layers.items() if lid in view.excluded}
    functions = []
    for fn in project.functions:
        if fn.logical_id in view.excluded:
            continue
        _refuse_excluded_layers(project, fn, view, left_out)
        records, out = build_of(fn.target)
        path, sha, size = _artifact_entry(records, f"functions/{fn.name}.zip", out)
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
                layers=tuple(variant_key(variants, name, fn.target) for name in fn.layers),
                environment=dict(view.environments.get(fn.logical_id, {})),
                health_event=view.health_events.get(fn.logical_id, DEFAULT_HEALTH_EVENT),
                zipped_bytes=size,
                function_name=view.function_names.get(fn.logical_id, ""),
            )
        )
    return DesiredState(layers=tuple(layers), functions=tuple(functions), commit=commit)


def _refuse_excluded_layers(
    project: Project, fn: Function, view: StageTemplate, left_out: Mapping[str, str]
) -> None:
    """DeployError if ``fn`` is deployed but attaches a layer its stage's Condition leaves out.

    ``left_out``: layer name -> logical ID of each layer ``view`` excludes.
    """
    for name in fn.layers:
        lid = left_out.get(name)
        if lid is not None:
            raise DeployError(
                f"{project.config.template}: {fn.logical_id} attaches {lid}, whose Condition "
                f"{view.excluded[lid]} is false on stage {view.stage}, so CloudFormation would "
                f"not create it either; give {fn.logical_id} the same Condition, or change "
                f"{lid}'s."
            )


# --------------------------------------------------------------------------- deploy / rollback


def not_run_here(desired: DesiredState) -> DesiredState:
    """``desired`` with each function this host cannot run marked, for the local stage.

    The local stage runs a health check in layerkit's sandbox on this machine: an arm64
    function on an x86_64 host (without qemu-user) cannot run, so its health check is reported
    as not run, with the static checks that passed instead (its Handler, its ELF files).
    """
    from layerkit.check.invocation import static_checks
    from layerkit.runtime.host import host_support

    zips = {layer.name: layer.zip_path for layer in desired.layers}
    functions = []
    for fn in desired.functions:
        target = Target(fn.runtime, fn.architecture)
        support = host_support(target)
        if not support.runs_code:
            layers = [zips[name] for name in fn.layers if name in zips]
            checked = static_checks(fn.handler, target, fn.zip_path, layers)
            fn = replace(
                fn,
                not_run=f"{support.cannot_run}; checked statically: {'; '.join(checked)}",
            )
        functions.append(fn)
    return replace(desired, functions=tuple(functions))


@dataclass(frozen=True)
class DeployOutcome:
    """What :func:`deploy` planned and, unless a dry run, did."""

    stage: str
    steps: tuple[Step, ...]
    result: ApplyResult | None  # None: dry run, or nothing to do
    warnings: tuple[str, ...]


def _lifecycle_warnings(
    steps: tuple[Step, ...],
    stage: Stage,
    today: dt.date,
    lifecycle: Callable[[str, dt.date], RuntimeStatus],
    allow_deprecated_runtime: bool,
) -> tuple[str, ...]:
    """The plan's runtime warnings; a runtime AWS blocks is refused on real AWS."""
    warnings: list[str] = []
    for message, blocked in runtime_problems(steps, today, lifecycle, lifecycle_source()):
        if blocked and not stage.local and not allow_deprecated_runtime:
            raise DeployError(
                f"{message} Refusing to deploy to stage {stage.name!r}; pass "
                "--allow-deprecated-runtime to try anyway, or change Runtime in "
                "template.yaml."
            )
        warnings.append(message)
    return tuple(warnings)


def deploy(
    desired: DesiredState,
    clients: Clients,
    stage: Stage,
    *,
    dry_run: bool = False,
    allow_deprecated_runtime: bool = False,
    owner: str | None = None,
    today: dt.date | None = None,
    now: Callable[[], dt.datetime] = utcnow,
    lifecycle: Callable[[str, dt.date], RuntimeStatus] = runtime_lifecycle,
    waiter_delay: int = 1,
    progress: Progress | None = None,
) -> DeployOutcome:
    """Deploy ``desired`` to ``stage`` under the stage lock; see :func:`plan` and :func:`execute`.

    ``progress`` receives a :class:`~layerkit.deploy.executor.StepEvent` as each step starts,
    ends or fails (``event.line()`` is a printable line). A dry run is the same plan through a
    :class:`~layerkit.deploy.executor.DescribeOnlyExecutor`: it takes no lock and changes
    nothing. A runtime AWS blocks (cfn-lint's lifecycle data, on ``today``: default
    ``now().date()``) is refused on real AWS unless ``allow_deprecated_runtime``; the local
    stage only warns. The plan is made before the lock is taken: a build the stage already runs
    takes no lock and writes nothing; otherwise it is made again under the lock. A dry run also
    warns of drift (aliases that are not where the live release put them). An interrupt is
    undone and raised as :class:`~layerkit.errors.DeployInterrupted`.
    """

    def executor_for(current: CurrentState) -> Executor:
        if dry_run:
            return DescribeOnlyExecutor()
        return AwsExecutor(clients, stage, current, desired.commit, now, waiter_delay)

    day = today or now().date()
    if stage.local:
        desired = not_run_here(desired)

    def survey() -> tuple[CurrentState, tuple[Step, ...], tuple[str, ...]]:
        current = read_current(clients, stage, desired)
        # a function some CloudFormation stack owns is not inv deploy's to change
        guard_inv_deploy(
            clients.lambda_, stage, [f.function_name for f in current.functions.values()]
        )
        steps = plan(desired, current, stage)
        warnings = _lifecycle_warnings(
            steps, stage, day, lifecycle, allow_deprecated_runtime or dry_run
        )
        return current, steps, warnings

    def run(current: CurrentState, steps: tuple[Step, ...], warnings: tuple[str, ...]) -> Any:
        executor = executor_for(current)
        result = execute(steps, executor, stage, progress) if steps else None
        return DeployOutcome(
            stage.name, steps, result if executor.changes_stage else None, warnings
        )

    current, steps, warnings = survey()
    if dry_run:
        return run(current, steps, (*warnings, *_drift_warnings(clients, stage)))
    if not steps:  # nothing to do: no lock taken, nothing written
        return DeployOutcome(stage.name, (), None, warnings)
    lock = acquire(clients.s3, stage, owner or default_owner(), "deploy", now())
    with held(clients.s3, stage, lock):
        return run(*survey())  # read again under the lock: another deploy may have run


def _drift_warnings(clients: Clients, stage: Stage) -> tuple[str, ...]:
    """The stage's drift from its live release, for a dry run (none: it matches)."""
    from layerkit.deploy.releases import list_releases, read_drift

    try:
        drift = read_drift(clients.lambda_, stage, list_releases(clients.s3, stage, limit=1))
    except (*AWS_ERRORS, DeployError) as exc:
        return (f"could not compare the stage with its last release: {exc}",)
    return (drift.describe(),) if drift else ()


# --------------------------------------------------------------------------- stages


@contextmanager
def open_stage(root: Path, name: str, *, state_dir: Path | None = None) -> Iterator[StageSession]:
    """Open stage ``name`` of ``<root>/stages.toml`` for the ``with`` block.

    The one way a stage is opened is :func:`layerkit.deploy.connect.open_session`.
    """
    with open_session(root, get_stage(root, name), state_dir=state_dir) as session:
        yield session


def unlock(clients: Clients, stage: Stage) -> LockInfo | None:
    """Remove the stage's deploy lock, whoever holds it; returns what was removed (None: none).

    For a lock a killed deploy or rollback left behind. (The local stage removes such a lock
    itself when it is opened, and says so in :attr:`StageSession.notes`.)
    """
    try:
        return force_unlock(clients.s3, stage)
    except AWS_ERRORS as exc:
        raise DeployError(
            f"stage {stage.name!r}: could not remove the lock s3://{stage.bucket}/"
            f"{stage.lock_key}: {explain_aws_error(exc, stage)}"
        ) from exc
