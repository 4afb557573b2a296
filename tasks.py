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
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from invoke import Collection, Context, Exit, task

from layerkit import training
from layerkit.build import cache as build_cache
from layerkit.build import lock as locker
from layerkit.build import pipeline as builder
from layerkit.build.manifest import read_manifest
from layerkit.check.layer import LayerValidation, format_validation, validate_built_layer
from layerkit.check.sizes import function_totals, size_findings, worst_severity
from layerkit.check.template import check_template, runtime_problems
from layerkit.deploy import deployer, stagelock
from layerkit.deploy import releases as release_log
from layerkit.deploy.clients import clients_for
from layerkit.deploy.localstage import STATE_DIR, local_stage
from layerkit.deploy.package import package as package_stage
from layerkit.errors import CheckError, DeployError, LayerkitError, LockError
from layerkit.project.spec import Project, load_project
from layerkit.project.stages import get_stage
from layerkit.report.data import render_table, write_report
from layerkit.report.table import format_table, mb
from layerkit.runtime.host import notice_once
from layerkit.runtime.sandbox import invoke_function
from layerkit.runtime.target import Target
from layerkit.upgrade import ProjectSteps, upgrade_runtime

ROOT = Path(__file__).resolve().parent


def _friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn LayerkitError into invoke's Exit (message, code 1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
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


ARCH_HELP = "target architecture: x86_64 or arm64 (default: the template's)"


def _target(project: Project, runtime: str | None, arch: str | None = None) -> Target:
    if runtime is None and arch is None:
        return project.deploy_target
    target = Target(
        runtime or project.deploy_target.runtime, arch or project.deploy_target.architecture
    )
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
        status += " (from cache)" if path in result.cached else ""
        rows.append(
            [path, mb(rec.unzipped_bytes), mb(rec.zipped_bytes), rec.files, mb(rec.budget), status]
        )
    headers = ["artifact", "unzipped MB", "zipped MB", "files", "budget MB", "status"]
    return f"{result.out_dir} ({result.target.key})\n" + format_table(headers, rows)


def _cache(
    project: Project, option: str | None, announce: bool = True
) -> build_cache.CacheStore | None:
    """The shared build cache from --cache, LAYERKIT_CACHE or [tool.layerkit] cache."""
    url, source = build_cache.cache_url(project.root, option)
    if url is None:
        return None
    if announce:
        print(f"build cache: {url} (from {source})")
    return build_cache.open_store(url, source)


@task(
    name="all",
    default=True,
    help={
        "runtime": "build for this runtime instead of the template's",
        "arch": ARCH_HELP,
        "force": "rebuild even fresh artifacts (and do not download them from the cache)",
        "cache": "shared build cache: s3://BUCKET/PREFIX, file:///path, or none "
        "(default: LAYERKIT_CACHE, else [tool.layerkit] cache in pyproject.toml)",
    },
)
@_friendly
def all_(
    c: Context,
    runtime: str | None = None,
    arch: str | None = None,
    force: bool = False,
    cache: str | None = None,
) -> None:
    """Build every layer, the model and every function package that is not fresh (dist/)."""
    project = _project()
    _lifecycle_warnings(project)
    result = training.build_with_model(
        project,
        _target(project, runtime, arch),
        force=force,
        progress=_progress,
        cache=_cache(project, cache),
    )
    print(_summary(project, result))


