"""The build pipeline: plan -> for each artifact not fresh, its steps -> the manifest.

:mod:`layerkit.build.plan` decides what is fresh, :mod:`layerkit.build.steps` holds each
artifact's steps (install → slim → bytecode → import check → zip for a layer) and
:mod:`layerkit.build.runner` runs them, independent layers side by side. This module is the
whole build around them.

Safe: one build at a time per output folder (an advisory file lock, released by the OS even if
the process dies); whatever a killed build left (staging folders, half-written zips and
manifests, of any target) is removed by the next one; work happens in a staging folder that is
always removed; every zip is renamed into place only when complete, and the manifest is
rewritten after each artifact, never describing a zip that is being replaced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from layerkit.build import cache as build_cache
from layerkit.build.lock import Partition, target_indexes
from layerkit.build.manifest import (
    MANIFEST,
    ArtifactKind,
    ArtifactRecord,
    DamagedManifestError,
    artifact_intact,
    artifact_path,
    read_manifest,
    read_manifest_or_nothing,
    read_refusals,
    stat_fields,
    unchanged_since_recorded,
    write_manifest,
)
from layerkit.build.plan import (
    BUILD_FORMAT,
    DIST,
    ArtifactState,
    Plan,
    Planned,
    check_target,
    function_files,
    function_hash,
    layer_hashes,
    output_dir,
    plan,
)
from layerkit.build.runner import (
    BuildEvent,
    BuildInterrupted,
    EventKind,
    Finished,
    Progress,
    Tracker,
    default_jobs,
    no_progress,
    run_job,
    run_jobs,
)
from layerkit.build.sbom import sbom_path, write_sboms
from layerkit.build.steps import Job, steps_for
from layerkit.build.tools import Tools, real_tools
from layerkit.check.sizes import raise_for_layer_limits, refusal
from layerkit.errors import BuildError, BuildLockedError, SpecError
from layerkit.locking import exclusive, is_storage_problem, storage_error
from layerkit.project.config import load_config
from layerkit.project.spec import Project
from layerkit.report.table import mb
from layerkit.runtime.host import notice_once
from layerkit.runtime.target import Target

__all__ = [
    "BUILD_FORMAT",
    "DIST",
    "LOCK_FILE",
    "WORK",
    "ArtifactState",
    "BuildEvent",
    "BuildInterrupted",
    "BuildResult",
    "EventKind",
    "Plan",
    "Planned",
    "Progress",
    "build",
    "build_lock",
    "check_target",
    "clean",
    "clean_all",
    "function_files",
    "function_hash",
    "layer_hashes",
    "not_current",
    "output_dir",
    "plan",
    "require_fresh",
]

WORK = ".work"
#: A refused zip is renamed to ``<name>.zip.refused``: never under its final name.
REFUSED_SUFFIX = ".refused"
LOCK_FILE = ".build.lock"


@dataclass(frozen=True)
class BuildResult:
    """What a build did and what the output folder now holds."""

    out_dir: Path
    target: Target
    built: tuple[str, ...]  # artifact paths rebuilt, in build order
    records: Mapping[str, ArtifactRecord]  # every artifact in the manifest
    partition: Partition
    cached: tuple[str, ...] = ()  # artifact paths downloaded from the build cache instead


# ---------------------------------------------------------------- the build lock


@contextlib.contextmanager
def build_lock(out_dir: Path, *, skip_unwritable: bool = False) -> Iterator[bool]:
    """Hold the build lock of ``out_dir``, or raise BuildLockedError at once.

    Builds and cleans take the one lock of ``dist/`` whatever their target: ``dist/`` holds the
    other targets' folders, so a clean of it must not run beside any build. A ``dist/`` that
    cannot be written is a :class:`~layerkit.errors.StorageError` paragraph, or with
    ``skip_unwritable`` (a build that may find nothing to do) the block runs without the lock
    and this yields False.
    """

    def refuse(holder: str) -> BuildLockedError:
        return BuildLockedError(
            f"another layerkit build is running in {out_dir} ({holder}); wait for it to "
            "finish and run the command again. The lock is released automatically when "
            "that process ends."
        )

    with exclusive(
        out_dir / LOCK_FILE, refuse, needed="the build lock", skip_unwritable=skip_unwritable
    ) as held:
        yield held


# ---------------------------------------------------------------- the whole build


def _wanted_layers(
    project: Project, target: Target, layers: Sequence[str], dependents: bool
) -> list[str]:
    """``layers``, the layers they require and (with ``dependents``) the layers requiring them."""
    for name in layers:
        if target not in project.layer(name).targets():  # unknown names fail here too
            raise SpecError(
                f"layer {name} is not built for {target.key}; {project.layer(name).settings_file} "
                f"and the template give {', '.join(t.key for t in project.layer(name).targets())}."
            )
    wanted = {*layers, *(r for name in layers for r in project.required_closure(name))}
    if dependents:
        wanted |= {d for name in layers for d in project.dependents(name)}
    return sorted(wanted)


def _needs(project: Project, todo: Sequence[Planned]) -> dict[str, frozenset[str]]:
    """What each artifact (by path) waits for: a layer its required layers, a function all."""
    layers = {p.name: p.path for p in todo if p.kind == ArtifactKind.LAYER}
    needs = {}
    for item in todo:
        if item.kind == ArtifactKind.LAYER:
            required = project.required_closure(item.name)
            needs[item.path] = frozenset(layers[r] for r in required if r in layers)
        else:
            needs[item.path] = frozenset(layers.values())
    return needs


@dataclass
class _Run:
    """One build in progress: what it shares and what it has recorded so far.

    :meth:`start` and :meth:`finish` run in the calling thread, so only that thread ever writes
    the manifest; what :meth:`start` returns runs in a worker thread.
    """

    project: Project
    target: Target
    plan: Plan
    tools: Tools
    tracker: Tracker
    cache: build_cache.CacheStore | None
    force: bool
    records: dict[str, ArtifactRecord]
    built: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    needs: Mapping[str, frozenset[str]] = field(default_factory=dict)  # see _needs
    finished: Finished = field(init=False)
    # layers that layers still to build require, and their staged trees once built (kept)
    required: frozenset[str] = frozenset()
    staged: dict[str, Path] = field(default_factory=dict)
    # the records start() took out of the manifest, put back when their zip is still whole
    previous: dict[str, ArtifactRecord] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.finished = Finished(self.cancel)

    @property
    def out(self) -> Path:
        """The output folder."""
        return output_dir(self.project, self.target)

    def todo(self) -> dict[str, Planned]:
        """What to build, by path, in plan order; tells progress about the rest."""
        todo = {}
        for item in self.plan.artifacts:
            if self.force or item.state != ArtifactState.FRESH:
                steps = len(steps_for(item.kind))
                if item.why:
                    self.tracker.emit(BuildEvent(item.label, "stale", item.why))
                self.tracker.emit(BuildEvent(item.label, "queued", "", EventKind.QUEUED, 0, steps))
                todo[item.path] = item
            else:
                self.tracker.emit(BuildEvent(item.label, "fresh", "up to date", EventKind.FRESH))
        return todo

    def start(self, item: Planned) -> Callable[[], ArtifactRecord]:
        """Forget the artifact's old record and stage its job."""
        old = self.records.pop(item.path, None)  # never describe a zip that is being replaced
        if old is not None:
            self.previous[item.path] = old
        write_manifest(self.out, self.target.key, self.records)
        _, lock, part = self.plan
        stage = _stage(self.out, item)
        records = dict(self.records)
        building = self.needs.get(item.path, frozenset())  # required layers still being built

        def await_required() -> Mapping[str, ArtifactRecord]:
            self.finished.wait(building, item.label)
            return dict(self.records)

        job = Job(
            item, self.project, self.target, lock, part, self.out, stage, self.tools, records,
            await_required if building and item.kind == ArtifactKind.LAYER else None,
            self.staged,
        )  # fmt: skip
        fetch = not self.force
        required = item.path in self.required

        def run() -> tuple[ArtifactRecord, bool]:
            outcome = _run_in_stage(
                job, self.tracker, self.cancel, self.cache, fetch=fetch, keep=required
            )
            if required and job.tree.is_dir():
                self.staged[item.path] = job.tree  # read by the layers that require it
            return outcome

        return run

    def remove_staged(self) -> None:
        """Remove the staged trees kept for required layers (at the end of the build)."""
        for tree in self.staged.values():
            shutil.rmtree(tree.parent, ignore_errors=True)
        self.staged.clear()

    def keep_whole(self) -> None:
        """Put back the records of replaced artifacts whose zip is still the one they describe.

        For a build that failed or was interrupted (a ``--force`` build, say): an artifact it
        had started but not replaced, built from the current inputs, is still whole and stays
        described and fresh. One whose inputs changed stays undescribed (it is to be rebuilt).
        """
        current = {p.path: p.input_hash for p in self.plan.artifacts}
        for path, old in self.previous.items():
            if (
                path not in self.records
                and current.get(path) == old.input_hash
                and artifact_intact(self.out, old)
            ):
                self.records[path] = old

    def refuse(self, item: Planned, why: str) -> BuildError:
        """Move a refused zip off its final name, record why, and say it (the error to raise)."""
        dest = self.out / item.path
        refused = dest.with_name(dest.name + REFUSED_SUFFIX)
        if dest.exists():
            dest.replace(refused)
        write_manifest(
            self.out, self.target.key, self.records, {**read_refusals(self.out), item.path: why}
        )
        return BuildError(
            f"{item.label} was built but refused: {why}. Its zip was moved to {refused} (not "
            "deployable); fix the layer and build again."
        )

    def finish(self, item: Planned, outcome: tuple[ArtifactRecord, bool]) -> None:
        """Record a built (or downloaded: ``from_cache``) artifact in the manifest.

        A layer above Lambda's unzipped limit, or over its budget without a reason in its
        layer.toml, is refused instead (:func:`layerkit.check.sizes.refusal`).
        """
        record, from_cache = outcome
        why = refusal(self.project, record)
        if why is not None:
            raise self.refuse(item, why)
        self.records[item.path] = record
        write_manifest(self.out, self.target.key, self.records)
        self.finished.mark(item.path)
        (self.cached if from_cache else self.built).append(item.path)
        size = f"{mb(record.unzipped_bytes)} MB unzipped, {mb(record.zipped_bytes)} MB zipped"
        steps = len(record.timings)
        self.tracker.emit(
            BuildEvent(
                item.label,
                "done",
                size,  # the seconds are the event's elapsed
                EventKind.BUILT,
                steps,
                steps,
                record.build_seconds,
            )
        )


