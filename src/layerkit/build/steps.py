"""The steps of one artifact's build, in order, each returning its part of the manifest record.

A layer: install → slim → bytecode → import check → zip. A function package: install (its own
requirements) → copy → imports → bytecode → zip. Each step is a small object with a ``NAME``
(what progress and the timings show) and a ``PURPOSE``; its :meth:`run` works in the job's
staging folder through the job's tools and returns a :class:`StepOutcome`: a one-line detail for
progress and the manifest fields it found out. :mod:`layerkit.build.runner` runs them.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from layerkit.build.archive import write_zip
from layerkit.build.bytecode import (
    BytecodeResult,
    OptionalModule,
    cold_start,
    compile_tree,
    top_level_modules,
)
from layerkit.build.lock import LAMBDA_UNZIPPED_LIMIT, Lock, LockedPackage, Partition
from layerkit.build.manifest import ArtifactKind, ArtifactRecord, artifact_path, stat_fields
from layerkit.build.plan import Planned, function_files, overlay
from layerkit.build.slim import PassResult, slim_tree
from layerkit.build.targets import static_imported_files
from layerkit.build.tools import Tools
from layerkit.check.imports import (
    check_function_imports,
    package_modules,
    provider_maps,
    raise_for_problems,
    read_sources,
)
from layerkit.errors import BuildError
from layerkit.project.spec import Function, Layer, Project
from layerkit.report.data import distribution_sizes
from layerkit.report.table import plural
from layerkit.runtime.layercache import default_cache_dir, extracted
from layerkit.runtime.target import Target


@dataclass(frozen=True)
class StepOutcome:
    """What a step did: a line for progress, and its fields of the manifest record."""

    detail: str
    record: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """One artifact being built: what it is, where it is staged, and what the build shares.

    ``stage`` is a fresh folder: the zipped tree goes to ``stage/tree`` (a layer's under
    ``tree/python``), the layers it requires are unpacked under ``stage/required``.
    ``records`` are the manifest's records when the job started (a function reads its layers').
    A layer that starts while layers it requires are still being built is given
    ``await_required``: it blocks until they are built and returns the records then, and
    :attr:`search_path` calls it first (the steps before it run beside those builds).
    ``staged`` maps a required layer built in this same build to its staged tree (the exact
    content of its zip, kept until the build ends), which saves unzipping it.
    """

    planned: Planned
    project: Project
    target: Target
    lock: Lock
    partition: Partition
    out: Path
    stage: Path
    tools: Tools
    records: Mapping[str, ArtifactRecord] = field(default_factory=dict)
    await_required: Callable[[], Mapping[str, ArtifactRecord]] | None = None
    staged: Mapping[str, Path] = field(default_factory=dict)

    @property
    def tree(self) -> Path:
        """The folder whose content is zipped."""
        return self.stage / "tree"

    @property
    def site(self) -> Path:
        """Where distributions are installed: ``python/`` of a layer, the package's root."""
        return self.tree / "python" if self.planned.kind == ArtifactKind.LAYER else self.tree

    @property
    def layer(self) -> Layer:
        """The layer being built."""
        return self.project.layer(self.planned.name)

    @property
    def function(self) -> Function:
        """The function being packaged."""
        return self.project.function(self.planned.name)

    @functools.cached_property
    def packages(self) -> tuple[LockedPackage, ...]:
        """The locked distributions this artifact carries."""
        names = (
            self.partition.layers[self.planned.name]
            if self.planned.kind == ArtifactKind.LAYER
            else self.partition.functions[self.planned.name]
        )
        return tuple(self.lock.package(n) for n in names)

    @functools.cached_property
    def function_files(self) -> tuple[Path, ...]:
        """The function's own files that go into its package (read once per build)."""
        return function_files(self.function)

    @property
    def search_path(self) -> tuple[Path, ...]:
        """The layers this one requires, in the order Lambda stacks them.

        Each is the tree a required layer built in this build was zipped from (``staged``), or
        else the read-only tree of its built zip in the local layer cache (unzipped once per zip
        content, shared with sandbox runs: :func:`layerkit.runtime.layercache.extracted`).
        Found once per job. Not a ``cached_property``: before Python 3.12 those share one lock
        per class, so a job waiting here for a required layer would block that layer's own job.
        """
        found = self.__dict__.get("_search_path")
        if found is None:
            found = self._unpack_required()
            self.__dict__["_search_path"] = found  # one thread per job: no lock needed
        return found  # type: ignore[no-any-return]

    def _unpack_required(self) -> tuple[Path, ...]:
        records = self.await_required() if self.await_required else self.records
        found = []
        cache = default_cache_dir(self.project.root)
        for name in self.project.required_closure(self.planned.name):
            path = artifact_path(ArtifactKind.LAYER, name)
            staged = self.staged.get(path)
            if staged is not None and (staged / "python").is_dir():
                found.append(staged / "python")
                continue
            record = records.get(path)
            tree = extracted(self.out / path, cache, sha256=record.sha256 if record else None)
            found.append(tree / "python")
        return tuple(found)


