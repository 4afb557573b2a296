"""``upgrade-runtime``: move the project to a new Lambda runtime, proven before anything is written.

The upgrade is rehearsed in a scratch copy of the project (everything but ``dist/``, ``.git``
and tool caches): the runtime edits of :mod:`layerkit.project.upgrade` are applied there, every
target is re-locked (keeping the versions that still fit), the layers, the model and the
function packages are built for the new runtime, the project is validated and every function
is invoked with its ``events/basic.json`` in the sandbox on the new runtime. Only when all of
that passed are the changed project files (template, layer.toml files, locks, the retrained
model) written back, and the rehearsal's build becomes ``dist/``. A failure at any step leaves
the project's files exactly as they were; a failure while writing them back restores every file
from its text before the upgrade. ``dry_run`` does the whole rehearsal and writes nothing.

What it reports: the file edits, every distribution whose locked version moves, each artifact's
size before and after, and each function's handler init time (cold start) before and after.

The steps that build, lock, validate and invoke are behind :class:`UpgradeSteps`, so the
orchestration is tested without an interpreter; :class:`ProjectSteps` is the real one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from layerkit.build import lock as locker
from layerkit.build.manifest import ArtifactRecord
from layerkit.build.pipeline import BuildResult, build_lock, output_dir
from layerkit.errors import LayerkitError
from layerkit.project.spec import Project, load_project
from layerkit.project.upgrade import (
    FileChange,
    VersionMove,
    upgrade_layer_toml,
    upgrade_template,
    version_moves,
)
from layerkit.report.table import format_table, mb, plural
from layerkit.runtime.host import host_support
from layerkit.runtime.target import Target

#: What the rehearsal copy leaves out: build output, version control, environments, caches.
SKIPPED = ("dist", ".git", ".venv", ".nox", "__pycache__", ".pytest_cache", ".ruff_cache", ".work")
#: Folders whose files the upgrade may change besides the edited ones (locks, trained models).
WRITTEN_DIRS = ("locks", "functions")


class UpgradeError(LayerkitError):
    """The upgrade failed a step; the project's files were left as they were."""


@dataclass(frozen=True)
class SizeChange:
    """An artifact's unzipped size on the old and the new runtime (None: not built there)."""

    artifact: str
    before: int | None
    after: int | None


@dataclass(frozen=True)
class ColdStartChange:
    """A function's handler init time (ms) in the sandbox on the old and the new runtime."""

    function: str
    before_ms: float | None
    after_ms: float | None


@dataclass(frozen=True)
class UpgradeReport:
    """What an upgrade changes (dry run) or changed."""

    old: Target
    new: Target
    dry_run: bool
    files: tuple[FileChange, ...]
    moves: tuple[VersionMove, ...]
    sizes: tuple[SizeChange, ...]
    cold_starts: tuple[ColdStartChange, ...]
    written: tuple[Path, ...] = ()  # project files written (none in a dry run)
    notes: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """The report as text: edits, version moves, size and cold-start tables."""
        verb = "would change" if self.dry_run else "changed"
        out = [f"upgrade {self.old.key} -> {self.new.key}" + (" (dry run)" if self.dry_run else "")]
        out.append(f"files it {verb}:")
        for change in self.files:
            if change.changed:
                out.extend(f"  {change.path.name}: {line}" for line in change.changes)
        out.append(f"distributions whose version moves ({len(self.moves)}):")
        out.extend(f"  {m.describe()}" for m in self.moves)
        out.append("sizes (unzipped MB):")
        rows = [
            [s.artifact, mb(s.before), mb(s.after), _delta_mb(s.before, s.after)]
            for s in self.sizes
        ]
        out.append(format_table(["artifact", self.old.runtime, self.new.runtime, "change"], rows))
        out.append("cold start (handler init in the sandbox, ms, the fastest of a few runs):")
        rows = [
            [c.function, _ms(c.before_ms), _ms(c.after_ms), _delta_ms(c.before_ms, c.after_ms)]
            for c in self.cold_starts
        ]
        out.append(format_table(["function", self.old.runtime, self.new.runtime, "change"], rows))
        out.extend(f"note: {n}" for n in self.notes)
        if self.dry_run:
            out.append("dry run: every step passed in a scratch copy; no project file was written")
        else:
            written = plural(len(self.written), "file")
            out.append(f"wrote {written}; dist/ holds the {self.new.key} build")
        return out