def build(
    project: Project,
    target: Target | None = None,
    *,
    layers: Sequence[str] | None = None,
    functions: bool = True,
    dependents: bool = True,
    force: bool = False,
    progress: Progress = no_progress,
    tools: Tools | None = None,
    jobs: int | None = None,
    cache: build_cache.CacheStore | None = None,
) -> BuildResult:
    """Build what is not fresh: every layer (or ``layers``) and every function.

    ``layers`` names layers to build; the layers they require are built first when stale (a
    layer is checked on top of them), and with ``dependents`` the layers that require them too.
    ``tools`` are the installer, target interpreter and strip (the real ones by default);
    ``jobs`` artifacts build at once (default: one per core). ``progress`` gets every
    :class:`BuildEvent`, one at a time, from the thread building the artifact. With a
    ``cache``, an artifact whose input hash has a verified entry there is downloaded instead of
    built, and what is built is uploaded (``force`` skips the download, not the upload); see
    :mod:`layerkit.build.cache`. A Ctrl-C is a :class:`BuildInterrupted` saying what was being
    built. A layer above Lambda's unzipped limit fails the build whatever its budget.
    """
    target = target or project.deploy_target
    if layers is not None:
        layers = _wanted_layers(project, target, layers, dependents)
    check_target(project, target)
    tools = tools or real_tools(target, project.root, target_indexes(project, target))
    tracker = Tracker(progress)
    with build_lock(project.dist_dir, skip_unwritable=True) as held:
        if held:
            sweep(project.dist_dir)
        planned = plan(
            project, target, layers=layers, functions=functions, tool_versions=tools.versions()
        )
        out = output_dir(project, target)
        if not held:  # a read-only dist/: fine while everything is fresh, else one paragraph
            _refuse_unwritable(project.dist_dir, planned, force)
            return _result(out, target, planned, read_manifest_or_nothing(out), [], [])
        run = _Run(
            project, target, planned, tools, tracker, cache, force, read_manifest_or_nothing(out)
        )
        _refresh_stats(out, planned, run.records)
        todo = run.todo()
        notice = notice_once(target) if todo else None  # said once per process
        if notice:
            tracker.emit(BuildEvent(f"target {target.key}", "host", notice))
        run.needs = _needs(project, list(todo.values()))
        run.required = frozenset(
            r
            for p, needed in run.needs.items()
            if todo[p].kind == ArtifactKind.LAYER
            for r in needed
        )
        finished = False
        try:
            run_jobs(
                list(todo),
                run.needs,
                lambda path: run.start(todo[path]),
                lambda path, record: run.finish(todo[path], record),
                run.cancel,
                jobs or default_jobs(),
                early=frozenset(p for p, item in todo.items() if item.kind == ArtifactKind.LAYER),
            )
            finished = True
        except KeyboardInterrupt as exc:
            raise exc if isinstance(exc, BuildInterrupted) else tracker.interrupted() from None
        except OSError as exc:  # a read-only or full dist/, step cache or staging folder
            if not is_storage_problem(exc):
                raise
            folder = Path(exc.filename).parent if exc.filename else out
            raise storage_error(folder, "the files of the build", exc) from None
        finally:
            run.remove_staged()
            if not finished:  # failed or interrupted: the manifest is written below otherwise
                run.keep_whole()
                with contextlib.suppress(OSError):  # the error being raised says more
                    write_manifest(out, target.key, run.records)
        _drop_unknown(out, run.records, project)
        write_manifest(out, target.key, run.records)
        write_sboms(out, run.records, planned.lock)
        if todo:
            tools.memo.trim()
        unwritable = getattr(tools.memo, "unwritable", None)
        if unwritable:
            tracker.emit(
                BuildEvent(
                    "step cache",
                    "note",
                    f"could not be written ({unwritable[0]}): its results were computed and not "
                    "kept, so the next build computes them again; make the folder writable or "
                    "set LAYERKIT_CACHE_DIR to one that is (LAYERKIT_STEP_CACHE=off silences this)",
                )
            )
    # a layer above Lambda's unzipped limit fails its build whatever its budget
    raise_for_layer_limits(run.records[p.path] for p in planned.artifacts if p.path in run.records)
    return _result(out, target, planned, run.records, run.built, run.cached)