class Step(Protocol):
    """One step of an artifact's build."""

    NAME: ClassVar[str]
    PURPOSE: ClassVar[str]

    def run(self, job: Job, so_far: Mapping[str, Any]) -> StepOutcome:
        """Do the step; ``so_far`` holds the record fields of the steps before it."""
        ...


# ---------------------------------------------------------------- a layer's steps


class Install:
    """Install the artifact's share of the lock."""

    NAME: ClassVar[str] = "install"
    PURPOSE: ClassVar[str] = "install its locked distributions for the target (uv, no deps)"

    def run(self, job: Job, so_far: Mapping[str, Any]) -> StepOutcome:
        """Install, or only create the folder when there is nothing to install."""
        job.site.mkdir(parents=True, exist_ok=True)
        if job.packages:
            job.tools.installer.install(job.packages, job.site, job.target)
        which = "function-only " if job.planned.kind == ArtifactKind.FUNCTION else ""
        return StepOutcome(
            plural(len(job.packages), f"{which}distribution"),
            {"distributions": {p.name: p.version for p in job.packages}},
        )


def _worth_saying(p: PassResult) -> bool:
    """Whether a pass's note belongs in the build output and the manifest (strip not done)."""
    return bool(p.unsafe) or p.note.startswith("skipped")


class Slim:
    """Remove what the layer never needs at run time."""

    NAME: ClassVar[str] = "slim"
    PURPOSE: ClassVar[str] = "remove tests, docs, wheel data, stale bytecode; strip extensions"

    def run(self, job: Job, so_far: Mapping[str, Any]) -> StepOutcome:
        """Slim the tree; record every pass and the top-level modules that remain."""
        slimmed = slim_tree(
            job.site, job.layer.slim, job.target, stripper=job.tools.stripper, memo=job.tools.memo
        )
        passes = tuple(
            {
                "name": p.name,
                "removed_files": p.removed_files,
                "removed_bytes": p.removed_bytes,
                "examples": list(p.examples),
                **({"note": p.note} if _worth_saying(p) else {}),
                **({"unsafe": list(p.unsafe)} if p.unsafe else {}),
            }
            for p in slimmed.passes
        )
        refuse_over_lambda_limit(job)
        said = "".join(f"; {p.name}: {p.note}" for p in slimmed.passes if _worth_saying(p))
        return StepOutcome(
            f"removed {plural(slimmed.removed_files, 'file')}, {slimmed.removed_bytes / 1e6:.1f} "
            f"MB in {plural(len(slimmed.passes), 'pass', 'passes')}{said}",
            {"slim": passes, "modules": top_level_modules(job.site)},
        )


def refuse_over_lambda_limit(job: Job) -> None:
    """Stop a layer whose installed, slimmed tree is already over Lambda's unzipped limit.

    Checked before compiling and zipping (both only add bytes), so a layer that cannot be
    deployed costs no more time; the paragraph names its biggest distributions.
    """
    sizes: dict[str, int] = {}
    total = 0
    for path in job.site.rglob("*"):
        if path.is_file() and not path.is_symlink():
            size = path.stat().st_size
            total += size
            top = path.relative_to(job.site).parts[0]
            sizes[top] = sizes.get(top, 0) + size
    if total <= LAMBDA_UNZIPPED_LIMIT:
        return
    biggest = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    named = ", ".join(f"{name} ({size / 1e6:,.1f} MB)" for name, size in biggest)
    raise BuildError(
        f"layer {job.planned.name} for {job.target.key} is {total:,} bytes once installed and "
        f"slimmed, over Lambda's {LAMBDA_UNZIPPED_LIMIT:,}-byte unzipped limit; stopped before "
        f"compiling and zipping. Biggest: {named}. Ways out: a smaller build from another index "
        "(a CPU-only index for machine-learning libraries), some distributions in another "
        "layer, or a container image (up to 10 GB)."
    )


def _bytecode_record(compiled: BytecodeResult) -> dict[str, Any]:
    return {
        "mode": compiled.mode,
        "compiled_files": compiled.compiled_files,
        "added_bytes": compiled.added_bytes,
        "invalidation": compiled.invalidation,
        "failed": [list(f) for f in compiled.failed],
        **_optional_record(compiled.optional),
    }


