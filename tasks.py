"""Invoke tasks: thin wrappers over the layerkit library (`inv --list` shows them all).

Every task loads the project, calls one library function, and prints what it returns. A
LayerkitError becomes a one-paragraph message and exit code 1, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from invoke import Collection, Context, Exit, task

from layerkit import training
from layerkit.build import lock as locker
from layerkit.build import pipeline as builder
from layerkit.build.manifest import read_manifest
from layerkit.check.layer import LayerValidation, format_validation, validate_built_layer
from layerkit.check.sizes import function_totals, size_findings, worst_severity
from layerkit.check.template import check_template, runtime_problems
from layerkit.deploy import deployer, stagelock
from layerkit.deploy import releases as release_log
from layerkit.deploy.clients import clients_for
from layerkit.deploy.executor import StepEvent, StepPhase
from layerkit.deploy.localstage import STATE_DIR, local_stage
from layerkit.errors import DeployError, DeployInterrupted, LayerkitError, LockError
from layerkit.project.spec import Project, load_project
from layerkit.project.stages import get_stage
from layerkit.report.data import render_table, write_report
from layerkit.report.table import format_table, mb
from layerkit.runtime.sandbox import extract_zip, invoke_function
from layerkit.runtime.target import Target, find_interpreter

ROOT = Path(__file__).resolve().parent


def _friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn LayerkitError into invoke's Exit (message, code 1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DeployInterrupted as exc:  # undone already; say what was being done
            raise Exit(f"interrupted: {exc}", code=exc.exit_code) from None
        except LayerkitError as exc:
            raise Exit(f"error: {exc}", code=1) from None
        except KeyboardInterrupt:
            raise Exit(
                "interrupted: nothing half-written was kept (a build keeps only complete zips "
                "and manifest entries; a deploy rolls back what it changed).",
                code=130,
            ) from None
        except BrokenPipeError:  # `inv status | head`: the reader went away; nothing to say
            sys.stderr.close()
            raise Exit(code=0) from None

    return wrapper


def _project() -> Project:
    return load_project(ROOT)


def _target(project: Project, runtime: str | None) -> Target:
    if runtime is None:
        return project.deploy_target
    target = Target(runtime, project.deploy_target.architecture)
    builder.check_target(project, target)
    return target


def _lifecycle_warnings(project: Project) -> None:
    for problem in runtime_problems(project, date.today()):
        print(f"{problem.severity}: {problem.message}")


def _progress(event: builder.BuildEvent) -> None:
    print(f"[{event.artifact}] {event.step}: {event.detail}", flush=True)


def _summary(project: Project, result: builder.BuildResult) -> str:
    findings = worst_severity(size_findings(project, result.records))
    status_of = {"error": "OVER BUDGET", "warning": "over budget (accepted)", "info": "ok (S3)"}
    rows = []
    for path, rec in sorted(result.records.items()):
        status = status_of.get(findings.get(path, ""), "ok")
        status += " (built)" if path in result.built else ""
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
    _lifecycle_warnings(project)
    result = builder.build(project, _target(project, runtime), force=force, progress=_progress)
    print(_summary(project, result))


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
    print(_summary(project, result))


@task(name="functions")
@_friendly
def functions(c: Context, force: bool = False) -> None:
    """Build the function packages (app code and function-only dependencies)."""
    project = _project()
    result = builder.build(project, layers=[], force=force, progress=_progress)
    print(_summary(project, result))


@task(name="lock", help={"upgrade": "re-resolve every version instead of keeping locked ones"})
@_friendly
def lock(c: Context, upgrade: bool = False) -> None:
    """Resolve all requirements once per target with uv and write locks/<target>.toml."""
    project = _project()
    results = []  # every target resolves before any lock is written: all or nothing
    for target in project.targets:
        path = locker.lock_path(project.root, target)
        previous = None
        if not upgrade and path.exists():
            previous = locker.parse_lock(path.read_text(), path)
        print(f"resolving {target.key} ...", flush=True)
        results.append(locker.resolve(project, target, previous))
    for result in results:
        path = locker.write_lock(project, result)
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
    out = builder.output_dir(project, target)
    note = ""
    try:
        states = [(p.path, p.state, p.record) for p in builder.plan(project, target)[0]]
    except LockError as exc:  # what is on disk is still worth showing
        states = [(path, "unknown", rec) for path, rec in sorted(read_manifest(out).items())]
        note = f"note: freshness unknown: {exc}"
    rows = [
        [
            path,
            state,
            mb(rec.unzipped_bytes if rec else None),
            mb(rec.zipped_bytes if rec else None),
        ]
        for path, state, rec in states
    ]
    print(f"{out} ({target.key})")
    print(format_table(["artifact", "state", "unzipped MB", "zipped MB"], rows))
    if note:
        print(note)


@task(name="clean", help={"layer": "remove only this layer's zips (every target)"})
@_friendly
def clean(c: Context, layer: str | None = None) -> None:
    """Remove build output: all of dist/, or one layer."""
    # removing everything needs no valid project: it must work when the project is broken
    removed = builder.clean_all(ROOT) if layer is None else builder.clean(_project(), layer)
    print("removed: " + (", ".join(str(p) for p in removed) or "nothing"))


def _validate_layer(project: Project, name: str, target: Target) -> LayerValidation:
    builder.build(
        project,
        target,
        layers=[name],
        functions=False,
        dependents=False,
        progress=_progress,
    )
    result = validate_built_layer(ROOT, name, target.runtime, architecture=target.architecture)
    print(format_validation(result))
    return result


@task(name="layer", help={"name": "the layer folder name", "runtime": "target runtime"})
@_friendly
def validate_layer(c: Context, name: str, runtime: str | None = None) -> None:
    """Build (if stale) and prove one layer on its runtime: imports, smoke test, ELF/glibc."""
    project = _project()
    target = _target(project, runtime)
    if not _validate_layer(project, name, target).ok:
        raise Exit(f"error: layer {name} failed validation on {target.key}", code=1)


@task(name="all", default=True, help={"runtime": "target runtime (default: the template's)"})
@_friendly
def validate_all(c: Context, runtime: str | None = None) -> None:
    """Check sizes and Lambda limits, the template, and every layer on its runtime."""
    project = _project()
    target = _target(project, runtime)
    result = builder.build(project, target, progress=_progress)
    findings = size_findings(project, result.records)
    rows = [[f.severity, f.artifact, f.message] for f in findings]
    totals = function_totals(project, result.records)
    print(
        format_table(
            ["function", "package MB", "layers MB", "total MB", "limit MB", "headroom MB"],
            [
                [
                    t.function,
                    mb(t.code_bytes),
                    mb(sum(t.layer_bytes.values())),
                    mb(t.total),
                    mb(t.total + t.headroom),
                    mb(t.headroom),
                ]
                for t in totals
            ],
        )
    )
    for severity, artifact, message in rows:  # sentences, not a table: they are long
        print(f"{severity}: {artifact}: {message}")
    template = check_template(project)
    for problem in template:  # includes the runtime lifecycle warning
        print(f"template {problem}")
    failed = [
        layer.name
        for layer in project.layers
        if target in layer.targets() and not _validate_layer(project, layer.name, target).ok
    ]
    errors = [f for f in findings if f.severity == "error"]
    errors += [p for p in template if p.severity == "error"]  # type: ignore[misc]
    if errors or failed:
        raise Exit(
            f"error: validation failed: {len(errors)} size/template error(s)"
            + (f"; layers failing on {target.key}: {', '.join(failed)}" if failed else ""),
            code=1,
        )
    print("validation passed")


@task(
    name="invoke",
    help={
        "function": "folder name or logical id; with --stage also FUNCTION:ALIAS or :VERSION",
        "event": "event JSON (default events/basic.json)",
        "stage": "invoke what this stage runs (local: the deployed zips, run for real)",
    },
)
@_friendly
def invoke_(c: Context, function: str, event: str | None = None, stage: str | None = None) -> None:
    """Run a built function in the local Lambda sandbox; print logs, result and REPORT line."""
    project = _project()
    fn = project.function(function.partition(":")[0])
    path = Path(event) if event else fn.path / "events" / "basic.json"
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Exit(f"error: cannot read the event {path}: {exc}", code=1) from None
    if stage is not None:
        with _stage_clients(stage) as (st, clients):
            ran = deployer.invoke_on_stage(clients, st, function, payload, project)
        print(ran.logs, end="")
        print(json.dumps(ran.payload, indent=2))
        if not ran.ok:
            raise Exit(f"error: {ran.function_name}:{ran.version} failed: {ran.error}", code=1)
        return
    out = builder.build(project, progress=_progress).out_dir
    result = invoke_function(project, fn.name, payload, out)
    print(result.logs, end="")
    print(json.dumps(result.response, indent=2))
    print(result.report_line())
    if not result.ok:
        raise Exit(code=1)


def _git_commit() -> str | None:
    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return proc.stdout.strip()

    commit = git("rev-parse", "--short=12", "HEAD")
    if not commit:
        return None
    return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


@contextlib.contextmanager
def _stage_clients(name: str) -> Iterator[tuple[Any, Any]]:
    """The stage and its clients; the local stage runs an embedded moto server meanwhile."""
    stage = get_stage(ROOT, name)
    if stage.local:
        with local_stage(stage, ROOT / STATE_DIR) as local:
            print(
                f"local stage: moto on {local.endpoint}, state in {STATE_DIR} "
                f"({local.replayed} requests replayed; delete the folder to start afresh)"
            )
            for note in local.notes:
                print(f"note: {note}")
            yield stage, local.clients
    else:
        yield stage, clients_for(stage)


def _refuse_invalid(project: Project, result: builder.BuildResult) -> None:
    """Refuse to deploy a build that fails the size or template checks."""
    errors = [
        f"{f.artifact}: {f.message}"
        for f in size_findings(project, result.records)
        if f.severity == "error"
    ]
    errors += [p.message for p in check_template(project) if p.severity == "error"]
    if errors:
        raise DeployError(
            "the build fails validation, so nothing was deployed: "
            + "; ".join(errors)
            + ". Fix these (see `inv validate`) and deploy again."
        )


@task(
    help={
        "stage": "a stage from stages.toml (local: an embedded moto server, no credentials)",
        "dry_run": "print the plan, change nothing",
        "allow_deprecated_runtime": "deploy a runtime AWS blocks (real AWS only)",
        "force_unlock": "remove a stale deploy lock of the stage, then stop",
    }
)
@_friendly
def deploy(
    c: Context,
    stage: str = "local",
    dry_run: bool = False,
    allow_deprecated_runtime: bool = False,
    force_unlock: bool = False,
) -> None:
    """Deploy the current build (dist/) to a stage; roll back on any failure."""
    project = _project()
    if not force_unlock:  # refuse a stale or invalid build before starting anything
        fresh = builder.require_fresh(project)
        _refuse_invalid(project, fresh)
        desired = deployer.desired_state(project, fresh.records, fresh.out_dir, _git_commit())
    with _stage_clients(stage) as (st, clients):
        if force_unlock:
            held = stagelock.force_unlock(clients.s3, st)
            print(f"removed the lock of {held.owner} since {held.since}" if held else "no lock")
            return
        if dry_run:
            print(f"dry run: the plan for stage {st.name}; nothing is changed")
        out = deployer.deploy(
            desired,
            clients,
            st,
            dry_run=dry_run,
            allow_deprecated_runtime=allow_deprecated_runtime,
            progress=None if dry_run else _deploy_progress,
        )
        for warning in out.warnings:
            print(f"warning: {warning}")
        if dry_run or not out.steps:
            print(
                "\n".join(s.describe() for s in out.steps) or "nothing to do: the stage is current"
            )
        if dry_run and out.steps:
            print(f"dry run: {len(out.steps)} steps planned, nothing was changed")
        if out.result and out.result.release:
            for fn in out.result.release.functions:
                print(
                    f"{fn.function_name}:{st.alias} -> {fn.version}  layers: {', '.join(fn.layers)}"
                )
            print(f"release {out.result.release.release_id} recorded")


def _deploy_progress(event: StepEvent) -> None:
    if event.phase is not StepPhase.DONE:
        print(event.line(), flush=True)


@task(help={"stage": "a stage from stages.toml"})
@_friendly
def unlock(c: Context, stage: str = "local") -> None:
    """Remove a stage's deploy lock left by a killed deploy or rollback."""
    with _stage_clients(stage) as (st, clients):
        held = deployer.unlock(clients, st)
        print(f"removed the lock of {held.owner} since {held.since}" if held else "no lock")