def _result(
    out: Path,
    target: Target,
    planned: Plan,
    records: Mapping[str, ArtifactRecord],
    built: Sequence[str],
    cached: Sequence[str],
) -> BuildResult:
    order = [p.path for p in planned.artifacts]
    return BuildResult(
        out,
        target,
        tuple(sorted(built, key=order.index)),
        records,
        planned.partition,
        tuple(sorted(cached, key=order.index)),
    )


def _refuse_unwritable(dist: Path, planned: Plan, force: bool) -> None:
    """A build in a ``dist/`` it cannot write: nothing to do is fine, anything else a paragraph."""
    todo = [p.label for p in planned.artifacts if force or p.state != ArtifactState.FRESH]
    if todo:
        exc = OSError(errno.EROFS, os.strerror(errno.EROFS), str(dist))
        raise storage_error(dist, f"building {', '.join(todo)}", exc)


def _stage(out: Path, item: Planned) -> Path:
    """A fresh staging folder for ``item`` under ``out/.work``."""
    work_root = out / WORK
    work_root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{item.kind}-{item.name}-", dir=work_root))


def _run_in_stage(
    job: Job,
    tracker: Tracker,
    cancel: threading.Event,
    cache: build_cache.CacheStore | None = None,
    *,
    fetch: bool = True,
    keep: bool = False,
) -> tuple[ArtifactRecord, bool]:
    """The artifact's record, and whether it came from ``cache`` instead of its steps.

    The cache's one hook per artifact (:func:`layerkit.build.cache.through`): a verified entry
    is downloaded (not with ``fetch`` False), else the steps run and what they built is
    uploaded; cache lookups, uploads and warnings are progress events. The job's staging
    folder is removed however this ends, except (``keep``) the tree of a layer its steps built
    well, which layers that require it read; the build removes it when it ends.
    """
    planned, started = job.planned, time.monotonic()

    def note(step: str, detail: str) -> None:
        tracker.emit(BuildEvent(planned.label, step, detail))

    built = False
    try:
        record, found = build_cache.through(
            cache,
            job.out,
            build_cache.CacheKey(
                planned.kind, planned.name, planned.path, job.target.key, planned.input_hash
            ),
            lambda: run_job(job, steps_for(planned.kind), tracker, cancel),
            note,
            lookup=fetch,
        )
        built = found is not build_cache.Lookup.HIT
    finally:
        if not (keep and built):
            shutil.rmtree(job.stage, ignore_errors=True)
    if built:
        return record, False
    seconds = round(time.monotonic() - started, 3)  # the download is its only timed step
    dest = job.out / planned.path
    local = dataclasses.replace(record, timings=(("cache", seconds),), **stat_fields(dest))
    return local, True


