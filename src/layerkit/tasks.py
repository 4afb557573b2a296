"""Invoke tasks over :mod:`layerkit.commands` (an invoke Collection; extra ``layerkit[tasks]``).

A project's ``tasks.py`` can be one line, ``from layerkit.tasks import ns``; it may add its own
tasks to the collection (this repository adds ``build.model``). The project is the folder the
``tasks.py`` was loaded from (or invoke's ``layerkit.project_dir`` setting).

Every task is a :class:`LayerkitTask`: it prints what its command returns; a LayerkitError
becomes a one-paragraph message and exit code 1, never a traceback; ``-h``/``--help`` work
after any task name, positional arguments included.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from invoke import Collection, Context, Exit, Program, Task, task
from invoke.parser import ParserContext

from layerkit import commands
from layerkit.errors import DeployInterrupted, LayerkitError
from layerkit.project.config import find_project_root
from layerkit.report.console import Terminal

HELP_FLAGS = ("-h", "--help")

#: What a task says while it works: live progress on a terminal, plain lines in CI logs and pipes.
TERMINAL = Terminal()
FEEDBACK = commands.terminal_feedback(TERMINAL)


def builder(c: Context) -> commands.Builder | None:
    """What builds a target: invoke's ``layerkit.builder`` setting, else the project's own.

    The project's own is layerkit's pipeline with the build steps its ``[tool.layerkit]
    build-steps`` declares (:mod:`layerkit.build.hooks`), the same as the ``layerkit`` command
    runs; the invoke setting remains for a tasks.py that sets it.
    """
    return (c.config.get("layerkit") or {}).get("builder")


def project_dir(c: Context) -> Path:
    """The project: invoke's ``layerkit.project_dir`` setting, else the folder of tasks.py.

    Without either, the nearest folder holding the project, the current one or above.
    """
    configured = (c.config.get("layerkit") or {}).get("project_dir")
    prefix = configured or getattr(c.config, "_project_prefix", None)
    return Path(prefix) if prefix else find_project_root(Path.cwd())


def print_task_help(t: Task[Any], name: str | None = None) -> None:
    """Print invoke's own help for the task ``t`` (``inv --help NAME`` prints the same)."""
    name = name or getattr(t, "qualified_name", t.name)
    program = Program(binary="inv[oke]")
    program.parser = SimpleNamespace(  # type: ignore[assignment]
        contexts={name: ParserContext(name=name, args=t.get_arguments())}
    )
    program.collection = {name: t}  # type: ignore[assignment]
    program.print_task_help(name)


class LayerkitTask(Task[Any]):
    """A task over a layerkit command: prints its output; errors map to one paragraph and exit 1.

    invoke gives a task's missing positional argument the next word even when that word is
    ``--help`` (``inv build.layer --help`` would build a layer called "--help"), so a positional
    value of ``-h`` or ``--help`` prints the task's help instead of running it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """A task whose option help survives being parsed more than once."""
        super().__init__(*args, **kwargs)
        self.saved_help = dict(self.help)

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Any]:
        """The task's arguments with their help, every time (invoke pops ``help`` as it reads)."""
        self.help = dict(self.saved_help)
        return super().get_arguments(ignore_unknown_help)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task's command and print its output (or the help, or the error)."""
        asked = {kwargs.get(n) for n in self.positional} | {
            a for a in args[1:] if isinstance(a, str)
        }
        try:
            if asked & set(HELP_FLAGS):
                print_task_help(self)
                return None
            with TERMINAL.tracking(f"inv {getattr(self, 'qualified_name', self.name)}"):
                output = super().__call__(*args, **kwargs)
            text = output.render() if output is not None else ""
            if text:
                print(text, flush=True)
        except DeployInterrupted as exc:  # undone already; say what was being done
            raise Exit(f"interrupted: {exc}", code=exc.exit_code) from None
        except LayerkitError as exc:
            raise Exit(f"error: {exc}", code=1) from None
        except KeyboardInterrupt:
            raise Exit(
                f"interrupted during `inv {getattr(self, 'qualified_name', self.name)}`: nothing "
                "half-written was kept (a build keeps only complete zips and manifest entries; a "
                "deploy rolls back what it changed).",
                code=130,
            ) from None
        except BrokenPipeError:  # `inv status | head`: the reader went away; nothing to say
            sys.stderr.close()
            raise Exit(code=0) from None
        if output is not None and output.failure:
            raise Exit(f"error: {output.failure}", code=1)
        return output