def _delta_mb(before: int | None, after: int | None) -> str:
    return "" if before is None or after is None else f"{(after - before) / 1e6:+.1f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _delta_ms(before: float | None, after: float | None) -> str:
    return "" if before is None or after is None else f"{after - before:+.0f}"


class UpgradeSteps(Protocol):
    """The tool side of an upgrade (building, locking, checking, invoking)."""

    def build(self, project: Project, target: Target, *, retrain: bool) -> BuildResult:
        """Build every layer, the model (retrained if asked) and every function of ``target``."""
        ...

    def relock(self, project: Project) -> None:
        """Resolve every target (keeping locked versions that fit), then write every lock."""
        locker.lock_all(project)

    def validate(self, project: Project, target: Target) -> None:
        """Raise a LayerkitError unless sizes, template and every layer pass on ``target``."""
        ...

    def cold_starts(self, project: Project, target: Target, out_dir: Path) -> Mapping[str, float]:
        """Invoke every function's basic event; its init ms. Raise if one fails."""
        ...


def locked_versions(project: Project, target: Target) -> dict[str, str]:
    """``{distribution: version}`` of ``target``'s lock (empty when there is none yet)."""
    path = locker.lock_path(project.root, target)
    if not path.is_file():
        return {}
    return {p.name: p.version for p in locker.parse_lock(path.read_text(), path).packages}


def planned_changes(project: Project, new_runtime: str) -> tuple[FileChange, ...]:
    """The template and layer.toml edits of an upgrade to ``new_runtime`` (pure: writes nothing)."""
    changes = [upgrade_template(project.template.path, new_runtime)]
    changes += [
        upgrade_layer_toml(layer.path / "layer.toml", new_runtime) for layer in project.layers
    ]
    return tuple(changes)


def rehearsal_copy(root: Path, dest: Path, dist_name: str = "dist") -> Path:
    """Copy the project at ``root`` to ``dest`` without build output, VCS or caches."""
    skipped = shutil.ignore_patterns(*SKIPPED, dist_name)
    shutil.copytree(root, dest, ignore=skipped, symlinks=True)
    return dest


def seed_build(project: Project, new: Target, copy: Path) -> bool:
    """Start the rehearsal's ``dist/`` from the project's own build of ``new``, if it has one.

    Only a head start: every artifact's input hash is checked again by the build, so what the
    upgrade changed is rebuilt and what it did not is reused.
    """
    built = output_dir(project, new)
    if built == project.dist_dir or not (built / "manifest.json").is_file():
        return False
    for name in ("layers", "functions", "manifest.json"):
        source = built / name
        if source.is_dir():
            shutil.copytree(source, copy / project.config.dist_dir / name)
        elif source.is_file():
            shutil.copy2(source, copy / project.config.dist_dir / name)
    return True


def _files_under(root: Path, folders: Sequence[str]) -> dict[str, bytes]:
    found = {}
    for folder in folders:
        base = root / folder
        for path in sorted(base.rglob("*")) if base.is_dir() else ():
            rel = path.relative_to(root)
            if path.is_file() and not set(rel.parts) & set(SKIPPED):
                found[rel.as_posix()] = path.read_bytes()
    return found