def _refresh_stats(out: Path, planned: Plan, records: dict[str, ArtifactRecord]) -> None:
    """Record the file facts of fresh zips whose sha256 was computed again (touched, copied).

    The plan found their bytes whole; keeping their new size, mtime, inode and ctime means the
    next build does not hash them again.
    """
    for item in planned.artifacts:
        record = records.get(item.path)
        if item.state != ArtifactState.FRESH or record is None:
            continue
        path = out / item.path
        with contextlib.suppress(OSError):
            if not unchanged_since_recorded(path.stat(), record):
                records[item.path] = dataclasses.replace(record, **stat_fields(path))


def _drop_unknown(out: Path, records: dict[str, ArtifactRecord], project: Project) -> None:
    """Forget manifest entries of layers/functions that no longer exist in the project."""
    known = {artifact_path("layer", x.name) for x in project.layers}
    known |= {artifact_path("function", f.name) for f in project.functions}
    for path in [p for p in records if p not in known]:
        del records[path]
        (out / path).unlink(missing_ok=True)
        (out / sbom_path(path)).unlink(missing_ok=True)


def sweep(base: Path) -> tuple[Path, ...]:
    """Remove what killed builds of any target left in ``base`` (``dist/``); return it.

    Staging folders (``.work``), half-written zips (``.<name>.zip.<pid>.tmp``) and manifests
    (``.manifest.json.<pid>.tmp``). Call it holding the build lock of ``base``.
    """
    removed: list[Path] = []
    outs = [base, *(d for d in sorted(base.iterdir()) if d.is_dir())] if base.is_dir() else []
    for out in outs:
        if (out / WORK).is_dir():
            shutil.rmtree(out / WORK, ignore_errors=True)
            removed.append(out / WORK)
        leftovers = [*out.glob(f".{MANIFEST}.*.tmp")]
        for folder in (out / "layers", out / "functions"):
            leftovers += folder.glob(".*.tmp") if folder.is_dir() else []
        for tmp in leftovers:
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return tuple(removed)


