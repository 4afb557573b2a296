"""The build pipeline: lock slice -> install -> slim -> bytecode -> zip -> manifest.

Incremental: an artifact is rebuilt only when the content hash of its inputs (its lock slice,
its layer.toml and requirements, the layers it requires, its source files, the layerkit version
and the target) differs from the one recorded in the manifest, or its zip is missing or altered.

Safe: one build at a time per output folder (an advisory file lock, released by the OS even if
the process dies), work happens in a staging folder that is always removed, every zip is renamed
into place only when complete, and the manifest is rewritten after each artifact.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import shutil
import subprocess
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerkit import __version__
from layerkit.build import cache as build_cache
from layerkit.build.archive import write_zip
from layerkit.build.bytecode import compile_tree, imported_files, top_level_modules
from layerkit.build.install import install_packages
from layerkit.build.lock import Lock, LockedPackage, Partition, partition, read_lock
from layerkit.build.manifest import (
    ArtifactRecord,
    artifact_intact,
    artifact_path,
    read_manifest,
    write_manifest,
)
from layerkit.build.slim import slim_tree
from layerkit.build.targets import (
    buildable_functions,
    overlay_digest,
    overlay_dir,
    overlay_files,
    static_imported_files,
)
from layerkit.check.imports import (
    check_function_imports,
    package_modules,
    provider_maps,
    raise_for_problems,
    read_sources,
    stdlib_modules,
)
from layerkit.check.sizes import raise_for_layer_limits
from layerkit.errors import BuildError, BuildLockedError, SpecError
from layerkit.locking import exclusive
from layerkit.project.config import load_config
from layerkit.project.spec import Function, Layer, Project
from layerkit.report.data import distribution_sizes
from layerkit.report.table import mb
from layerkit.runtime.host import host_support, notice_once
from layerkit.runtime.sandbox import extract_zip
from layerkit.runtime.target import Target, find_interpreter

#: Bumped when what a build records or produces changes, so older artifacts count as stale.
BUILD_FORMAT = 4
DIST = "dist"  # the default output folder; a project's own is project.dist_dir
WORK = ".work"
LOCK_FILE = ".build.lock"


@dataclass(frozen=True)
class BuildEvent:
    """A progress event: which artifact, which step, and a short detail."""

    artifact: str  # "layer core-data-science" / "function predictions"
    step: str
    detail: str = ""


Progress = Callable[[BuildEvent], None]


def _no_progress(event: BuildEvent) -> None:
    """Discard progress events."""


@dataclass(frozen=True)
class Planned:
    """An artifact and whether it needs building."""

    kind: str
    name: str
    path: str
    input_hash: str
    state: str  # "fresh", "stale" (inputs changed or zip altered), "missing"
    record: ArtifactRecord | None

    @property
    def label(self) -> str:
        """``layer core-data-science``."""
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class BuildResult:
    """What a build did and what the output folder now holds."""

    out_dir: Path
    target: Target
    built: tuple[str, ...]  # artifact paths rebuilt
    records: Mapping[str, ArtifactRecord]  # every artifact in the manifest
    partition: Partition
    cached: tuple[str, ...] = ()  # artifact paths downloaded from the build cache instead


def output_dir(project: Project, target: Target) -> Path:
    """``dist/`` for the template's target (what SAM and deploy read), ``dist/<key>/`` else."""
    base = project.dist_dir
    return base if target == project.deploy_target else base / target.key


# ---------------------------------------------------------------- input hashing (pure)