def _differences(real: Path, copy: Path) -> dict[str, bytes | None]:
    """What the rehearsal changed in the lock and function folders (None: removed)."""
    before, after = _files_under(real, WRITTEN_DIRS), _files_under(copy, WRITTEN_DIRS)
    changed: dict[str, bytes | None] = {
        rel: data for rel, data in after.items() if before.get(rel) != data
    }
    changed.update({rel: None for rel in before if rel not in after})
    return changed


def write_back(root: Path, contents: Mapping[str, bytes | None]) -> tuple[Path, ...]:
    """Write ``contents`` (relative path -> bytes, None to remove) into ``root``, all or nothing.

    When any write fails, every file already written is restored to its bytes before (or
    removed if it did not exist) and UpgradeError is raised.
    """
    saved: dict[Path, bytes | None] = {}
    try:
        for rel, data in sorted(contents.items()):
            path = root / rel
            previous = path.read_bytes() if path.is_file() else None
            if data is None:
                path.unlink(missing_ok=True)
            else:  # written whole, then renamed into place: a failed write changes nothing
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.upgrade.tmp")
                try:
                    tmp.write_bytes(data)
                    tmp.replace(path)
                finally:
                    tmp.unlink(missing_ok=True)
            saved[path] = previous
    except OSError as exc:
        for path, old in saved.items():
            if old is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(old)
        raise UpgradeError(
            f"writing the upgraded files into {root} failed ({exc}); every file was restored "
            "to its text before the upgrade. Fix the cause (disk space, permissions) and run "
            "the upgrade again."
        ) from None
    return tuple(sorted(saved))


def _take_build(real: Path, copy: Path, dist_name: str) -> None:
    """Make the rehearsal's build (the new template target's) the project's ``dist/``."""
    dist = real / dist_name
    dist.mkdir(exist_ok=True)
    with build_lock(dist):
        for name in ("layers", "functions", "overlay", "manifest.json"):
            old = dist / name
            shutil.rmtree(old) if old.is_dir() else old.unlink(missing_ok=True)
            new = copy / dist_name / name
            if new.is_dir():
                shutil.copytree(new, old)
            elif new.is_file():
                shutil.copy2(new, old)


def _sizes(
    before: Mapping[str, ArtifactRecord], after: Mapping[str, ArtifactRecord]
) -> tuple[SizeChange, ...]:
    return tuple(
        SizeChange(
            path,
            before[path].unzipped_bytes if path in before else None,
            after[path].unzipped_bytes if path in after else None,
        )
        for path in sorted(set(before) | set(after))
    )


def upgrade_runtime(
    project: Project,
    new_runtime: str,
    *,
    dry_run: bool,
    steps: UpgradeSteps,
    progress: Callable[[str], None] = lambda _: None,
) -> UpgradeReport:
    """Upgrade ``project`` to ``new_runtime`` (see the module docstring); return the report.

    Raises UpgradeError (or the failing step's LayerkitError) with the project untouched.
    """
    old = project.deploy_target
    new = Target(new_runtime, old.architecture)
    if new == old:
        raise UpgradeError(
            f"{project.template.path.name} already uses {new_runtime}; name another runtime to "
            "upgrade to."
        )
    changes = planned_changes(project, new_runtime)
    notes = []
    for target in (old, new):
        support = host_support(target)
        if not support.runs_code:
            notes.append(support.notice() + "; its cold start is not measured")
    progress(f"building {old.key} (the current runtime) for the before figures")
    before = steps.build(project, old, retrain=False)
    before_init = steps.cold_starts(project, old, before.out_dir)
    with tempfile.TemporaryDirectory(prefix="layerkit-upgrade-") as tmp:
        copy = rehearsal_copy(project.root, Path(tmp) / project.root.name, project.config.dist_dir)
        if seed_build(project, new, copy):
            progress(f"reusing the {new.key} build in {output_dir(project, new)} where fresh")
        for change in changes:
            if change.changed:
                (copy / change.path.relative_to(project.root)).write_text(
                    change.after, encoding="utf-8"
                )
        try:
            rehearsed = load_project(copy)
            progress("re-locking every target in a scratch copy")
            steps.relock(rehearsed)
            progress(f"building {new.key}, retraining the model")
            after = steps.build(rehearsed, new, retrain=True)
            progress(f"validating {new.key}")
            steps.validate(rehearsed, new)
            progress(f"invoking every function on {new.key}")
            after_init = steps.cold_starts(rehearsed, new, after.out_dir)
        except LayerkitError as exc:
            raise UpgradeError(
                f"the upgrade to {new_runtime} failed, so no project file was changed: {exc}"
            ) from None
        moves = version_moves(locked_versions(project, old), locked_versions(rehearsed, new))
        written: tuple[Path, ...] = ()
        if not dry_run:
            contents: dict[str, bytes | None] = {
                change.path.relative_to(project.root).as_posix(): change.after.encode()
                for change in changes
                if change.changed
            }
            contents.update(_differences(project.root, copy))
            written = write_back(project.root, contents)
            _take_build(project.root, copy, project.config.dist_dir)
    cold = tuple(
        ColdStartChange(name, before_init.get(name), after_init.get(name))
        for name in sorted(set(before_init) | set(after_init))
    )
    return UpgradeReport(
        old,
        new,
        dry_run,
        changes,
        moves,
        _sizes(before.records, after.records),
        cold,
        written,
        tuple(notes),
    )