def layerkit_task(**kwargs: Any) -> Callable[[Callable[..., Any]], LayerkitTask]:
    """``@task(...)`` making a :class:`LayerkitTask`: for a project's own tasks too."""
    return task(klass=LayerkitTask, **kwargs)  # type: ignore[no-any-return]


_RUNTIME = "build for this runtime instead of the template's (e.g. python3.12)"
_ARCH = "target architecture, x86_64 or arm64, instead of the template's"
_STAGE = "a stage from stages.toml (local: an embedded moto server, no credentials)"


@layerkit_task(
    name="all",
    default=True,
    help={
        "runtime": _RUNTIME,
        "arch": _ARCH,
        "force": commands.FORCE_HELP,
        "cache": "shared build cache: s3://BUCKET/PREFIX, file:///DIR or none "
        "(default: LAYERKIT_CACHE, else [tool.layerkit] cache)",
    },
)
def build_all(
    c: Context,
    runtime: str | None = None,
    arch: str | None = None,
    force: bool = False,
    cache: str | None = None,
) -> Any:
    """Build every layer and function package that is not fresh (dist/)."""
    return commands.build(
        project_dir(c),
        runtime=runtime,
        arch=arch,
        force=force,
        cache=cache,
        builder=builder(c),
        feedback=FEEDBACK,
    )


@layerkit_task(
    name="layer",
    help={
        "name": "the layer folder name",
        "runtime": _RUNTIME,
        "arch": _ARCH,
        "force": commands.FORCE_HELP,
    },
)
def build_layer(
    c: Context, name: str, runtime: str | None = None, arch: str | None = None, force: bool = False
) -> Any:
    """Build one layer (and rebuild the layers that require it, if stale)."""
    return commands.build_layer(
        project_dir(c), name, runtime=runtime, arch=arch, force=force, feedback=FEEDBACK
    )


@layerkit_task(name="functions", help={"force": "rebuild even fresh packages"})
def build_functions(c: Context, force: bool = False) -> Any:
    """Build the function packages (app code and function-only dependencies)."""
    return commands.build_functions(project_dir(c), force=force, feedback=FEEDBACK)


@layerkit_task(name="lock", help={"upgrade": "re-resolve every version instead of keeping them"})
def lock(c: Context, upgrade: bool = False) -> Any:
    """Resolve all requirements once per target with uv and write locks/<target>.toml."""
    return commands.lock(project_dir(c), upgrade=upgrade, feedback=FEEDBACK)


@layerkit_task(
    name="status",
    help={"runtime": _RUNTIME, "arch": _ARCH, "timings": "also the seconds of each build step"},
)
def status(
    c: Context, runtime: str | None = None, arch: str | None = None, timings: bool = False
) -> Any:
    """Show what is built, whether it is fresh or stale, and its sizes."""
    return commands.status(project_dir(c), runtime=runtime, arch=arch, timings=timings)


@layerkit_task(name="clean", help={"layer": "remove only this layer's zips (every target)"})
def clean(c: Context, layer: str | None = None) -> Any:
    """Remove build output: all of dist/, or one layer."""
    return commands.clean(project_dir(c), layer=layer)


@layerkit_task(
    name="layer", help={"name": "the layer folder name", "runtime": _RUNTIME, "arch": _ARCH}
)
def validate_layer(
    c: Context, name: str, runtime: str | None = None, arch: str | None = None
) -> Any:
    """Build (if stale) and prove one layer on its runtime: imports, smoke test, ELF/glibc."""
    return commands.validate_layer(
        project_dir(c), name, runtime=runtime, arch=arch, feedback=FEEDBACK
    )


@layerkit_task(name="all", default=True, help={"runtime": _RUNTIME, "arch": _ARCH})
def validate_all(c: Context, runtime: str | None = None, arch: str | None = None) -> Any:
    """Check sizes and Lambda limits, the template, and every layer on its runtime."""
    return commands.validate(
        project_dir(c), runtime=runtime, arch=arch, builder=builder(c), feedback=FEEDBACK
    )


@layerkit_task(
    name="upgrade-runtime",
    help={
        "runtime": "the runtime to move to, for example python3.12",
        "dry_run": "rehearse every step in a scratch copy and print the changes; write nothing",
    },
)
def upgrade_runtime(c: Context, runtime: str, dry_run: bool = False) -> Any:
    """Move template and layers to a new runtime: re-lock, rebuild, validate, invoke; or nothing."""
    return commands.upgrade_runtime(
        project_dir(c), runtime, dry_run=dry_run, builder=builder(c), feedback=FEEDBACK
    )