def _digest(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _slice(lock: Lock, names: Sequence[str]) -> list[list[str]]:
    wanted = set(names)
    return [[p.name, p.version, p.sha256] for p in lock.packages if p.name in wanted]


@functools.lru_cache(maxsize=1)
def tool_versions() -> dict[str, str]:
    """Host tools whose version changes a layer's bytes: zlib (deflate) and strip."""
    strip = shutil.which("strip")
    version = "absent"
    if strip is not None:
        proc = subprocess.run([strip, "--version"], capture_output=True, text=True, check=False)
        version = (proc.stdout.splitlines() or ["unknown"])[0]
    return {"zlib": zlib.ZLIB_RUNTIME_VERSION, "strip": version}


def layer_hashes(project: Project, target: Target, lock: Lock, part: Partition) -> dict[str, str]:
    """The input hash of every layer (required layers' hashes feed their dependents')."""
    hashes: dict[str, str] = {}
    for layer in project.layers:
        hashes[layer.name] = _digest(
            {
                "layerkit": __version__,
                "format": BUILD_FORMAT,
                "tools": tool_versions(),
                "target": target.key,
                "config": layer.config_sha256,
                "slice": _slice(lock, part.layers[layer.name]),
                "requires": {r: hashes[r] for r in project.required_closure(layer.name)},
            }
        )
    return hashes


def function_files(fn: Function) -> tuple[Path, ...]:
    """The files of a function folder that go into its package, relative to the folder."""
    from layerkit.build.package import package_files, refuse_secrets

    files = package_files(fn.path)
    refuse_secrets(fn.path, files)
    return files


def function_hash(
    fn: Function,
    target: Target,
    lock: Lock,
    part: Partition,
    files: Sequence[Path],
    overlay: Sequence[tuple[str, Path]] = (),
) -> str:
    """The input hash of a function package: its files, its lock slice, what layers carry.

    Which distributions every layer carries counts (not only the attached layers: the import
    check names the layer that would provide a missing module), their versions do not: a new
    numpy in core-data-science changes nothing in a function's package. ``overlay`` is the
    target's data for the function (:mod:`layerkit.build.targets`).
    """
    extra = {"overlay": overlay_digest(tuple(overlay))} if overlay else {}
    return _digest(
        {
            **extra,
            "layerkit": __version__,
            "format": BUILD_FORMAT,
            "target": target.key,
            "files": [
                [f.as_posix(), hashlib.sha256((fn.path / f).read_bytes()).hexdigest()]
                for f in files
            ],
            "slice": _slice(lock, part.functions[fn.name]),
            "attached": list(fn.layers),
            "layers": {name: list(names) for name, names in sorted(part.layers.items())},
        }
    )


# ---------------------------------------------------------------- planning (what is fresh)


def plan(
    project: Project,
    target: Target,
    *,
    layers: Sequence[str] | None = None,
    functions: bool = True,
    lock: Lock | None = None,
) -> tuple[tuple[Planned, ...], Lock, Partition]:
    """Decide for each wanted artifact whether it is fresh, stale or missing."""
    if functions and target == project.deploy_target:
        for fn in project.functions:
            for name in fn.layers:
                if target not in project.layer(name).targets():
                    raise SpecError(
                        f"{project.config.template}: {fn.logical_id} runs on {target.key} and "
                        f"attaches {name}, but {project.config.layers_dir}/{name}/layer.toml "
                        f"does not build it for "
                        f"{target.key}; add the runtime there or change the function's Runtime."
                    )
    lock = lock or read_lock(project, target)
    part = partition(project, lock)
    out = output_dir(project, target)
    records = read_manifest(out)
    hashes = layer_hashes(project, target, lock, part)
    wanted: list[tuple[str, str, str]] = [
        ("layer", layer.name, hashes[layer.name])
        for layer in project.layers
        if (layers is None or layer.name in layers) and target in layer.targets()
    ]
    if functions:  # every target builds the functions whose layers it builds
        for fn in buildable_functions(project, target):
            overlay = _overlay(project, target, out, fn.name)
            wanted.append(
                (
                    "function",
                    fn.name,
                    function_hash(fn, target, lock, part, function_files(fn), overlay),
                )
            )
    planned = []
    for kind, name, digest in wanted:
        path = artifact_path(kind, name)
        record = records.get(path)
        if record is None or not (out / path).is_file():
            state = "missing"
        elif record.input_hash != digest or not artifact_intact(out, record):
            state = "stale"
        else:
            state = "fresh"
        planned.append(Planned(kind, name, path, digest, state, record))
    return tuple(planned), lock, part


def _overlay(
    project: Project, target: Target, out: Path, function: str
) -> tuple[tuple[str, Path], ...]:
    """The target's own data for a function (none for the template's target)."""
    if target == project.deploy_target:
        return ()
    return overlay_files(overlay_dir(out, function))


# ---------------------------------------------------------------- the build lock


@contextlib.contextmanager
def build_lock(out_dir: Path) -> Iterator[None]:
    """Hold the build lock of ``out_dir``, or raise BuildLockedError at once.

    Builds and cleans take the one lock of ``dist/`` whatever their target: ``dist/`` holds the
    other targets' folders, so a clean of it must not run beside any build.
    """

    def refuse(holder: str) -> BuildLockedError:
        return BuildLockedError(
            f"another layerkit build is running in {out_dir} ({holder}); wait for it to "
            "finish and run the command again. The lock is released automatically when "
            "that process ends."
        )

    with exclusive(out_dir / LOCK_FILE, refuse):
        yield


# ---------------------------------------------------------------- building one artifact


@dataclass(frozen=True)
class _Run:
    """What every artifact of one build shares."""

    project: Project
    target: Target
    lock: Lock
    part: Partition
    out: Path
    interpreter: Path
    progress: Progress


def _build_layer(run: _Run, layer: Layer, planned: Planned, work: Path) -> ArtifactRecord:
    site = work / "python"
    packages = [run.lock.package(n) for n in run.part.layers[layer.name]]
    run.progress(BuildEvent(planned.label, "install", f"{len(packages)} distributions"))
    install_packages(packages, site, run.target)
    slim_passes, bytecode, modules = _finish_tree(run, layer, planned.label, work)
    return _zip_and_record(
        run,
        planned,
        work,
        packages,
        distribution_bytes=distribution_sizes(site),
        budget=layer.budget,
        layers=run.project.required_closure(layer.name),
        modules=modules,
        slim=slim_passes,
        bytecode=bytecode,
    )


def _zip_and_record(
    run: _Run, planned: Planned, work: Path, packages: Sequence[LockedPackage], **details: Any
) -> ArtifactRecord:
    """Zip the staged tree into place and describe the result for the manifest."""
    run.progress(BuildEvent(planned.label, "zip", planned.path))
    info = write_zip(work, run.out / planned.path)
    return ArtifactRecord(
        kind=planned.kind,
        name=planned.name,
        target=run.target.key,
        path=planned.path,
        sha256=info.sha256,
        zipped_bytes=info.zipped_bytes,
        unzipped_bytes=info.unzipped_bytes,
        files=info.files,
        input_hash=planned.input_hash,
        distributions={p.name: p.version for p in packages},
        execution=host_support(run.target).execution.value,
        **details,
    )


def _finish_tree(
    run: _Run, layer: Layer, label: str, work: Path
) -> tuple[tuple[Mapping[str, object], ...], Mapping[str, object], tuple[str, ...]]:
    """Slim, compile and import-check a staged layer tree.

    Returns what slimming and compiling did (for the manifest) and the layer's top-level modules.
    """
    site = work / "python"
    progress, interpreter = run.progress, run.interpreter
    support = host_support(run.target, native_interpreter=interpreter)
    interpreter = support.interpreter or interpreter  # static only: the host's, to compile
    slimmed = slim_tree(site, layer.slim, run.target)
    progress(
        BuildEvent(
            label,
            "slim",
            f"removed {slimmed.removed_files} files, {slimmed.removed_bytes / 1e6:.1f} MB "
            f"in {len(slimmed.passes)} passes",
        )
    )
    search_path: list[Path] = []  # the layers this one requires, as Lambda stacks them
    for name in run.project.required_closure(layer.name):
        below = work / "required" / name
        extract_zip(run.out / artifact_path("layer", name), below)
        search_path.append(below / "python")
    modules = top_level_modules(site)
    scripts = (layer.smoke_test,) if layer.smoke_test else ()
    static = None  # the host cannot run the target: find what a cold start loads statically
    if not support.runs_code and layer.bytecode == "imported":
        static = static_imported_files(site, modules, scripts)
    compiled = compile_tree(
        site,
        interpreter,
        layer.bytecode,
        search_path=search_path,
        entry_modules=modules,
        # what a cold start loads is more than the top-level imports: run the smoke test too
        scripts=scripts,
        imported=static,
    )
    progress(
        BuildEvent(
            label,
            "bytecode",
            f"{compiled.mode}: {compiled.compiled_files} modules with {interpreter.name} "
            f"({compiled.invalidation}), {compiled.added_bytes / 1e6:+.1f} MB",
        )
    )
    # The quick check before anything is zipped: the slimmed, compiled tree still imports every
    # top-level module in a fresh target interpreter with only the required layers beside it.
    if support.runs_code:
        imported_files(site, interpreter, modules, search_path=search_path)
        checked = f"{len(modules)} top-level modules import"
    else:  # never run foreign code: no import check, and so no advice from one
        checked = f"not run ({support.execution.value}: {support.host_machine} host)"
    shutil.rmtree(work / "required", ignore_errors=True)
    progress(BuildEvent(label, "import-check", checked))
    passes = tuple(
        {
            "name": p.name,
            "removed_files": p.removed_files,
            "removed_bytes": p.removed_bytes,
            "examples": list(p.examples),
        }
        for p in slimmed.passes
    )
    bytecode = {
        "mode": compiled.mode,
        "compiled_files": compiled.compiled_files,
        "added_bytes": compiled.added_bytes,
        "invalidation": compiled.invalidation,
        "failed": [list(f) for f in compiled.failed],
        **({"found_by": "static analysis"} if static is not None else {}),
    }
    return passes, bytecode, modules


def _build_function(
    run: _Run,
    fn: Function,
    planned: Planned,
    work: Path,
    records: Mapping[str, ArtifactRecord],
) -> ArtifactRecord:
    label, progress = planned.label, run.progress
    packages = [run.lock.package(n) for n in run.part.functions[fn.name]]
    if packages:
        progress(BuildEvent(label, "install", f"{len(packages)} function-only distributions"))
        install_packages(packages, work, run.target)
    files = function_files(fn)
    progress(BuildEvent(label, "copy", f"{len(files)} files"))
    for rel in files:
        dest = work / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(fn.path / rel, dest)
    for rel_text, source in _overlay(run.project, run.target, run.out, fn.name):
        progress(BuildEvent(label, "copy", f"{rel_text} ({run.target.key}'s own)"))
        (work / rel_text).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, work / rel_text)
    progress(BuildEvent(label, "imports", "static check against its layers"))
    _check_imports(fn, run.target, files, work if packages else None, run.interpreter, records)
    compiled = compile_tree(work, run.interpreter, "all", dest_dir="/var/task")
    progress(BuildEvent(label, "bytecode", f"{compiled.compiled_files} modules"))
    return _zip_and_record(run, planned, work, packages, layers=fn.layers)


