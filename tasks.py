"""Invoke tasks: thin wrappers over the layerkit library (`inv --list` shows them all).

Every task loads the project, calls one library function, and prints what it returns. A
LayerkitError becomes a one-paragraph message and exit code 1, never a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke import Collection, Context, Exit, task

from layerkit import build as builder
from layerkit import lock as locker
from layerkit.errors import LayerkitError
from layerkit.spec import Project, load_project
from layerkit.table import format_table, mb
from layerkit.target import Target

ROOT = Path(__file__).resolve().parent


def _friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn LayerkitError into invoke's Exit (message, code 1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LayerkitError as exc:
            raise Exit(f"error: {exc}", code=1) from None

    return wrapper


def _project() -> Project:
    return load_project(ROOT)


def _target(project: Project, runtime: str | None) -> Target:
    if runtime is None:
        return project.deploy_target
    return Target(runtime, project.deploy_target.architecture)


def _progress(event: builder.BuildEvent) -> None:
    print(f"[{event.artifact}] {event.step}: {event.detail}", flush=True)


def _summary(result: builder.BuildResult) -> str:
    rows = []
    for path, rec in sorted(result.records.items()):
        over = rec.budget is not None and rec.unzipped_bytes > rec.budget
        status = ("OVER BUDGET" if over else "ok") + (" (built)" if path in result.built else "")
        rows.append(
            [path, mb(rec.unzipped_bytes), mb(rec.zipped_bytes), rec.files, mb(rec.budget), status]
        )
    headers = ["artifact", "unzipped MB", "zipped MB", "files", "budget MB", "status"]
    return f"{result.out_dir} ({result.target.key})\n" + format_table(headers, rows)


@task(
    name="all",
    default=True,
    help={
        "runtime": "build for this runtime instead of the template's",
        "force": "rebuild even fresh artifacts",
    },
)
@_friendly
def all_(c: Context, runtime: str | None = None, force: bool = False) -> None:
    """Build every layer and function package that is not fresh (dist/)."""
    project = _project()
    result = builder.build(project, _target(project, runtime), force=force, progress=_progress)
    print(_summary(result))


@task(name="layer", help={"name": "the layer folder name", "runtime": "target runtime"})
@_friendly
def layer(c: Context, name: str, runtime: str | None = None, force: bool = False) -> None:
    """Build one layer (and rebuild the layers that require it, if stale)."""
    project = _project()
    result = builder.build(
        project,
        _target(project, runtime),
        layers=[name],
        functions=False,
        force=force,
        progress=_progress,
    )
    print(_summary(result))


@task(name="functions")
@_friendly
def functions(c: Context, force: bool = False) -> None:
    """Build the function packages (app code and function-only dependencies)."""
    project = _project()
    result = builder.build(project, layers=[], force=force, progress=_progress)
    print(_summary(result))


@task(name="lock", help={"upgrade": "re-resolve every version instead of keeping locked ones"})
@_friendly
def lock(c: Context, upgrade: bool = False) -> None:
    """Resolve all requirements once per target with uv and write locks/<target>.toml."""
    project = _project()
    for target in project.targets:
        path = locker.lock_path(project.root, target)
        previous = None
        if not upgrade and path.exists():
            previous = locker.parse_lock(path.read_text(), path)
        result = locker.resolve(project, target, previous)
        locker.write_lock(project, result)
        shared = locker.partition(project, result).shared()
        print(f"{path.relative_to(project.root)}: {len(result.packages)} distributions")
        for name, owners in shared.items():
            print(f"  note: {name} is carried by {', '.join(owners)} (independent layers)")


@task(name="status", help={"runtime": "show this runtime instead of the template's"})
@_friendly
def status(c: Context, runtime: str | None = None) -> None:
    """Show what is built, whether it is fresh or stale, and its sizes."""
    project = _project()
    target = _target(project, runtime)
    planned, _, _ = builder.plan(project, target)
    rows = [
        [
            p.path,
            p.state,
            mb(p.record.unzipped_bytes if p.record else None),
            mb(p.record.zipped_bytes if p.record else None),
        ]
        for p in planned
    ]
    print(f"{builder.output_dir(project, target)} ({target.key})")
    print(format_table(["artifact", "state", "unzipped MB", "zipped MB"], rows))


@task(name="clean", help={"layer": "remove only this layer's zips (every target)"})
@_friendly
def clean(c: Context, layer: str | None = None) -> None:
    """Remove build output: all of dist/, or one layer."""
    removed = builder.clean(_project(), layer)
    print("removed: " + (", ".join(str(p) for p in removed) or "nothing"))


build_ns = Collection("build", all_, layer, functions)
ns = Collection(build_ns, lock, status, clean)