# ---------------------------------------------------------------- the real steps


@dataclass(frozen=True)
class ProjectSteps:
    """The real steps: uv locks, the build pipeline, the project's checks, the sandbox.

    ``build_all`` builds layers, model and functions (the repository's ``build.all``: the
    model's training is application code), ``validate_all`` is ``inv validate``.
    """

    build_all: Callable[..., BuildResult]
    validate_all: Callable[[Project, Target], None]
    progress: Callable[..., None] | None = None
    repeat: int = 3  # invocations per function: the fastest init is the cold start reported

    def build(self, project: Project, target: Target, *, retrain: bool) -> BuildResult:
        """Build every artifact of ``target`` (the model retrained if ``retrain``)."""
        options: dict[str, Any] = {"progress": self.progress} if self.progress else {}
        return self.build_all(project, target, retrain=retrain, **options)

    def relock(self, project: Project) -> None:
        """Resolve every target (keeping locked versions that fit), then write every lock."""
        results = []
        for target in project.targets:
            path = locker.lock_path(project.root, target)
            previous = locker.parse_lock(path.read_text(), path) if path.exists() else None
            results.append(locker.resolve(project, target, previous))
        for result in results:
            locker.write_lock(project, result)

    def validate(self, project: Project, target: Target) -> None:
        """Run the project's validation on ``target``."""
        self.validate_all(project, target)

    def cold_starts(self, project: Project, target: Target, out_dir: Path) -> Mapping[str, float]:
        """Invoke each function's ``events/basic.json``; fail unless each returns < 400.

        Each function runs ``repeat`` times in a fresh sandbox (each a cold start); the
        fastest handler init is reported, the least disturbed by other work on the machine.
        """
        from layerkit.check.invocation import invoke_function

        if not host_support(target).runs_code:
            return {}
        init: dict[str, float] = {}
        for fn in project.functions:
            if fn.target != target:
                continue
            event = json.loads((fn.path / "events" / "basic.json").read_text(encoding="utf-8"))
            for _ in range(max(1, self.repeat)):
                result = invoke_function(project, fn.name, event, out_dir)
                response = result.response if isinstance(result.response, dict) else {}
                status = response.get("statusCode", 200)
                if not result.ok or status >= 400:
                    raise UpgradeError(
                        f"function {fn.name} failed its basic event on {target.key}: "
                        f"{json.dumps(result.response)[:800]}\n{result.logs[-1500:]}"
                    )
                init[fn.name] = min(init.get(fn.name, result.init_ms), result.init_ms)
        return init
