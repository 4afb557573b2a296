"""Invoke tasks over :mod:`layerkit.commands` (an invoke Collection; extra ``layerkit[tasks]``).

A project's ``tasks.py`` can be one line, ``from layerkit.tasks import ns``; it may add its own
tasks to the collection (this repository adds ``build.model``). The project is the folder the
``tasks.py`` was loaded from (or invoke's ``layerkit.project_dir`` setting).

Every task is a :class:`LayerkitTask`: it prints what its command returns; a LayerkitError
becomes a one-paragraph message and exit code 1, never a traceback; ``-h``/``--help`` work
after any task name, positional arguments included.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from invoke import Collection, Context, Exit, Program, Task, task
from invoke.parser import ParserContext

from layerkit import commands, helptext
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
    """Print invoke's help for the task ``t``, its positional arguments in the usage line."""
    name = name or getattr(t, "qualified_name", t.name)
    program = Program(binary="inv[oke]")
    program.parser = SimpleNamespace(  # type: ignore[assignment]
        contexts={name: ParserContext(name=name, args=t.get_arguments())}
    )
    program.collection = {name: t}  # type: ignore[assignment]
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        program.print_task_help(name)
    print(usage_with_positionals(captured.getvalue(), t), end="")


def usage_with_positionals(text: str, t: Task[Any]) -> str:
    """Invoke's help ``text`` for ``t`` with its positional arguments in the usage line.

    invoke writes ``Usage: inv[oke] [--core-opts] build.layer [--options] [other tasks ...]``
    for a task that needs a NAME; this names it there, as ``layerkit build layer --help`` does:
    ``... build.layer [--options] NAME [other tasks here ...]``.
    """
    names = " ".join(p.replace("_", "-").upper() for p in t.positional)
    if not names:
        return text
    first, _, rest = text.partition("\n")
    marker = "[other tasks here"
    if marker in first:
        first = first.replace(marker, f"{names} {marker}", 1)
    else:  # pragma: no cover - an invoke that words its usage line differently
        first = f"{first.rstrip()} {names}"
    return f"{first}\n{rest}"


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
            raise Exit(commands.error_text(exc), code=1) from None
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


def layerkit_task(
    verb: str | None = None, **kwargs: Any
) -> Callable[[Callable[..., Any]], LayerkitTask]:
    """``@task(...)`` making a :class:`LayerkitTask`: for a project's own tasks too.

    ``verb`` (``build layer``): the task's help and its options' help are that verb's in
    :data:`layerkit.helptext.HELP`, the same words ``layerkit VERB --help`` says, and the task
    is named by the verb's last word (``layer``) unless ``name`` says otherwise.
    """
    if verb is None:
        return task(klass=LayerkitTask, **kwargs)  # type: ignore[no-any-return]
    said = helptext.HELP[verb]
    kwargs.setdefault("name", verb.split()[-1])

    def decorate(body: Callable[..., Any]) -> LayerkitTask:
        body.__doc__ = said.summary
        made: LayerkitTask = task(klass=LayerkitTask, help=dict(said.options), **kwargs)(body)
        return made

    return decorate


@layerkit_task("build all", default=True)
def build_all(
    c: Context,
    runtime: str | None = None,
    arch: str | None = None,
    force: bool = False,
    cache: str | None = None,
) -> Any:
    """``layerkit build all`` as a task (its help: :data:`layerkit.helptext.HELP`)."""
    return commands.build(
        project_dir(c),
        runtime=runtime,
        arch=arch,
        force=force,
        cache=cache,
        builder=builder(c),
        feedback=FEEDBACK,
    )


@layerkit_task("build layer")
def build_layer(
    c: Context, name: str, runtime: str | None = None, arch: str | None = None, force: bool = False
) -> Any:
    """``layerkit build layer`` as a task (its help: :data:`layerkit.helptext.HELP`)."""
    return commands.build_layer(
        project_dir(c), name, runtime=runtime, arch=arch, force=force, feedback=FEEDBACK
    )


@layerkit_task("build functions")
def build_functions(c: Context, force: bool = False) -> Any:
    """``layerkit build functions`` as a task (its help: :data:`layerkit.helptext.HELP`)."""
    return commands.build_functions(project_dir(c), force=force, feedback=FEEDBACK)


@layerkit_task("lock", iterable=["upgrade_package"])
def lock(c: Context, upgrade: bool = False, upgrade_package: Any = None) -> Any:
    """``layerkit lock`` as a task (its help: :data:`layerkit.helptext.HELP`)."""
    return commands.lock(
        project_dir(c),
        upgrade=upgrade,
        upgrade_packages=tuple(upgrade_package or ()),
        feedback=FEEDBACK,
    )


@layerkit_task("status")
def status(
    c: Context, runtime: str | None = None, arch: str | None = None, timings: bool = False
) -> Any:
    """``layerkit status`` as a task (its help: :data:`layerkit.helptext.HELP`)."""
    return commands.status(project_dir(c), runtime=runtime, arch=arch, timings=timings)