@layerkit_task(
    name="invoke",
    help={
        "function": "folder name or logical id; with --stage also FUNCTION:ALIAS or :VERSION",
        "event": "event JSON (default events/basic.json)",
        "stage": "invoke what this stage runs (local: the deployed zips, run for real)",
    },
)
def invoke_function(
    c: Context, function: str, event: str | None = None, stage: str | None = None
) -> Any:
    """Run a built function in the local Lambda sandbox; print logs, result and REPORT line."""
    return commands.invoke(project_dir(c), function, event=event, stage=stage, feedback=FEEDBACK)


@layerkit_task(
    name="deploy",
    help={
        "stage": _STAGE,
        "dry_run": "print the plan, change nothing",
        "allow_deprecated_runtime": "deploy a runtime AWS blocks (real AWS only)",
    },
)
def deploy(
    c: Context, stage: str = "local", dry_run: bool = False, allow_deprecated_runtime: bool = False
) -> Any:
    """Deploy the current build (dist/) to a stage; roll back on any failure."""
    return commands.deploy(
        project_dir(c),
        stage=stage,
        dry_run=dry_run,
        allow_deprecated_runtime=allow_deprecated_runtime,
        feedback=FEEDBACK,
    )


@layerkit_task(name="rollback", help={"stage": _STAGE, "release": "release id (default: previous)"})
def rollback(c: Context, stage: str = "local", release: str | None = None) -> Any:
    """Move a stage's aliases (and $LATEST) back to a recorded release."""
    return commands.rollback(project_dir(c), stage=stage, release=release, feedback=FEEDBACK)


@layerkit_task(name="releases", help={"stage": _STAGE, "limit": "show only the newest N"})
def releases(c: Context, stage: str = "local", limit: int = 20) -> Any:
    """List the releases recorded for a stage, oldest first."""
    return commands.releases(project_dir(c), stage=stage, limit=limit, feedback=FEEDBACK)


@layerkit_task(name="unlock", help={"stage": _STAGE})
def unlock(c: Context, stage: str = "local") -> Any:
    """Remove a stage's deploy lock that a killed deploy or rollback left behind."""
    return commands.unlock(project_dir(c), stage=stage, feedback=FEEDBACK)


@layerkit_task(name="report", help={"verbose": "every slimming pass and all rows"})
def report(c: Context, verbose: bool = False) -> Any:
    """Write dist/report.json and dist/report.html for every built target; print the tables."""
    return commands.report(project_dir(c), verbose=verbose)


@layerkit_task(
    name="optimize",
    help={
        "layer": "advise (and prune) only this layer",
        "apply": "write the removals into layer.toml, rebuild and prove the functions still work",
        "bytecode": "also measure every bytecode mode (size, each handler's cold init)",
        "runtime": _RUNTIME,
    },
)
def optimize(
    c: Context,
    layer: str | None = None,
    apply: bool = False,
    bytecode: bool = False,
    runtime: str | None = None,
) -> Any:
    """Trace what every function loads; report what no function loads; --apply prunes it."""
    return commands.optimize(
        project_dir(c), layer=layer, apply=apply, bytecode=bytecode, runtime=runtime
    )


@layerkit_task(name="package", help={"stage": _STAGE})
def package(c: Context, stage: str = "local") -> Any:
    """Upload the current build to a stage's bucket; write dist/template.packaged.yaml for SAM."""
    return commands.package(project_dir(c), stage=stage, feedback=FEEDBACK)


def name_tasks(ns: Collection) -> Collection:
    """Record each task's dotted name (``build.layer``) for its help and messages; return ns."""
    for name in ns.task_names:
        ns[name].qualified_name = name
    return ns


def collection() -> Collection:
    """A fresh Collection of every layerkit task (add a project's own tasks to it)."""
    build = Collection("build", build_all, build_layer, build_functions)
    validate = Collection("validate", validate_all, validate_layer)
    return name_tasks(
        Collection(
            build,
            validate,
            invoke_function,
            lock,
            status,
            clean,
            report,
            optimize,
            upgrade_runtime,
            deploy,
            package,
            rollback,
            releases,
            unlock,
        )
    )


ns = collection()