@task(
    name="layer",
    help={"name": "the layer folder name", "runtime": "target runtime", "arch": ARCH_HELP},
)
@_friendly
def layer(
    c: Context, name: str, runtime: str | None = None, arch: str | None = None, force: bool = False
) -> None:
    """Build one layer (and rebuild the layers that require it, if stale)."""
    project = _project()
    result = builder.build(
        project,
        _target(project, runtime, arch),
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


@task(
    name="status",
    help={"runtime": "show this runtime instead of the template's", "arch": ARCH_HELP},
)
@_friendly
def status(c: Context, runtime: str | None = None, arch: str | None = None) -> None:
    """Show what is built, whether it is fresh or stale, and its sizes."""
    project = _project()
    target = _target(project, runtime, arch)
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


def _host_notice(target: Target) -> None:
    """Say once when this host cannot run (or only emulates) the target's code."""
    notice = notice_once(target)
    if notice:
        print(f"note: {notice}")


def _validate_layer(project: Project, name: str, target: Target) -> LayerValidation:
    builder.build(
        project,
        target,
        layers=[name],
        functions=False,
        dependents=False,
        progress=_progress,
        cache=_cache(project, None, announce=False),  # LAYERKIT_CACHE / [tool.layerkit] in CI
    )
    result = validate_built_layer(
        project.root, name, target.runtime, architecture=target.architecture
    )
    print(format_validation(result))
    return result


@task(
    name="layer",
    help={"name": "the layer folder name", "runtime": "target runtime", "arch": ARCH_HELP},
)
@_friendly
def validate_layer(
    c: Context, name: str, runtime: str | None = None, arch: str | None = None
) -> None:
    """Build (if stale) and prove one layer on its runtime: imports, smoke test, ELF/glibc."""
    project = _project()
    target = _target(project, runtime, arch)
    _host_notice(target)
    if not _validate_layer(project, name, target).ok:
        raise Exit(f"error: layer {name} failed validation on {target.key}", code=1)


@task(
    name="all",
    default=True,
    help={"runtime": "target runtime (default: the template's)", "arch": ARCH_HELP},
)
@_friendly
def validate_all(c: Context, runtime: str | None = None, arch: str | None = None) -> None:
    """Check sizes and Lambda limits, the template, and every layer on its runtime."""
    project = _project()
    target = _target(project, runtime, arch)
    _host_notice(target)
    _validate_project(project, target)
    print("validation passed")


def _validate_project(project: Project, target: Target) -> None:
    """Build (if stale) and validate the project on ``target``; CheckError when it fails."""
    result = training.build_with_model(project, target, progress=_progress)
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
        raise CheckError(
            f"validation failed: {len(errors)} size/template error(s)"
            + (f"; layers failing on {target.key}: {', '.join(failed)}" if failed else "")
        )


@task(
    name="invoke",
    help={
        "function": "folder name or logical id",
        "event": "event JSON (default events/basic.json)",
    },
)
@_friendly
def invoke_(c: Context, function: str, event: str | None = None) -> None:
    """Run a built function in the local Lambda sandbox; print logs, result and REPORT line."""
    project = _project()
    fn = project.function(function)
    path = Path(event) if event else fn.path / "events" / "basic.json"
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Exit(f"error: cannot read the event {path}: {exc}", code=1) from None
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
        )
        for warning in out.warnings:
            print(f"warning: {warning}")
        print("\n".join(s.describe() for s in out.steps) or "nothing to do: the stage is current")
        if dry_run and out.steps:
            print(f"dry run: {len(out.steps)} steps planned, nothing was changed")
        if out.result and out.result.release:
            for fn in out.result.release.functions:
                print(
                    f"{fn.function_name}:{st.alias} -> {fn.version}  layers: {', '.join(fn.layers)}"
                )
            print(f"release {out.result.release.release_id} recorded")


@task(
    name="package",
    help={"stage": "a stage from stages.toml: its bucket receives the zips"},
)
@_friendly
def package_(c: Context, stage: str = "local") -> None:
    """Upload the current build to a stage's bucket; write dist/template.packaged.yaml for SAM."""
    project = _project()
    fresh = builder.require_fresh(project)
    _refuse_invalid(project, fresh)
    with _stage_clients(stage) as (st, clients):
        result = package_stage(project, st, clients, fresh.out_dir, commit=_git_commit())
    for key in result.uploaded:
        print(f"uploaded s3://{st.bucket}/{key}")
    if result.reused:
        print(f"{len(result.reused)} zips already in s3://{st.bucket}/ (not uploaded again)")
    print(
        f"wrote {result.template.relative_to(ROOT)} (functions: {', '.join(result.function_names)})"
    )
    print(f"deploy it with: {result.deploy_command(f'layerkit-{st.name}', st.region)}")


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
    path = training.train_for_target(project, target, result.out_dir)
    print(f"wrote {path} (`inv build.all` puts it into the {target.key} package)")


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


@task(
    name="upgrade-runtime",
    help={
        "runtime": "the runtime to move to, for example python3.12",
        "dry_run": "rehearse every step in a scratch copy and print the changes; write nothing",
    },
)
@_friendly
def upgrade_runtime_(c: Context, runtime: str, dry_run: bool = False) -> None:
    """Move template and layers to a new runtime: re-lock, rebuild, retrain, validate, invoke."""
    project = _project()
    steps = ProjectSteps(training.build_with_model, _validate_project, _progress)
    report = upgrade_runtime(
        project, runtime, dry_run=dry_run, steps=steps, progress=lambda m: print(f"== {m}")
    )
    print("\n".join(report.lines()))


build_ns = Collection("build", all_, layer, functions, model)
validate_ns = Collection("validate", validate_all, validate_layer)
ns = Collection(
    build_ns,
    validate_ns,
    invoke_,
    lock,
    status,
    clean,
    report,
    deploy,
    package_,
    rollback,
    releases,
    upgrade_runtime_,
)