def _check_imports(
    fn: Function,
    target: Target,
    files: Sequence[Path],
    requirements_tree: Path | None,
    interpreter: Path,
    records: Mapping[str, ArtifactRecord],
) -> None:
    """Fail when the function imports something neither it, its layers nor the runtime has."""
    layer_modules = {}
    for rec in records.values():
        if rec.kind == "layer":
            layer_modules[rec.name] = rec.modules
    missing = [name for name in fn.layers if name not in layer_modules]
    if missing:
        raise BuildError(
            f"function {fn.name} attaches {', '.join(missing)}, "
            f"{'which is' if len(missing) == 1 else 'which are'} not built for {target.key} "
            "yet; run `inv build.all` (it builds the layers before the functions)."
        )
    provided, elsewhere = provider_maps(
        fn.layers,
        layer_modules,
        top_level_modules(requirements_tree) if requirements_tree else (),
    )
    raise_for_problems(
        fn.name,
        check_function_imports(
            read_sources(fn.path, files),
            package_modules(files),
            provided,
            elsewhere,
            stdlib_modules(interpreter),
            feature_version=target.python_version,
        ),
    )


# ---------------------------------------------------------------- the whole build


def build(
    project: Project,
    target: Target | None = None,
    *,
    layers: Sequence[str] | None = None,
    functions: bool = True,
    dependents: bool = True,
    force: bool = False,
    progress: Progress = _no_progress,
    cache: build_cache.CacheStore | None = None,
) -> BuildResult:
    """Build what is not fresh: every layer (or ``layers``) and every function.

    ``layers`` names layers to build; the layers they require are built first when stale (a
    layer is checked on top of them), and with ``dependents`` the layers that require them too.
    With a ``cache``, an artifact whose input hash has a verified entry there is downloaded
    instead of built, and what is built is uploaded (``force`` skips the download, not the
    upload); see :mod:`layerkit.build.cache`.
    """
    target = target or project.deploy_target
    if layers is not None:
        for name in layers:
            if target not in project.layer(name).targets():  # unknown names fail here too
                raise SpecError(
                    f"layer {name} is not built for {target.key}; its layer.toml lists "
                    f"{', '.join(t.key for t in project.layer(name).targets())}."
                )
        wanted = {*layers, *(r for name in layers for r in project.required_closure(name))}
        if dependents:
            wanted |= {d for name in layers for d in project.dependents(name)}
        layers = sorted(wanted)
    check_target(project, target)
    out = output_dir(project, target)
    with build_lock(project.dist_dir):
        _sweep(out)
        planned, lock, part = plan(project, target, layers=layers, functions=functions)
        records = dict(read_manifest(out))
        built: list[str] = []
        cached: list[str] = []
        todo = [p for p in planned if force or p.state != "fresh"]
        interpreter = find_interpreter(target, cwd=project.root) if todo else Path()
        run = _Run(project, target, lock, part, out, interpreter, progress)
        notice = notice_once(target) if todo else None  # said once per process
        if notice:
            progress(BuildEvent(f"target {target.key}", "host", notice))
        for item in planned:
            if item not in todo:
                progress(BuildEvent(item.label, "fresh", "up to date"))
        for item in todo:
            started = time.monotonic()
            work_root = out / WORK
            work_root.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=f"{item.kind}-{item.name}-", dir=work_root))
            try:
                records.pop(item.path, None)  # never describe a zip that is being replaced
                write_manifest(out, target.key, records)
                record, found = build_cache.through(  # the cache's one hook per artifact
                    cache,
                    out,
                    build_cache.CacheKey(
                        item.kind, item.name, item.path, target.key, item.input_hash
                    ),
                    functools.partial(_build_one, run, item, work, records),
                    functools.partial(_note, progress, item.label),
                    lookup=not force,
                )
            finally:
                shutil.rmtree(work, ignore_errors=True)
            records[item.path] = record
            write_manifest(out, target.key, records)
            (cached if found is build_cache.Lookup.HIT else built).append(item.path)
            progress(
                BuildEvent(
                    item.label,
                    "done",
                    f"{mb(record.unzipped_bytes)} MB unzipped, "
                    f"{mb(record.zipped_bytes)} MB zipped, {time.monotonic() - started:.1f}s",
                )
            )
        _drop_unknown(out, records, project)
        write_manifest(out, target.key, records)
    # a layer above Lambda's unzipped limit fails its build whatever its budget
    raise_for_layer_limits(records[p.path] for p in planned if p.path in records)
    return BuildResult(out, target, tuple(built), records, part, tuple(cached))