def _optional_record(optional: Sequence[OptionalModule]) -> dict[str, Any]:
    """The bytecode record's list of optional modules left out (nothing when there are none)."""
    if not optional:
        return {}
    return {"optional_modules": [[o.module, o.distribution, o.needs] for o in optional]}


def _modules_import(count: int) -> str:
    """``1 top-level module imports`` / ``3 top-level modules import``."""
    return f"{plural(count, 'top-level module')} import{'s' if count == 1 else ''}"


def _with_notes(detail: str, optional: Sequence[OptionalModule]) -> str:
    """A step's progress line, with a note for each optional module left out."""
    return "".join([detail, *(f"; note: {o.note()}" for o in optional)])


class Bytecode:
    """Compile with the target interpreter, in the layer's bytecode mode."""

    NAME: ClassVar[str] = "bytecode"
    PURPOSE: ClassVar[str] = "compile hash-based pycs with the target interpreter"

    def run(self, job: Job, so_far: Mapping[str, Any]) -> StepOutcome:
        """Compile; in ``imported`` mode, what importing every module and the smoke test loads.

        On a host that cannot run the target's code, what a cold start loads is found by
        static analysis instead (:func:`layerkit.build.targets.static_imported_files`).
        """
        layer, python, modules = job.layer, job.tools.python, so_far["modules"]
        # what a cold start loads is more than the top-level imports: run the smoke test too
        scripts = (layer.smoke_test,) if layer.smoke_test else ()
        static = None
        if not job.tools.runs_code and layer.bytecode == "imported":
            static = static_imported_files(job.site, modules, scripts)
        compiled = compile_tree(
            job.site,
            python,
            layer.bytecode,
            # only ``imported`` reads the required layers: the others compile beside them
            search_path=job.search_path if layer.bytecode == "imported" and static is None else (),
            entry_modules=modules,
            scripts=scripts,
            imported=static,
            memo=job.tools.memo,
        )
        record = _bytecode_record(compiled)
        if static is not None:
            record["found_by"] = "static analysis"
        return StepOutcome(
            _with_notes(
                f"{compiled.mode}: {plural(compiled.compiled_files, 'module')} with "
                f"{python.name} ({compiled.invalidation}), {compiled.added_bytes / 1e6:+.1f} MB",
                compiled.optional,
            ),
            {"bytecode": record},
        )


class ImportCheck:
    """Every top-level module imports in a fresh target interpreter, before anything is zipped."""

    NAME: ClassVar[str] = "import-check"
    PURPOSE: ClassVar[str] = "import every top-level module with only the required layers beside"

    def run(self, job: Job, so_far: Mapping[str, Any]) -> StepOutcome:
        """Import the modules, unless the bytecode step just did (``imported`` mode).

        Never on a host that cannot run the target's code: nothing foreign is run, and so no
        advice is drawn from a run.
        """
        modules, compiled = so_far["modules"], so_far["bytecode"]
        host = job.tools.host
        if host is not None and not host.runs_code:
            return StepOutcome(f"not run ({host.execution.value}: {host.host_machine} host)")
        if compiled["mode"] == "imported" and compiled["compiled_files"]:  # it probed them
            probed_ok = len(modules) - len(compiled.get("optional_modules", ()))
            return StepOutcome(f"{_modules_import(probed_ok)} (bytecode step's probe)")
        probed = cold_start(job.site, job.tools.python, modules, search_path=job.search_path)
        optional = _optional_record(probed.optional)
        return StepOutcome(
            _with_notes(_modules_import(len(modules) - len(probed.optional)), probed.optional),
            {"bytecode": {**compiled, **optional}} if optional else {},
        )


class Zip:
    """Write the deterministic zip into place and describe it."""

    NAME: ClassVar[str] = "zip"
    PURPOSE: ClassVar[str] = "write the reproducible zip and rename it into place"

    def run(self, job: Job, so_far: Mapping[str, Any]) -> StepOutcome:
        """Zip ``job.tree`` to the artifact's path."""
        sizes = (
            {"distribution_bytes": distribution_sizes(job.site)}
            if job.planned.kind == ArtifactKind.LAYER
            else {}
        )
        dest = job.out / job.planned.path
        info = write_zip(job.tree, dest, memo=job.tools.memo)
        return StepOutcome(
            job.planned.path,
            {
                **sizes,
                "sha256": info.sha256,
                "zipped_bytes": info.zipped_bytes,
                "unzipped_bytes": info.unzipped_bytes,
                "files": info.files,
                **stat_fields(dest),
            },
        )


# ---------------------------------------------------------------- a function's steps