def clean_all(root: Path) -> tuple[Path, ...]:
    """Remove everything in the build output folder of the project at ``root`` (``dist/``).

    Needs no valid project (it works on a broken one): only ``[tool.layerkit] dist-dir``.
    """
    base = root / load_config(root).dist_dir
    if not base.exists():
        return ()
    with build_lock(base):
        for child in base.iterdir():
            if child.name != LOCK_FILE:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    return (base,)


def clean(project: Project, layer: str | None = None) -> tuple[Path, ...]:
    """Remove build output: everything under dist/, or one layer's zips for every target."""
    base = project.dist_dir
    if layer is None:
        return clean_all(project.root)
    project.layer(layer)
    removed = []
    for target in project.targets:
        out = output_dir(project, target)
        if not out.exists():
            continue
        with build_lock(base):
            path = artifact_path(ArtifactKind.LAYER, layer)
            try:
                records: dict[str, ArtifactRecord] | None = read_manifest(out)
            except DamagedManifestError:
                records = None  # the next build rewrites it; the zip still goes
            if records is not None and records.pop(path, None) is not None:
                write_manifest(out, target.key, records)
            (out / sbom_path(path)).unlink(missing_ok=True)
            if (out / path).exists():
                (out / path).unlink()
                removed.append(out / path)
    return tuple(removed)


def not_current(out: Path, planned: Iterable[Planned]) -> list[str]:
    """``path (state)`` of each planned artifact that is not fresh in ``out``.

    One the last build refused says why instead of its state (``refused: <why>``, read from
    the manifest only when something is not fresh).
    """
    bad = [p for p in planned if p.state != ArtifactState.FRESH]
    refused = read_refusals(out) if bad else {}
    return [
        f"{p.path} ({'refused: ' + refused[p.path] if p.path in refused else p.state})" for p in bad
    ]


def require_fresh(project: Project, target: Target | None = None) -> BuildResult:
    """The current build, or BuildError naming what is missing or stale (for deploy/validate)."""
    target = target or project.deploy_target
    planned, _, part = plan(project, target)
    bad = not_current(output_dir(project, target), planned)
    if bad:
        items = ", ".join(bad)
        raise BuildError(
            f"the build in {output_dir(project, target)} is not current: {items}. "
            "Run `inv build.all` first."
        )
    out = output_dir(project, target)
    records = {p.path: p.record for p in planned if p.record is not None}
    return BuildResult(out, target, (), records, part)
