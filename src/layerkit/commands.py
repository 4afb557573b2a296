"""The command surface: one function per verb, shared by the ``layerkit`` CLI and the invoke tasks.

Each command takes the project (a loaded :class:`~layerkit.project.spec.Project` or its folder)
and its options, does its work through the library, and returns a small frozen ``*Output`` whose
``render()`` is the text to show and whose ``failure`` (None on success) is the one-paragraph
reason to exit with code 1. Nothing here prints: what a command says while it works goes to a
:class:`Feedback` (build progress events and notes), so a front door decides how to show it.
Errors caused by input are raised as :class:`~layerkit.errors.LayerkitError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layerkit.build.cache import CacheStore, cache_url, open_store
from layerkit.build.hooks import project_builder
from layerkit.build.lock import LockDiff, SizeEstimate, lock_targets, partition, source_label
from layerkit.build.manifest import (
    ArtifactRecord,
    DamagedManifestError,
    read_manifest,
    read_refusals,
    step_timings,
)
from layerkit.build.pipeline import (
    BuildEvent,
    BuildResult,
    EventKind,
    Progress,
    check_target,
    output_dir,
    plan,
    require_fresh,
)
from layerkit.build.pipeline import build as run_build
from layerkit.build.pipeline import clean as clean_layer
from layerkit.build.pipeline import clean_all as clean_everything
from layerkit.build.targets import buildable_functions
from layerkit.check import run as run_checks
from layerkit.check.findings import CheckReport, Severity
from layerkit.check.handler import raise_for_handlers
from layerkit.check.sizes import FUNCTION_UNZIPPED_LIMIT as LAMBDA_LIMIT
from layerkit.check.sizes import FunctionTotal, function_totals
from layerkit.check.template import PLACEHOLDER_REGION, runtime_findings, stage_findings
from layerkit.errors import CheckError, DeployError, LayerkitError, LockError, SpecError
from layerkit.gitinfo import git_commit
from layerkit.project.config import ProjectConfig, load_config
from layerkit.project.parameters import for_stage, health_events, parse_overrides
from layerkit.project.spec import Project, load_project
from layerkit.project.stages import (
    DEFAULT_LOCAL_STAGE,
    Stage,
    get_stage,
    load_stages,
    stages_file_text,
)
from layerkit.report.console import Terminal
from layerkit.report.files import write_report
from layerkit.report.table import (
    artifact_order,
    build_state,
    format_table,
    in_order,
    mb,
    plural,
    verdict,
)
from layerkit.report.text import render_table
from layerkit.runtime.host import host_support, notice_once
from layerkit.runtime.target import ARCHITECTURES, RUNTIMES, Target

if TYPE_CHECKING:  # each verb imports what only it needs: `inv build.all` starts faster
    from layerkit.check.layer import LayerValidation
    from layerkit.deploy import deployer, stagelock
    from layerkit.deploy.clients import Clients
    from layerkit.deploy.connect import StageSession
    from layerkit.deploy.executor import StepEvent
    from layerkit.deploy.package import PackageResult
    from layerkit.deploy.releases import Release
    from layerkit.deploy.stageinvoke import StageInvokeResult
    from layerkit.optimize.apply import OptimizeReport
    from layerkit.runtime.sandbox import InvokeResult
    from layerkit.upgrade import UpgradeReport

ProjectLike = Project | Path | str
#: What ``--force`` does, for every front door's help.


def _ignore(line: str) -> None:
    """Say nothing."""


@contextlib.contextmanager
def stage_session(
    root: Path, stage: Stage, note: Callable[[str], None], *, writable: bool = True
) -> Iterator[StageSession]:
    """:func:`layerkit.deploy.connect.announced_session`, imported when a verb talks to a stage.

    ``writable=False``: the verb only reads (the local stage's files are not written).
    """
    from layerkit.deploy.connect import announced_session

    with announced_session(root, stage, note, writable=writable) as session:
        yield session


def _show_step(event: StepEvent, show: Callable[[str], None]) -> None:
    """Show a deploy step as it starts or fails (a finished one was shown when it started)."""
    from layerkit.deploy.executor import StepPhase

    if event.phase is not StepPhase.DONE:
        show(event.line())


def _no_events(event: BuildEvent) -> None:
    """Show no progress."""


def _no_steps(event: StepEvent) -> None:
    """Show no deploy steps."""


@dataclass(frozen=True)
class Feedback:
    """Where a command sends what it says while it works.

    ``progress`` receives the build's events (artifact, step, detail); ``note`` receives a line
    of text (a runtime warning, "resolving python3.9-x86_64 ...", where the local stage runs).
    """

    progress: Progress = _no_events
    note: Callable[[str], None] = _ignore
    step: Callable[[StepEvent], None] = _no_steps  # a deploy's steps, as each starts or fails


QUIET = Feedback()


def format_event(event: BuildEvent) -> str:
    """One progress event as a line of text: ``[layer core-data-science] slim: -12.3 MB``.

    A built artifact's line ends with the seconds its steps took.
    """
    took = f" ({event.elapsed:.1f}s)" if event.kind == EventKind.BUILT else ""
    return f"[{event.artifact}] {event.step}: {event.detail}{took}"


def text_feedback(write: Callable[[str], None]) -> Feedback:
    """Feedback that writes every event, note and deploy step as a line through ``write``.

    A step's start (and an artifact being queued) is not a line: the step's end says what it did;
    likewise a deploy step is a line when it starts (or fails), not again when it is done.
    """

    def progress(event: BuildEvent) -> None:
        if event.kind not in (EventKind.STARTED, EventKind.QUEUED):
            write(format_event(event))

    return Feedback(
        progress=progress,
        note=write,
        step=lambda event: _show_step(event, write),
    )


def terminal_feedback(terminal: Terminal) -> Feedback:
    """Feedback that shows everything on a :class:`~layerkit.report.console.Terminal`."""
    return Feedback(
        progress=terminal.progress,
        note=terminal.message,
        step=lambda event: _show_step(event, terminal.step),
    )


class _Output:
    """What every command returns: ``render()`` text, and ``failure`` (None: success)."""

    @property
    def failure(self) -> str | None:
        """The one-paragraph reason to exit with code 1, or None when the command succeeded."""
        return None

    def render(self) -> str:  # pragma: no cover - every output overrides it
        """The text a front door shows."""
        raise NotImplementedError


def open_project(project: ProjectLike) -> Project:
    """The project itself, or the project loaded from the folder ``project``."""
    return project if isinstance(project, Project) else load_project(Path(project))


def _root_config(project: ProjectLike) -> tuple[Path, ProjectConfig]:
    """The project folder and its layout, without loading (or needing) a valid project."""
    if isinstance(project, Project):
        return project.root, project.config
    root = Path(project).resolve()
    return root, load_config(root)


def targets_for(
    project: Project, runtime: str | None, arch: str | None = None
) -> tuple[Target, ...]:
    """Every target the template's functions run on, narrowed by ``runtime`` and ``arch``.

    When no function runs on what they name (a runtime only the layers list, to try it), the
    one target :func:`target_for` makes of them.
    """
    found = tuple(
        t
        for t in project.function_targets
        if runtime in (None, t.runtime) and arch in (None, t.architecture)
    )
    return found or (target_for(project, runtime, arch),)


def target_for(project: Project, runtime: str | None, arch: str | None = None) -> Target:
    """The template's target, or ``runtime`` and/or ``arch`` instead of the template's (checked).

    ``arch`` is ``x86_64`` or ``arm64``; a layer builds only for the targets its layer.toml lists.
    """
    if runtime is None and arch is None:
        return project.deploy_target
    deploy = project.deploy_target
    if runtime is not None and runtime not in RUNTIMES:
        raise SpecError(
            f"--runtime {runtime}: not a Lambda runtime layerkit knows ({', '.join(RUNTIMES)}). "
            f"Pass one of them, or leave --runtime out to use the template's ({deploy.runtime})."
        )
    if arch is not None and arch not in ARCHITECTURES:
        raise SpecError(
            f"--arch {arch}: not a Lambda architecture; pass x86_64 or arm64, or leave --arch "
            f"out to use the template's ({deploy.architecture})."
        )
    target = Target(runtime or deploy.runtime, arch or deploy.architecture)
    check_target(project, target)
    return target


#: What builds a target's artifacts: :func:`layerkit.build.pipeline.build`, or a project's own
#: function that does more around it with the same signature (this repository's trains the
#: Predictions model of a target between its layers and its function packages).
Builder = Callable[..., BuildResult]


def local_stage(project: Project) -> Stage:
    """The stage ``invoke`` and ``validate`` resolve the template for: ``local``.

    That is the stages file's ``[stages.local]``, else the built-in one.
    """
    if not project.stages_file.exists():
        return DEFAULT_LOCAL_STAGE
    stages = load_stages(project.root, project.config.stages_file)
    return stages.get(DEFAULT_LOCAL_STAGE.name, DEFAULT_LOCAL_STAGE)


def _stage(project: ProjectLike, name: str) -> tuple[Path, Stage]:
    root, config = _root_config(project)
    return root, get_stage(root, name, config.stages_file)


# ---------------------------------------------------------------- lock


@dataclass(frozen=True)
class LockedTarget:
    """One written lock: its path (relative to the project), size, and shared distributions."""

    path: str
    distributions: int
    shared: tuple[tuple[str, tuple[str, ...]], ...]  # (distribution, layers carrying it)
    diff: LockDiff | None = None  # every version the relock changed, per layer and function
    sizes: tuple[SizeEstimate, ...] = ()  # estimated from the index's file sizes


@dataclass(frozen=True)
class LockOutput(_Output):
    """The locks ``lock`` wrote, one per target."""

    locks: tuple[LockedTarget, ...]

    def render(self) -> str:
        """A line per lock, a note per distribution independent layers both carry, the moves."""
        lines = []
        for lock in self.locks:
            lines.append(f"{lock.path}: {plural(lock.distributions, 'distribution')}")
            lines.extend(
                f"  note: {name} is carried by {', '.join(owners)} (independent layers)"
                for name, owners in lock.shared
            )
            lines.extend(
                f"  note: {source_label(e.owner)} is about {e.zipped / 1e6:,.1f} MB zipped and "
                f"{e.unzipped / 1e6:,.1f} MB unzipped (estimated before any download)"
                for e in lock.sizes
                if e.unzipped > 0.8 * LAMBDA_LIMIT
            )
        rows = [row for lock in self.locks if lock.diff for row in lock.diff.rows()]
        if rows:
            lines.append(f"{len(rows)} locked version(s) changed:")
            lines.append(format_table(list(LockDiff.HEADERS), rows))
        else:
            lines.append("no locked version changed")
        return "\n".join(lines)


def lock(
    project: ProjectLike,
    *,
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
    feedback: Feedback = QUIET,
) -> LockOutput:
    """Resolve all requirements once per target with uv and write ``locks/<target>.toml``.

    Every target resolves before any lock is written (all or nothing); locked versions are kept
    unless ``upgrade`` (or, for the names in ``upgrade_packages``, those); a version that would
    move in a layer or function whose own requirements did not change is refused.
    """
    project = open_project(project)
    written = lock_targets(
        project,
        upgrade=upgrade,
        upgrade_packages=upgrade_packages,
        on_target=lambda t: feedback.note(f"resolving {t.key} ..."),
    )
    return LockOutput(
        tuple(
            LockedTarget(
                str(path.relative_to(project.root)),
                len(result.lock.packages),
                tuple(partition(project, result.lock).shared().items()),
                result.diff,
                result.sizes,
            )
            for path, result in written
        )
    )


# ---------------------------------------------------------------- build


@dataclass(frozen=True)
class BuildOutput(_Output):
    """What a build left in its output folder: one row per artifact, layers then functions."""

    out_dir: Path
    target: Target
    built: tuple[str, ...]
    rows: tuple[tuple[str, str, str, int, str, str, str], ...]  # artifact .. state, check
    others: tuple[BuildOutput, ...] = ()  # the template's other targets, built after this one

    def render(self) -> str:
        """Per target: the output folder and a table of sizes, budget, state and size check."""
        headers = ["artifact", "unzipped MB", "zipped MB", "files", "budget MB", "state", "check"]
        table = format_table(headers, [list(row) for row in self.rows])
        own = f"{self.out_dir} ({self.target.key})\n{table}"
        return "\n\n".join([own, *(other.render() for other in self.others)])


def _build_output(project: Project, result: BuildResult) -> BuildOutput:
    sizes = run_checks(
        project, result.target, result.records, today=date.today(), template=False, handlers=False
    )
    rows = []
    for path in sorted(result.records, key=artifact_order):
        rec = result.records[path]
        worst = sizes.worst(path)
        found = [f for f in sizes.findings if f.subject == path and f.severity == worst]
        check = verdict(
            found[0].code if found else None, accepted=worst is Severity.WARNING and bool(found)
        )
        state = build_state(path in result.built, path in result.cached)
        budget = mb(rec.budget) if rec.budget else "-"
        rows.append(
            (
                path,
                mb(rec.unzipped_bytes),
                mb(rec.zipped_bytes),
                rec.files,
                budget,
                str(state),
                check,
            )
        )
    return BuildOutput(result.out_dir, result.target, result.built, tuple(rows))


@contextlib.contextmanager
def runtime_notice(project: Project, feedback: Feedback) -> Iterator[None]:
    """Say the template runtime's deprecation notice once, after the block's work.

    On success the notice goes to ``feedback.note`` when the block ends (after the progress,
    before the output); when the block raises a LayerkitError, it is added to the error as a
    note, which the front doors print after the error's paragraph (:func:`error_text`), never
    before it.
    """
    notices = [f"warning: {f.message}" for f in runtime_findings(project, date.today())]
    try:
        yield
    except LayerkitError as exc:
        for notice in notices:
            exc.add_note(notice)
        raise
    for notice in notices:
        feedback.note(notice)


def error_text(exc: BaseException, prefix: str = "error") -> str:
    """What a front door prints for an error: ``error: PARAGRAPH``, then its notes, a line each.

    The notes are what the command had to say anyway (a deprecated runtime), said after the
    error that stopped it.
    """
    return "\n".join([f"{prefix}: {exc}", *getattr(exc, "__notes__", ())])


def build_cache(
    project: Project, option: str | None, feedback: Feedback = QUIET
) -> CacheStore | None:
    """The shared build cache from ``option`` (``--cache``), LAYERKIT_CACHE or [tool.layerkit].

    ``option`` "none" turns it off; without any setting there is no cache.
    """
    url, source = cache_url(project.root, option)
    if url is None:
        return None
    feedback.note(f"build cache: {url} (from {source})")
    return open_store(url, source)


def build(
    project: ProjectLike,
    *,
    runtime: str | None = None,
    arch: str | None = None,
    force: bool = False,
    cache: str | None = None,
    builder: Builder | None = None,
    feedback: Feedback = QUIET,
) -> BuildOutput:
    """Build every layer and function package that is not fresh (``dist/``).

    A deprecated runtime is noted once, after the build (:func:`runtime_notice`). With a shared
    build cache (``cache``, see :func:`build_cache`), artifacts built elsewhere are downloaded,
    not rebuilt.
    """
    project = open_project(project)
    with runtime_notice(project, feedback):
        targets = targets_for(project, runtime, arch)
        raise_for_handlers(
            project, [fn for t in targets for fn in buildable_functions(project, t)]
        )  # static and cheap: a Handler typo fails the build before anything is built
        store = build_cache(project, cache, feedback)
        builder = builder or project_builder(project)
        outputs = [
            _build_output(
                project,
                builder(project, target, force=force, progress=feedback.progress, cache=store),
            )
            for target in targets
        ]
        return dataclasses.replace(outputs[0], others=tuple(outputs[1:]))


def build_layer(
    project: ProjectLike,
    name: str,
    *,
    runtime: str | None = None,
    arch: str | None = None,
    force: bool = False,
    feedback: Feedback = QUIET,
) -> BuildOutput:
    """Build one layer, the layers it requires, and (if stale) the layers that require it."""
    project = open_project(project)
    target = target_for(project, runtime, arch)
    result = run_build(
        project,
        target,
        layers=[name],
        functions=False,
        force=force,
        progress=feedback.progress,
        cache=build_cache(project, None, feedback),
    )
    return _build_output(project, result)


def build_functions(
    project: ProjectLike, *, force: bool = False, feedback: Feedback = QUIET
) -> BuildOutput:
    """Build the function packages (app code and function-only dependencies)."""
    project = open_project(project)
    raise_for_handlers(project, buildable_functions(project, project.deploy_target))
    result = run_build(project, layers=[], force=force, progress=feedback.progress)
    return _build_output(project, result)


# ---------------------------------------------------------------- status


@dataclass(frozen=True)
class StatusOutput(_Output):
    """Each artifact's state (fresh, stale, missing; unknown without a usable lock) and sizes."""

    out_dir: Path
    target: Target
    rows: tuple[tuple[str, str, ArtifactRecord | None], ...]  # path, state, record
    note: str | None = None  # why freshness is unknown, or what is wrong with the manifest
    timings: bool = False  # also the seconds each build step of each artifact took
    stage_notes: tuple[str, ...] = ()  # what the local stage's saved state says (drift, ...)

    def render(self) -> str:
        """The output folder, a table of states and sizes (and step timings), the note if any."""
        rows = [
            [
                path,
                state,
                mb(rec.unzipped_bytes if rec else None),
                mb(rec.zipped_bytes if rec else None),
            ]
            for path, state, rec in self.rows
        ]
        table = format_table(["artifact", "state", "unzipped MB", "zipped MB"], rows)
        text = f"{self.out_dir} ({self.target.key})\n{table}"
        if self.timings:
            text += "\n" + self._timings_table()
        text += "".join(f"\n{line}" for line in self.stage_notes)
        return text + (f"\n{self.note}" if self.note else "")

    def _timings_table(self) -> str:
        """Seconds per build step, one row per artifact (as its last build recorded them)."""
        records = {path: rec for path, _, rec in self.rows if rec is not None}
        per_artifact = step_timings(records)
        from layerkit.build.steps import pipeline_order

        steps = in_order((step for t in per_artifact.values() for step in t), pipeline_order())
        rows = [
            [path, *(f"{t[s]:.1f}" if s in t else "-" for s in steps), f"{sum(t.values()):.1f}"]
            for path, t in sorted(per_artifact.items(), key=lambda item: artifact_order(item[0]))
        ]
        return format_table(["artifact (s)", *steps, "total"], rows)


def status(
    project: ProjectLike,
    *,
    runtime: str | None = None,
    arch: str | None = None,
    timings: bool = False,
) -> StatusOutput:
    """Show what is built, whether it is fresh or stale, and its sizes (``timings``: per step).

    Without a current lock, freshness cannot be known; what the manifest lists is still shown
    (state ``unknown``), with the reason. The local stage's saved state adds a line when its log
    ends in a torn line or its aliases drifted from the newest release (read from its files).
    """
    project = open_project(project)
    target = target_for(project, runtime, arch)
    out = output_dir(project, target)
    stage_notes = _local_stage_notes(project.root)
    try:
        planned = plan(project, target)[0]
    except LockError as exc:  # what is on disk is still worth showing
        found = read_manifest(out)
        rows = tuple((path, "unknown", found[path]) for path in sorted(found, key=artifact_order))
        note = f"note: freshness unknown: {exc}"
        return StatusOutput(out, target, rows, note, timings, stage_notes)
    refused = read_refusals(out)
    ordered = sorted(planned, key=lambda p: artifact_order(p.path))
    rows = tuple(
        (p.path, f"refused: {refused[p.path]}" if p.path in refused else p.state, p.record)
        for p in ordered
    )
    try:
        read_manifest(out)
        note = None
    except DamagedManifestError as exc:  # the plan counted it as nothing built: say why
        note = str(exc)
    return StatusOutput(out, target, rows, note, timings=timings, stage_notes=stage_notes)


def _local_stage_notes(root: Path) -> tuple[str, ...]:
    """What the local stage's saved state says (torn log line, drift); () without one."""
    if not (root / ".layerkit" / "local-stage").is_dir():
        return ()
    from layerkit.deploy.localstage import saved_state_notes

    try:
        stage = get_stage(root, "local")
    except LayerkitError:  # no usable stages.toml: status is about the build
        return ()
    return saved_state_notes(root, stage) if stage.local else ()


# ---------------------------------------------------------------- checks shared by validate/deploy


@dataclass(frozen=True)
class BuildChecks:
    """The checks of one build: what validate shows and deploy and package require."""

    totals: tuple[FunctionTotal, ...]
    report: CheckReport

    @property
    def errors(self) -> tuple[str, ...]:
        """Every error, as ``where: message``."""
        return tuple(str(f) for f in self.report.errors)


def check_build(project: Project, result: BuildResult) -> BuildChecks:
    """Sizes against budgets and Lambda limits, the template and the handlers, for a build."""
    report = run_checks(
        project, result.target, result.records, today=date.today(), out_dir=result.out_dir
    )
    return BuildChecks(function_totals(project, result.records), report)


def fresh_builds(project: Project) -> tuple[BuildResult, ...]:
    """The current build of every target a deploy takes zips from, the main target's first.

    Each is :func:`layerkit.build.pipeline.require_fresh` of its target: a function on arm64
    or another runtime deploys from ``dist/<target>/``, and so do the layers it attaches.
    """
    from layerkit.deploy.variants import layer_variants

    used = {fn.target for fn in project.functions} | {v.target for v in layer_variants(project)}
    targets = [t for t in project.targets if t in used or t == project.deploy_target]
    return tuple(require_fresh(project, t) for t in targets)


def refuse_invalid(project: Project, result: BuildResult, action: str) -> None:
    """Raise DeployError when the build fails its checks, so nothing is ``action``."""
    errors = check_build(project, result).errors
    if errors:
        raise DeployError(
            f"the build fails validation, so nothing was {action}: "
            + "; ".join(errors)
            + ". Fix these (see `inv validate`) and try again."
        )


# ---------------------------------------------------------------- validate


@dataclass(frozen=True)
class LayerValidationOutput(_Output):
    """One layer proven on one runtime."""

    validation: LayerValidation
    verbose: bool = False  # also what the smoke test printed

    @property
    def failure(self) -> str | None:
        """Why the command fails: the layer failed validation."""
        v = self.validation
        return None if v.ok else f"layer {v.layer} failed validation on {v.target.key}"

    def render(self) -> str:
        """What passed and what failed."""
        from layerkit.check.layer import format_validation

        return format_validation(self.validation, verbose=self.verbose)


def _validate_one(
    project: Project, name: str, target: Target, feedback: Feedback
) -> LayerValidation:
    run_build(
        project,
        target,
        layers=[name],
        functions=False,
        dependents=False,
        progress=feedback.progress,
        cache=build_cache(project, None),  # LAYERKIT_CACHE / [tool.layerkit] in CI
    )
    from layerkit.check.layer import validate_built_layer

    result = validate_built_layer(
        project.root, name, target.runtime, architecture=target.architecture
    )
    feedback.progress(BuildEvent(f"layer {name}", "validated", "OK" if result.ok else "FAILED"))
    return result


def validate_layer(
    project: ProjectLike,
    name: str,
    *,
    runtime: str | None = None,
    arch: str | None = None,
    feedback: Feedback = QUIET,
    verbose: bool = False,
) -> LayerValidationOutput:
    """Build (if stale) and prove one layer on its runtime: imports, smoke test, ELF/glibc.

    On a host that cannot run the target (arm64 on x86_64) the proof is static only: every
    ELF file's architecture and glibc, nothing executed; the output and the manifest say so.
    ``verbose`` shows what the smoke test printed, passed or not.
    """
    project = open_project(project)
    target = target_for(project, runtime, arch)
    _host_notice(target, feedback)
    return LayerValidationOutput(_validate_one(project, name, target, feedback), verbose)


def _host_notice(target: Target, feedback: Feedback) -> None:
    """Say once per process when this host cannot run (or only emulates) the target's code."""
    notice = notice_once(target)
    if notice:
        feedback.note(f"note: {notice}")


@dataclass(frozen=True)
class ValidateOutput(_Output):
    """Sizes, template and every layer of one target, checked (and of the template's others)."""

    target: Target
    checks: BuildChecks
    layers: tuple[LayerValidation, ...]
    traces: tuple[str, ...] = ()  # what the functions' traces found missing (optimize's prunes)
    others: tuple[ValidateOutput, ...] = ()  # the template's other targets, each checked alike

    @property
    def failed_layers(self) -> tuple[str, ...]:
        """The layers that failed on the target."""
        return tuple(v.layer for v in self.layers if not v.ok)

    def _own_failure(self) -> str | None:
        errors, failed = self.checks.errors, self.failed_layers
        if not errors and not failed and not self.traces:
            return None
        return (
            f"{plural(len(errors), 'size/template/handler error')}"
            + (f"; layers failing on {self.target.key}: {', '.join(failed)}" if failed else "")
            + (f"; {plural(len(self.traces), 'function trace problem')}" if self.traces else "")
        )

    @property
    def failure(self) -> str | None:
        """Why validation failed: how many size/template errors, which layers, per target."""
        if not self.others:
            own = self._own_failure()
            return None if own is None else f"validation failed: {own}"
        parts = [
            f"{out.target.key}: {problem}"
            for out in (self, *self.others)
            if (problem := out._own_failure()) is not None
        ]
        return f"validation failed: {'; '.join(parts)}" if parts else None

    def _render_own(self) -> list[str]:
        headers = ["function", "package MB", "layers MB", "total MB", "limit MB", "headroom MB"]
        rows = [
            [
                t.function,
                mb(t.code_bytes),
                mb(sum(t.layer_bytes.values())),
                mb(t.total),
                mb(t.total + t.headroom),
                mb(t.headroom),
            ]
            for t in self.checks.totals
        ]
        lines = [format_table(headers, rows)]
        # sentences, not a table: they are long
        # includes the runtime lifecycle warning
        lines += [
            f"{f.severity}: {f.message if f.code == 'lifecycle' else f}"  # one wording everywhere
            for f in self.checks.report.findings
        ]
        from layerkit.check.layer import format_validation

        lines += [format_validation(v) for v in self.layers]
        lines += [f"error: trace: {problem}" for problem in self.traces]
        return lines

    def render(self) -> str:
        """Totals per function, findings, template problems, each layer, and the verdict."""
        if not self.others:
            lines = self._render_own()
        else:  # a heading per target, the template's main target first
            lines = []
            for out in (self, *self.others):
                lines += [f"target {out.target.key}:", *out._render_own()]
        if self.failure is None:
            targets = (self.target, *(o.target for o in self.others))
            lines.append(
                "validation passed"
                + (f" on {', '.join(t.key for t in targets)}" if self.others else "")
            )
        return "\n".join(lines)


def validate(
    project: ProjectLike,
    *,
    runtime: str | None = None,
    arch: str | None = None,
    builder: Builder | None = None,
    parameter_overrides: str | Sequence[str] = (),
    feedback: Feedback = QUIET,
) -> ValidateOutput:
    """Check sizes and Lambda limits, the template, and every layer on its runtime.

    Every target the template's functions run on is checked (the main target first, then
    arm64 or other runtimes in ``dist/<target>/``); ``runtime`` and ``arch`` narrow them. A
    target this host cannot run is checked statically, and a note says so. The template's
    names and Environment are resolved for every stage (with ``parameter_overrides``): what
    the direct deploy would refuse is an error here too.
    """
    project = open_project(project)
    targets = targets_for(project, runtime, arch)
    overrides = parse_overrides(parameter_overrides, "--parameter-overrides")
    stage_report = CheckReport(stage_findings(project, overrides))
    outputs = [
        _validate_target(project, target, builder, feedback, stage_report if i == 0 else None)
        for i, target in enumerate(targets)
    ]
    return replace(outputs[0], others=tuple(outputs[1:]))


def _validate_target(
    project: Project,
    target: Target,
    builder: Builder | None,
    feedback: Feedback,
    stage_report: CheckReport | None,
) -> ValidateOutput:
    """Build (if stale) and check one target; ``stage_report``: the template's stage findings."""
    _host_notice(target, feedback)
    result = (builder or project_builder(project))(project, target, progress=feedback.progress)
    checks = check_build(project, result)
    if stage_report is not None:
        checks = replace(checks, report=checks.report.merge(stage_report))
    layers = tuple(
        _validate_one(project, layer.name, target, feedback)
        for layer in project.layers
        if target in layer.targets()
    )
    traces: tuple[str, ...] = ()
    if all(v.ok for v in layers) and _pruned(project) and host_support(target).runs_code:
        # a code change may now need a module `optimize --apply` pruned: run the functions again
        from layerkit.optimize.apply import verify_traces

        feedback.progress(BuildEvent("functions", "trace", "running every event on the layers"))
        traces = verify_traces(project, target)
    return ValidateOutput(target, checks, layers, traces)


def _pruned(project: Project) -> bool:
    """True when some layer removes whole folders (what optimize --apply writes)."""
    return any(p for layer in project.layers for p in layer.slim.remove if "*" not in p)


# ---------------------------------------------------------------- optimize


@dataclass(frozen=True)
class OptimizeOutput(_Output):
    """What every function loads, what no function loads, and what was pruned (``apply``)."""

    report: OptimizeReport

    def render(self) -> str:
        """Per layer: unloaded bytes, candidates, the slowest imports, bytecode modes."""
        from layerkit.optimize.apply import format_report

        return format_report(self.report)


def optimize(
    project: ProjectLike,
    *,
    layer: str | None = None,
    apply: bool = False,
    bytecode: bool = False,
    runtime: str | None = None,
) -> OptimizeOutput:
    """Trace what every function and smoke test loads on the built layers; advise; ``apply``.

    ``apply`` writes the removals into the layers' ``[slim] remove``, rebuilds and re-runs every
    function; if anything fails or reaches a removed module, layer.toml is restored and the
    error names the module. ``bytecode`` also measures every bytecode mode.
    """
    from layerkit.optimize.apply import optimize as run_optimize

    project = open_project(project)
    target = target_for(project, runtime)
    return OptimizeOutput(run_optimize(project, target, layer, apply, measure_bytecode=bytecode))


# ---------------------------------------------------------------- upgrade-runtime


@dataclass(frozen=True)
class UpgradeOutput(_Output):
    """What moving the project to another runtime changes (or changed)."""

    report: UpgradeReport

    def render(self) -> str:
        """The file edits, version moves, sizes and cold starts before/after."""
        return "\n".join(self.report.lines())


def upgrade_runtime(
    project: ProjectLike,
    runtime: str,
    *,
    dry_run: bool = False,
    builder: Builder | None = None,
    feedback: Feedback = QUIET,
) -> UpgradeOutput:
    """Move the template and layers to ``runtime``: re-lock, rebuild, validate, invoke.

    Every step runs in a scratch copy first; the project's files are written only when all of
    them passed (``dry_run``: never). A failure leaves every file as it was.
    """
    project = open_project(project)

    def validate_all(p: Project, target: Target) -> None:
        out = validate(p, runtime=target.runtime, arch=target.architecture, builder=builder)
        if out.failure:
            raise CheckError(f"{out.render()}\n{out.failure}")

    from layerkit.upgrade import ProjectSteps
    from layerkit.upgrade import upgrade_runtime as run_upgrade

    steps = ProjectSteps(builder or project_builder(project), validate_all, feedback.progress)
    return UpgradeOutput(
        run_upgrade(project, runtime, dry_run=dry_run, steps=steps, progress=feedback.note)
    )


# ---------------------------------------------------------------- report


@dataclass(frozen=True)
class ReportOutput(_Output):
    """The report files written, and the report as text tables."""

    json_path: Path
    html_path: Path
    report: Mapping[str, Any]
    verbose: bool = False

    def render(self) -> str:
        """The tables, then where the files are."""
        table = render_table(self.report, verbose=self.verbose)
        return f"{table}\nwrote {self.json_path} and {self.html_path}"


def report(project: ProjectLike, *, verbose: bool = False) -> ReportOutput:
    """Write ``dist/report.json`` and ``dist/report.html`` for every built target.

    Sizes, passes, budgets, zipped sizes, what changed since the previous report; a missing or
    damaged manifest is a one-paragraph error saying what to run.
    """
    project = open_project(project)
    written = write_report(project.dist_dir, project, commit=git_commit(project.root))
    return ReportOutput(written.json_path, written.html_path, written.report, verbose)


# ---------------------------------------------------------------- invoke


@dataclass(frozen=True)
class InvokeOutput(_Output):
    """One invocation of a built function in the local sandbox."""

    function: str
    result: InvokeResult

    @property
    def failure(self) -> str | None:
        """Why the command fails: the handler raised or the process died."""
        if self.result.ok:
            return None
        return f"function {self.function} failed; its logs and error response are above."

    def render(self) -> str:
        """The function's logs, its response as JSON, and Lambda's REPORT line."""
        return (
            f"{self.result.logs}{json.dumps(self.result.response, indent=2)}\n"
            f"{self.result.report_line()}"
        )


def read_event(path: Path) -> Any:
    """The JSON event in ``path``, or a SpecError naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError(
            f"cannot read the event {path}: {exc}; pass a JSON file (for example the function's "
            "events/basic.json)."
        ) from None


@dataclass(frozen=True)
class StageInvokeOutput(_Output):
    """One invocation of what a stage runs (the local stage: the deployed zips, run for real)."""

    result: StageInvokeResult

    @property
    def failure(self) -> str | None:
        """Why the command fails: the function returned an error."""
        r = self.result
        return None if r.ok else f"{r.function_name}:{r.version} failed: {r.error}"

    def render(self) -> str:
        """The log tail (REPORT line last) and the payload as JSON."""
        return f"{self.result.logs}{json.dumps(self.result.payload, indent=2)}"


def invoke(
    project: ProjectLike,
    function: str,
    *,
    event: Path | str | None = None,
    stage: str | None = None,
    env_vars: Path | str | None = None,
    parameter_overrides: str | Sequence[str] = (),
    feedback: Feedback = QUIET,
) -> InvokeOutput | StageInvokeOutput:
    """Run a built function in the local Lambda sandbox (building what is stale first).

    With ``stage``, invoke what that stage runs instead: ``FUNCTION[:ALIAS|:VERSION]`` (default:
    the stage's alias). The event is looked for in the function's ``events/`` folder, then in the
    project's (``sam init`` keeps them there): ``basic.json`` (or SAM's ``event.json``) unless
    ``event`` names one. The handler gets the template's Environment, resolved for the local
    stage (or ``stage``) with ``parameter_overrides`` (``Key=Value ...``); ``env_vars``, a SAM
    ``--env-vars`` JSON file, is merged over it. An event over Lambda's 6 MB fails before
    anything is built.
    """
    from layerkit.check.invocation import env_overrides, find_event, read_env_vars
    from layerkit.runtime.sandbox import request_payload

    project = open_project(project)
    fn = project.function(function.partition(":")[0] if stage else function)
    payload = read_event(find_event(project, fn, event))
    request_payload(payload)  # RequestEntityTooLargeException before any build or run
    from_env_file = env_overrides(read_env_vars(Path(env_vars)), fn) if env_vars else {}
    if stage is not None and env_vars:
        raise SpecError(
            f"--env-vars sets the environment of a local sandbox run; the function on stage "
            f"{stage} runs with the environment it was deployed with. Drop --env-vars, or "
            "change the template's Environment and deploy."
        )
    overrides = parse_overrides(parameter_overrides, "--parameter-overrides")
    if stage is not None:
        from layerkit.deploy import deployer

        root, st = _stage(project, stage)
        with stage_session(root, st, feedback.note) as session:
            clients = session.clients
            view = for_stage(project, st, region=_region(clients), overrides=overrides)
            names = view.function_names
            return StageInvokeOutput(
                deployer.invoke_on_stage(
                    clients, st, function, payload, project, names=_by_folder(project, names)
                )
            )
    from layerkit.check.invocation import invoke_function

    env = for_stage(project, local_stage(project), overrides=overrides).environments.get(
        fn.logical_id, {}
    )
    target = project.function(function).target  # the function's own target
    out = project_builder(project)(project, target, progress=feedback.progress).out_dir
    env = {**env, **from_env_file}  # --env-vars over the template's resolved Environment
    return InvokeOutput(fn.name, invoke_function(project, fn.name, payload, out, env=env))


def _by_folder(project: Project, by_logical_id: Mapping[str, str]) -> dict[str, str]:
    """A mapping keyed by function logical ID, keyed by the function's folder name instead."""
    return {
        fn.name: by_logical_id[fn.logical_id]
        for fn in project.functions
        if fn.logical_id in by_logical_id
    }


# ---------------------------------------------------------------- deploy, rollback, releases


@dataclass(frozen=True)
class DeployOutput(_Output):
    """What a deploy planned and did on a stage."""

    stage: Stage
    dry_run: bool
    outcome: deployer.DeployOutcome

    def render(self) -> str:
        """Warnings, each step, and the functions' new versions and release."""
        out, lines = self.outcome, []
        if self.dry_run:
            lines.append(f"dry run: the plan for stage {self.stage.name}; nothing is changed")
        lines += [f"warning: {warning}" for warning in out.warnings]
        if not out.steps:
            lines.append("nothing to do: the stage is current")
        elif self.dry_run:  # a real deploy streamed its steps as they happened
            lines += [s.describe() for s in out.steps]
        if self.dry_run and out.steps:
            lines.append(f"dry run: {plural(len(out.steps), 'step')} planned, nothing was changed")
        if out.result and out.result.release:
            lines += [
                f"{fn.function_name}:{self.stage.alias} -> {fn.version}  "
                f"layers: {', '.join(fn.layers) or 'none'}"
                for fn in out.result.release.functions
            ]
            lines.append(f"release {out.result.release.release_id} recorded")
        from layerkit.deploy.planner import HealthCheck

        not_run = [s for s in out.steps if isinstance(s, HealthCheck) and s.not_run]
        if not_run and not self.dry_run:  # said in its step too; a summary never hides it
            lines.append(
                "health check not run on this host (checked statically only): "
                + ", ".join(s.function_name for s in not_run)
            )
        return "\n".join(lines)


def deploy(
    project: ProjectLike,
    *,
    stage: str = "local",
    dry_run: bool = False,
    allow_deprecated_runtime: bool = False,
    parameter_overrides: str | Sequence[str] = (),
    feedback: Feedback = QUIET,
) -> DeployOutput:
    """Deploy the current build to a stage; roll back on any failure.

    The build is ``dist/`` for the template's main target and ``dist/<target>/`` for every
    other target its functions run on (:func:`fresh_builds`).

    A build that is missing, stale, or fails the size or template checks is refused before
    anything starts; so is a template whose names or Environment do not resolve for the stage
    (its parameter values, ``parameter_overrides`` winning: ``Key=Value ...``).
    """
    from layerkit.deploy import deployer

    project = open_project(project)
    fresh, *others = fresh_builds(project)
    for result in (fresh, *others):
        refuse_invalid(project, result, "deployed")
    root, st = _stage(project, stage)
    overrides = parse_overrides(parameter_overrides, "--parameter-overrides")
    # refuse what does not resolve before connecting (the region is the clients' to decide)
    for_stage(project, st, region=PLACEHOLDER_REGION, overrides=overrides)
    with stage_session(root, st, feedback.note, writable=not dry_run) as session:
        clients = session.clients
        view = for_stage(project, st, region=_region(clients), overrides=overrides)
        for line in view.not_deployed():
            feedback.note(line)
        desired = deployer.desired_state(
            project,
            fresh.records,
            fresh.out_dir,
            git_commit(project.root),
            view=view,
            others={r.target: (r.records, r.out_dir) for r in others},
        )
        outcome = deployer.deploy(
            desired,
            clients,
            st,
            dry_run=dry_run,
            allow_deprecated_runtime=allow_deprecated_runtime,
            progress=None if dry_run else feedback.step,  # each step as it happens
        )
    return DeployOutput(st, dry_run, outcome)


@dataclass(frozen=True)
class PackageOutput(_Output):
    """What ``package`` uploaded and the packaged template it wrote."""

    root: Path
    stage: Stage
    result: PackageResult

    def render(self) -> str:
        """The uploads, the template written and the ``sam deploy`` command for it."""
        st, result = self.stage, self.result
        lines = [f"uploaded s3://{st.bucket}/{key}" for key in result.uploaded]
        if result.reused:
            reused = plural(len(result.reused), "zip")
            lines.append(f"{reused} already in s3://{st.bucket}/ (not uploaded)")
        lines.append(f"wrote {result.template.relative_to(self.root)}")
        lines.append(f"  functions: {', '.join(result.function_names) or 'none'}")
        lines.append(f"  layers: {', '.join(result.layer_names) or 'none'}")
        if result.parameters:
            values = ", ".join(f"{k}={v}" for k, v in sorted(result.parameters.items()))
            lines.append(f"  parameter defaults: {values}")
        command = result.deploy_command(result.stack_name or f"layerkit-{st.name}", st.region)
        lines.append(f"deploy it with: {command}")
        return "\n".join(lines)


def _region(clients: Clients) -> str | None:
    """The region a stage's clients use (None: a client that does not say)."""
    region = getattr(getattr(clients.lambda_, "meta", None), "region_name", None)
    return region if isinstance(region, str) else None


def package(
    project: ProjectLike,
    *,
    stage: str = "local",
    parameter_overrides: str | Sequence[str] = (),
    feedback: Feedback = QUIET,
) -> PackageOutput:
    """Upload the current build to a stage's bucket; write ``dist/template.packaged.yaml``.

    The packaged template is what ``sam deploy --template-file`` or ``aws cloudformation deploy``
    takes. A build that is stale or fails its checks is refused before anything is uploaded.
    """
    project = open_project(project)
    fresh, *others = fresh_builds(project)
    for result in (fresh, *others):
        refuse_invalid(project, result, "uploaded")
    from layerkit.deploy.package import package as package_stage

    root, st = _stage(project, stage)
    with stage_session(root, st, feedback.note) as session:
        clients = session.clients
        result = package_stage(
            project,
            st,
            clients,
            fresh.out_dir,
            commit=git_commit(root),
            overrides=parse_overrides(parameter_overrides, "--parameter-overrides"),
        )
    return PackageOutput(root, st, result)


@dataclass(frozen=True)
class RollbackOutput(_Output):
    """What a rollback restored."""

    stage: Stage
    outcome: deployer.RollbackOutcome

    def render(self) -> str:
        """What was restored, what was left, and the release the stage now runs."""
        out, name = self.outcome, self.stage.name
        if out.release is None:
            return f"stage {name} already runs release {out.target.release_id}: nothing to do"
        lines = [*out.notes, *out.restored]
        if out.skipped:
            lines.append(
                f"not in release {out.target.release_id}, left as is: {', '.join(out.skipped)}"
            )
        lines.append(
            f"stage {name} runs release {out.target.release_id} "
            f"(recorded as {out.release.release_id})"
        )
        return "\n".join(lines)


def rollback(
    project: ProjectLike,
    *,
    stage: str = "local",
    release: str | None = None,
    feedback: Feedback = QUIET,
) -> RollbackOutput:
    """Move a stage's aliases (and ``$LATEST``) back to a recorded release (default: previous)."""
    from layerkit.deploy import deployer

    root, st = _stage(project, stage)
    health = _health_events(project)
    with stage_session(root, st, feedback.note) as session:
        clients = session.clients
        outcome = deployer.rollback(
            clients,
            st,
            release,
            commit=git_commit(root),
            health_events=health,
            unusable=session.unusable,
        )
    return RollbackOutput(st, outcome)


def _health_events(project: ProjectLike) -> dict[str, bytes]:
    """Each function's health-check event by folder name, as the deploy sends it.

    A rollback of a folder that no longer loads as a project falls back to the default event.
    """
    try:
        loaded = open_project(project)
    except SpecError:
        return {}
    events = health_events(loaded)
    return {fn.name: events[fn.logical_id] for fn in loaded.functions if fn.logical_id in events}


@dataclass(frozen=True)
class ReleasesOutput(_Output):
    """The releases recorded for a stage, oldest first."""

    stage: Stage
    releases: tuple[Release, ...]
    drift: str | None = None  # how the aliases differ from the newest release, if they do

    def render(self) -> str:
        """One line per release: id, kind, commit, function versions; then any drift."""
        lines = []
        for r in self.releases:
            note = f" -> {r.rolled_back_to}" if r.rolled_back_to else ""
            versions = ", ".join(f"{f.function_name}:{f.version}" for f in r.functions)
            lines.append(f"{r.release_id}  {r.kind}{note}  commit {r.commit or '-'}  {versions}")
        text = "\n".join(lines) or f"no releases recorded for stage {self.stage.name}"
        return f"{text}\n{self.drift}" if self.drift else text


def releases(
    project: ProjectLike, *, stage: str = "local", limit: int = 20, feedback: Feedback = QUIET
) -> ReleasesOutput:
    """List the releases recorded for a stage, oldest first (the newest ``limit``), and drift.

    Drift: functions whose stage alias is not where the newest release put it (a deploy or
    rollback killed between its moves), shown until a deploy or rollback resolves it. Reads
    only: the local stage's files are not written.
    """
    from layerkit.deploy.releases import list_releases, read_drift

    root, st = _stage(project, stage)
    with stage_session(root, st, feedback.note, writable=False) as session:
        clients = session.clients
        listed = list_releases(clients.s3, st, limit=limit)
        drift = read_drift(clients.lambda_, st, listed[-1:]) if limit > 0 else None
        return ReleasesOutput(st, listed, drift.describe() if drift else None)


@dataclass(frozen=True)
class UnlockOutput(_Output):
    """The stale deploy lock removed, if there was one."""

    stage: Stage
    removed: stagelock.LockInfo | None

    def render(self) -> str:
        """Whose lock was removed, or that there was none."""
        held = self.removed
        if held is None:
            return f"stage {self.stage.name} has no deploy lock: nothing to remove"
        return f"removed the lock of {held.owner} since {held.since} ({held.purpose})"


def unlock(
    project: ProjectLike, *, stage: str = "local", feedback: Feedback = QUIET
) -> UnlockOutput:
    """Remove a stage's deploy lock that a killed deploy or rollback left behind."""
    from layerkit.deploy import deployer

    root, st = _stage(project, stage)
    with stage_session(root, st, feedback.note) as session:
        clients = session.clients
        return UnlockOutput(st, deployer.unlock(clients, st))


# ---------------------------------------------------------------- clean


@dataclass(frozen=True)
class InitOutput(_Output):
    """The stages file ``init`` wrote."""

    path: Path

    def render(self) -> str:
        """What was written and what to edit."""
        return (
            f"wrote {self.path}: the local stage, and a commented staging stage to fill in "
            "(bucket, role, region) for AWS"
        )


def init(project: ProjectLike) -> InitOutput:
    """Write a commented stages file into the project; refuse to overwrite one."""
    root, config = _root_config(project)
    path = root / config.stages_file
    if path.exists():
        raise SpecError(
            f"{path} exists already; `init` does not overwrite it. Edit it (the README's "
            '"Stages" section lists every key), or remove it and run init again.'
        )
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(stages_file_text(), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise SpecError(
            f"could not write {path}: {exc.strerror or exc}; check the folder."
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return InitOutput(path)


@dataclass(frozen=True)
class CleanOutput(_Output):
    """What ``clean`` removed."""

    removed: tuple[Path, ...]

    def render(self) -> str:
        """The paths removed, or "nothing"."""
        return "removed: " + (", ".join(str(p) for p in self.removed) or "nothing")


def clean(project: ProjectLike, *, layer: str | None = None) -> CleanOutput:
    """Remove build output: all of ``dist/``, or one layer's zips (every target).

    Removing everything needs no valid project: it works when the project is broken.
    """
    if layer is None:
        return CleanOutput(clean_everything(_root_config(project)[0]))
    return CleanOutput(clean_layer(open_project(project), layer))