@layerkit_task("clean")
def clean(c: Context, layer: str | None = None) -> Any:
    """``layerkit clean`` as a task (its help: :data:`layerkit.helptext.HELP`)."""
    return commands.clean(project_dir(c), layer=layer)


@layerkit_task("validate layer")
def validate_layer(
    c: Context,
    name: str,
    runtime: str | None = None,
    arch: str | None = None,
    verbose: bool = False,
) -> Any:
    """``layerkit validate layer`` as a task (its help: :data:`layerkit.helptext.HELP`)."""
    return commands.validate_layer(
        project_dir(c), name, runtime=runtime, arch=arch, feedback=FEEDBACK, verbose=verbose
    )


@layerkit_task("validate all", default=True)
def validate_all(
    c: Context, runtime: str | None = None, arch: str | None = None, parameter_overrides: str = ""
) -> Any:
    """``layerkit validate all`` as a task (its help: :data:`layerkit.helptext.HELP`)."""
    return commands.validate(
        project_dir(c),
        runtime=runtime,
        arch=arch,
        parameter_overrides=parameter_overrides,
        builder=builder(c),
        feedback=FEEDBACK,
    )


@layerkit_task("upgrade-runtime")
def upgrade_runtime(c: Context, runtime: str, dry_run: bool = False) -> Any:
    """``layerkit upgrade-runtime`` as a task (its help: :data:`layerkit.helptext.HELP`)."""
    return commands.upgrade_runtime(
        project_dir(c), runtime, dry_run=dry_run, builder=builder(c), feedback=FEEDBACK
    )


@layerkit_task("invoke")
def invoke_function(
    c: Context,
    function: str,
    event: str | None = None,
    stage: str | None = None,
    env_vars: str | None = None,
    parameter_overrides: str = "",
) -> Any:
    """``layerkit invoke`` as a task (its help: :data:`layerkit.helptext.HELP`)."""
    return commands.invoke(
        project_dir(c),
        function,
        event=event,
        stage=stage,
        env_vars=env_vars,
        parameter_overrides=parameter_overrides,
        feedback=FEEDBACK,
    )


@layerkit_task("deploy")
def deploy(
    c: Context,
    stage: str = "local",
    dry_run: bool = False,
    allow_deprecated_runtime: bool = False,
    parameter_overrides: str = "",
) -> Any:
    """``layerkit deploy`` as a task (its help: :data:`layerkit.helptext.HELP`)."""
    return commands.deploy(
        project_dir(c),
        stage=stage,
        dry_run=dry_run,
        allow_deprecated_runtime=allow_deprecated_runtime,
        parameter_overrides=parameter_overrides,
        feedback=FEEDBACK,
    )


@layerkit_task("rollback")
def rollback(c: Context, stage: str = "local", release: str | None = None) -> Any:
    """``layerkit rollback`` as a task (its help: :data:`layerkit.helptext.HELP`)."""
    return commands.rollback(project_dir(c), stage=stage, release=release, feedback=FEEDBACK)


@layerkit_task("releases")
def releases(c: Context, stage: str = "local", limit: int = 20) -> Any:
    """``layerkit releases`` as a task (its help: :data:`layerkit.helptext.HELP`)."""
    return commands.releases(project_dir(c), stage=stage, limit=limit, feedback=FEEDBACK)


@layerkit_task("unlock")
def unlock(c: Context, stage: str = "local") -> Any:
    """``layerkit unlock`` as a task (its help: :data:`layerkit.helptext.HELP`)."""
    return commands.unlock(project_dir(c), stage=stage, feedback=FEEDBACK)


@layerkit_task("report")
def report(c: Context, verbose: bool = False) -> Any:
    """``layerkit report`` as a task (its help: :data:`layerkit.helptext.HELP`)."""
    return commands.report(project_dir(c), verbose=verbose)


@layerkit_task("optimize")
def optimize(
    c: Context,
    layer: str | None = None,
    apply: bool = False,
    bytecode: bool = False,
    runtime: str | None = None,
) -> Any:
    """``layerkit optimize`` as a task (its help: :data:`layerkit.helptext.HELP`)."""
    return commands.optimize(
        project_dir(c), layer=layer, apply=apply, bytecode=bytecode, runtime=runtime
    )


@layerkit_task("package")
def package(c: Context, stage: str = "local", parameter_overrides: str = "") -> Any:
    """``layerkit package`` as a task (its help: :data:`layerkit.helptext.HELP`)."""
    return commands.package(
        project_dir(c), stage=stage, parameter_overrides=parameter_overrides, feedback=FEEDBACK
    )


@layerkit_task("init")
def init(c: Context) -> Any:
    """``layerkit init`` as a task (its help: :data:`layerkit.helptext.HELP`)."""
    return commands.init(project_dir(c))


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
            init,
            rollback,
            releases,
            unlock,
        )
    )


ns = collection()