@task(help={"stage": "a stage from stages.toml", "release": "release id (default: the previous)"})
@_friendly
def rollback(c: Context, stage: str = "local", release: str | None = None) -> None:
    """Move a stage's aliases (and $LATEST) back to a recorded release."""
    with _stage_clients(stage) as (st, clients):
        out = deployer.rollback(clients, st, release, commit=_git_commit())
        if out.release is None:
            print(f"stage {st.name} already runs release {out.target.release_id}: nothing to do")
            return
        print("\n".join(out.restored))
        if out.skipped:
            print(f"not in release {out.target.release_id}, left as is: {', '.join(out.skipped)}")
        print(
            f"stage {st.name} runs release {out.target.release_id} "
            f"(recorded as {out.release.release_id})"
        )


@task(help={"stage": "a stage from stages.toml", "limit": "show only the newest N"})
@_friendly
def releases(c: Context, stage: str = "local", limit: int = 20) -> None:
    """List the releases recorded for a stage, oldest first."""
    with _stage_clients(stage) as (st, clients):
        for r in release_log.list_releases(clients.s3, st, limit=limit):
            note = f" -> {r.rolled_back_to}" if r.rolled_back_to else ""
            versions = ", ".join(f"{f.function_name}:{f.version}" for f in r.functions)
            print(f"{r.release_id}  {r.kind}{note}  commit {r.commit or '-'}  {versions}")