def _note(progress: Progress, label: str, step: str, detail: str) -> None:
    """Report a cache step of the artifact ``label`` as a progress event."""
    progress(BuildEvent(label, step, detail))


def _build_one(
    run: _Run, item: Planned, work: Path, records: Mapping[str, ArtifactRecord]
) -> ArtifactRecord:
    """Build one planned artifact in the staging folder ``work``."""
    if item.kind == "layer":
        return _build_layer(run, run.project.layer(item.name), item, work)
    return _build_function(run, run.project.function(item.name), item, work, records)


def _drop_unknown(out: Path, records: dict[str, ArtifactRecord], project: Project) -> None:
    """Forget manifest entries of layers/functions that no longer exist in the project."""
    known = {artifact_path("layer", x.name) for x in project.layers}
    known |= {artifact_path("function", f.name) for f in project.functions}
    for path in [p for p in records if p not in known]:
        del records[path]
        (out / path).unlink(missing_ok=True)


def _sweep(out: Path) -> None:
    """Remove what a killed build left behind (staging folders, half-written zips)."""
    shutil.rmtree(out / WORK, ignore_errors=True)
    for folder in (out / "layers", out / "functions"):
        for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
            tmp.unlink(missing_ok=True)


def check_target(project: Project, target: Target) -> None:
    """Refuse a target no layer is built for (there is no lock for it either)."""
    if target not in project.targets:
        raise SpecError(
            f"no layer is built for {target.key}: the targets are "
            f"{', '.join(t.key for t in project.targets)}. Add the runtime to the `runtimes` (an "
            "architecture to the `architectures`) of the layers in their layer.toml files and "
            "run `inv lock`."
        )


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
            records = dict(read_manifest(out))
            path = artifact_path("layer", layer)
            if records.pop(path, None) is not None:
                write_manifest(out, target.key, records)
            if (out / path).exists():
                (out / path).unlink()
                removed.append(out / path)
    return tuple(removed)


def require_fresh(project: Project, target: Target | None = None) -> BuildResult:
    """The current build, or BuildError naming what is missing or stale (for deploy/validate)."""
    target = target or project.deploy_target
    planned, _, part = plan(project, target)
    bad = [p for p in planned if p.state != "fresh"]
    if bad:
        items = ", ".join(f"{p.path} ({p.state})" for p in bad)
        raise BuildError(
            f"the build in {output_dir(project, target)} is not current: {items}. "
            "Run `inv build.all` first."
        )
    out = output_dir(project, target)
    records = {p.path: p.record for p in planned if p.record is not None}
    return BuildResult(out, target, (), records, part)