class Copy:
    """Copy the function's own files (code, data) into the package."""

    NAME: ClassVar[str] = "copy"
    PURPOSE: ClassVar[str] = "copy the function's code and data (never tests, events, secrets)"

    def run(self, job: Job, so_far: Mapping[str, Any]) -> StepOutcome:
        """Copy the files :func:`~layerkit.build.plan.function_files` picks, then the target's.

        A target other than the template's adds its own data for the function (its model
        overlay, :mod:`layerkit.build.targets`).
        """
        fn, files = job.function, job.function_files
        own = overlay(job.project, job.target, fn.name)
        for dest, source in [*((job.tree / r, fn.path / r) for r in files),
                             *((job.tree / r, s) for r, s in own)]:  # fmt: skip
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.unlink(missing_ok=True)  # an installed file is a link into uv's cache
            shutil.copy2(source, dest)
        extra = f" and {len(own)} of {job.target.key}'s own ({', '.join(r for r, _ in own)})"
        return StepOutcome(plural(len(files), "file") + (extra if own else ""))


class Imports:
    """The static import check of the function's code against its layers and the runtime."""

    NAME: ClassVar[str] = "imports"
    PURPOSE: ClassVar[str] = "check that every import resolves on the function's runtime"

    def run(self, job: Job, so_far: Mapping[str, Any]) -> StepOutcome:
        """Fail when the function imports what neither it, its layers nor the runtime has."""
        fn, target = job.function, job.target
        layer_modules = {
            rec.name: rec.modules for rec in job.records.values() if rec.kind == ArtifactKind.LAYER
        }
        missing = [name for name in fn.layers if name not in layer_modules]
        if missing:
            raise BuildError(
                f"function {fn.name} attaches {', '.join(missing)}, "
                f"{'which is' if len(missing) == 1 else 'which are'} not built for {target.key} "
                "yet; run `inv build.all` (it builds the layers before the functions)."
            )
        files = job.function_files
        provided, elsewhere = provider_maps(
            fn.layers, layer_modules, top_level_modules(job.tree) if job.packages else ()
        )
        raise_for_problems(
            fn.name,
            check_function_imports(
                read_sources(fn.path, files),
                package_modules(files),
                provided,
                elsewhere,
                job.tools.python.stdlib_modules(),
                feature_version=target.python_version,
            ),
            fn.path.relative_to(job.project.root).as_posix(),
        )
        return StepOutcome("static check against its layers")


class FunctionBytecode:
    """Compile every module of the package with the target interpreter."""

    NAME: ClassVar[str] = "bytecode"
    PURPOSE: ClassVar[str] = "compile hash-based pycs of every module (/var/task)"

    def run(self, job: Job, so_far: Mapping[str, Any]) -> StepOutcome:
        """Compile the package for ``/var/task``."""
        compiled = compile_tree(
            job.tree, job.tools.python, "all", dest_dir="/var/task", memo=job.tools.memo
        )
        return StepOutcome(plural(compiled.compiled_files, "module"))


LAYER_STEPS: tuple[Step, ...] = (Install(), Slim(), Bytecode(), ImportCheck(), Zip())
FUNCTION_STEPS: tuple[Step, ...] = (Install(), Copy(), Imports(), FunctionBytecode(), Zip())


def steps_for(kind: ArtifactKind) -> tuple[Step, ...]:
    """The steps that build an artifact of ``kind``, in order."""
    return LAYER_STEPS if kind == ArtifactKind.LAYER else FUNCTION_STEPS


def base_record(job: Job) -> dict[str, Any]:
    """The record fields known before any step runs."""
    planned = job.planned
    fields: dict[str, Any] = {
        "kind": planned.kind,
        "name": planned.name,
        "target": job.target.key,
        "path": planned.path,
        "input_hash": planned.input_hash,
        "execution": job.tools.execution.value,
    }
    if planned.kind == ArtifactKind.LAYER:
        fields["budget"] = job.layer.budget
        fields["layers"] = job.project.required_closure(planned.name)
    else:
        fields["layers"] = job.function.layers
    return fields


def step_names(kind: ArtifactKind) -> Sequence[str]:
    """The NAMEs of ``kind``'s steps (the keys of its timings)."""
    return tuple(step.NAME for step in steps_for(kind))


def pipeline_order() -> tuple[str, ...]:
    """Every step name in the order a build runs them, layer and function steps merged.

    install, slim, copy, imports, bytecode, import-check, zip: the columns of every timings
    table, whatever order an artifact's record lists its steps in.
    """
    from layerkit.report.table import merged_order

    return merged_order(step_names(ArtifactKind.LAYER), step_names(ArtifactKind.FUNCTION))