@task(name="model", help={"runtime": "train for this runtime instead of the template's"})
@_friendly
def model(c: Context, runtime: str | None = None) -> None:
    """Retrain the Predictions model under the target runtime with the built layers."""
    project = _project()
    target = _target(project, runtime)
    result = builder.build(project, target, functions=False, progress=_progress)
    fn = project.function(training.PREDICTIONS)
    out = (
        fn.path / training.MODEL_DIR
        if target == project.deploy_target
        else result.out_dir / "models" / training.PREDICTIONS
    )
    with tempfile.TemporaryDirectory() as tmp:
        dirs = []
        for name in fn.layers:
            extract_zip(result.out_dir / "layers" / f"{name}.zip", Path(tmp) / name)
            dirs.append(Path(tmp) / name)
        path = training.train_model(project, out, find_interpreter(target), dirs)
    print(f"wrote {path}")


@task(name="report", help={"runtime": "report this runtime's build instead of the template's"})
@_friendly
def report(c: Context, runtime: str | None = None) -> None:
    """Write dist/report.json and dist/report.html (sizes, passes, budgets) and print a table."""
    project = _project()
    out = builder.output_dir(project, _target(project, runtime))
    manifest_path = out / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Exit(f"error: {manifest_path} does not exist; run `inv build.all` first.") from None
    json_path, html_path = write_report(manifest, project, out)
    print(render_table(manifest, project))
    print(f"wrote {json_path} and {html_path}")


build_ns = Collection("build", all_, layer, functions, model)
validate_ns = Collection("validate", validate_all, validate_layer)
ns = Collection(
    build_ns, validate_ns, invoke_, lock, status, clean, report, deploy, rollback, releases, unlock
)
