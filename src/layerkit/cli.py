"""The ``layerkit`` command: the verbs of :mod:`layerkit.commands` for any SAM project.

``layerkit --help`` lists the verbs; ``layerkit VERB --help`` explains one. A LayerkitError (bad
input, a missing tool, a failed build or deploy) is printed as one paragraph on stderr with exit
code 1, and a usage mistake exits 1 too (argparse's message; ``inv`` exits 1 for one); Ctrl-C
exits with 130 and says what was interrupted; a closed pipe (``| head``) is quiet.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from layerkit import __version__, commands, helptext
from layerkit.errors import DeployInterrupted, LayerkitError
from layerkit.project.config import find_project_root
from layerkit.report.console import Terminal

Run = Callable[[argparse.Namespace, commands.Feedback], Any]

#: What an interruption leaves behind, by verb.
_SAFE = {
    "deploy": "a deploy rolls back what it changed and releases the stage lock",
    "rollback": "a rollback restores what it had moved and releases the stage lock",
}
_SAFE_DEFAULT = "a build keeps only complete zips and manifest entries"


_PROJECT_DIR_HELP = (
    "the project folder (default: the nearest folder, the current one or above, holding "
    "template.yaml or a pyproject.toml with [tool.layerkit])"
)


def _runtime(parser: argparse.ArgumentParser, arch: bool = True) -> None:
    parser.add_argument("--runtime", metavar="R", help=helptext.RUNTIME)
    if arch:
        # no argparse `choices`: a wrong value is the same one-paragraph error (exit 1) as `inv`'s
        parser.add_argument("--arch", metavar="A", help=helptext.ARCH)


def _force(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help=helptext.FORCE)


def _cache(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", metavar="URL", help=helptext.CACHE)


def _stage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", default="local", help=helptext.STAGE)


def _overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--parameter-overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help=helptext.OVERRIDES,
    )


def _verb(
    sub: Any,
    name: str,
    run: Run,
    help_text: str | None,
    parents: list[argparse.ArgumentParser],
    group: str = "",
) -> argparse.ArgumentParser:
    """A verb's parser; its help is :mod:`layerkit.helptext`'s unless ``help_text`` is given.

    ``group``: the verb's parent (``build`` for ``build layer``).
    """
    text = help_text or helptext.summary(f"{group} {name}".strip())
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=text, description=text, parents=parents
    )
    parser.set_defaults(run=run, doing=parser.prog.split(" ", 1)[-1])
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``layerkit``: global options and one sub-parser per verb."""
    # --project-dir is accepted before or after the verb
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--project-dir",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="DIR",
        help=_PROJECT_DIR_HELP,
    )
    p = [common]
    parser = argparse.ArgumentParser(
        prog="layerkit",
        description="Build, slim, validate and deploy the AWS Lambda layers and functions of "
        "a SAM project (layers/<name>/, template.yaml; see [tool.layerkit] in pyproject.toml).",
    )
    parser.add_argument("--version", action="version", version=f"layerkit {__version__}")
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help=_PROJECT_DIR_HELP,
    )
    sub = parser.add_subparsers(title="verbs", metavar="VERB", required=True)

    lock = _verb(sub, "lock", _lock, None, p)
    lock.add_argument("--upgrade", action="store_true", help=helptext.option("lock", "upgrade"))
    lock.add_argument(
        "--upgrade-package",
        action="append",
        default=[],
        metavar="NAME",
        help=helptext.option("lock", "upgrade_package"),
    )

    build = _verb(sub, "build", _build_all, "build layers and function packages (dist/)", p)
    builds = build.add_subparsers(title="what", metavar="WHAT")
    b_all = _verb(builds, "all", _build_all, None, p, "build")
    _runtime(b_all)
    _force(b_all)
    _cache(b_all)
    b_layer = _verb(builds, "layer", _build_layer, None, p, "build")
    b_layer.add_argument("name", help=helptext.LAYER_NAME)
    _runtime(b_layer)
    _force(b_layer)
    _force(_verb(builds, "functions", _build_functions, None, p, "build"))
    build.set_defaults(
        runtime=None, arch=None, force=False, cache=None
    )  # `layerkit build`: build all

    status = _verb(sub, "status", _status, None, p)
    _runtime(status)
    status.add_argument("--timings", action="store_true", help=helptext.option("status", "timings"))

    validate = _verb(sub, "validate", _validate_all, "check sizes, the template and layers", p)
    checks = validate.add_subparsers(title="what", metavar="WHAT")
    v_all = _verb(checks, "all", _validate_all, None, p, "validate")
    _runtime(v_all)
    _overrides(v_all)
    v_layer = _verb(checks, "layer", _validate_layer, None, p, "validate")
    v_layer.add_argument("name", help=helptext.LAYER_NAME)
    v_layer.add_argument(
        "-v", "--verbose", action="store_true", help=helptext.option("validate layer", "verbose")
    )
    _runtime(v_layer)
    # `layerkit validate` alone: validate all
    validate.set_defaults(runtime=None, arch=None, parameter_overrides=[])

    opt = _verb(sub, "optimize", _optimize, None, p)
    opt.add_argument("--layer", help=helptext.option("optimize", "layer"))
    opt.add_argument("--apply", action="store_true", help=helptext.option("optimize", "apply"))
    opt.add_argument(
        "--bytecode", action="store_true", help=helptext.option("optimize", "bytecode")
    )
    _runtime(opt, arch=False)

    up = _verb(sub, "upgrade-runtime", _upgrade, None, p)
    up.add_argument("runtime", help=helptext.option("upgrade-runtime", "runtime"))
    up.add_argument(
        "--dry-run", action="store_true", help=helptext.option("upgrade-runtime", "dry_run")
    )

    report = _verb(sub, "report", _report, None, p)
    report.add_argument("--verbose", action="store_true", help=helptext.option("report", "verbose"))

    inv = _verb(sub, "invoke", _invoke, None, p)
    inv.add_argument("function", help=helptext.option("invoke", "function"))
    inv.add_argument("--event", metavar="FILE", help=helptext.option("invoke", "event"))
    inv.add_argument("--env-vars", metavar="FILE", help=helptext.option("invoke", "env_vars"))
    inv.add_argument("--stage", help=helptext.option("invoke", "stage"))
    _overrides(inv)

    deploy = _verb(sub, "deploy", _deploy, None, p)
    _stage(deploy)
    deploy.add_argument("--dry-run", action="store_true", help=helptext.option("deploy", "dry_run"))
    deploy.add_argument(
        "--allow-deprecated-runtime",
        action="store_true",
        help=helptext.option("deploy", "allow_deprecated_runtime"),
    )
    _overrides(deploy)

    package = _verb(sub, "package", _package, None, p)
    _stage(package)
    _overrides(package)

    rollback = _verb(sub, "rollback", _rollback, None, p)
    _stage(rollback)
    rollback.add_argument("--release", help=helptext.option("rollback", "release"))

    releases = _verb(sub, "releases", _releases, None, p)
    _stage(releases)
    releases.add_argument(
        "--limit", type=int, default=20, help=helptext.option("releases", "limit")
    )

    _stage(_verb(sub, "unlock", _unlock, None, p))

    _verb(sub, "init", _init, None, p)

    clean = _verb(sub, "clean", _clean, None, p)
    clean.add_argument("--layer", help=helptext.option("clean", "layer"))
    return parser


# ---------------------------------------------------------------- the verbs


def _lock(a: argparse.Namespace, fb: commands.Feedback) -> commands.LockOutput:
    return commands.lock(
        a.project_dir, upgrade=a.upgrade, upgrade_packages=a.upgrade_package, feedback=fb
    )


def _build_all(a: argparse.Namespace, fb: commands.Feedback) -> commands.BuildOutput:
    return commands.build(
        a.project_dir, runtime=a.runtime, arch=a.arch, force=a.force, cache=a.cache, feedback=fb
    )


def _build_layer(a: argparse.Namespace, fb: commands.Feedback) -> commands.BuildOutput:
    return commands.build_layer(
        a.project_dir, a.name, runtime=a.runtime, arch=a.arch, force=a.force, feedback=fb
    )


def _build_functions(a: argparse.Namespace, fb: commands.Feedback) -> commands.BuildOutput:
    return commands.build_functions(a.project_dir, force=a.force, feedback=fb)


def _status(a: argparse.Namespace, fb: commands.Feedback) -> commands.StatusOutput:
    return commands.status(a.project_dir, runtime=a.runtime, arch=a.arch, timings=a.timings)


def _validate_all(a: argparse.Namespace, fb: commands.Feedback) -> commands.ValidateOutput:
    return commands.validate(
        a.project_dir,
        runtime=a.runtime,
        arch=a.arch,
        parameter_overrides=a.parameter_overrides,
        feedback=fb,
    )


def _validate_layer(a: argparse.Namespace, fb: commands.Feedback) -> commands.LayerValidationOutput:
    return commands.validate_layer(
        a.project_dir, a.name, runtime=a.runtime, arch=a.arch, feedback=fb, verbose=a.verbose
    )


def _report(a: argparse.Namespace, fb: commands.Feedback) -> commands.ReportOutput:
    return commands.report(a.project_dir, verbose=a.verbose)


def _optimize(a: argparse.Namespace, fb: commands.Feedback) -> commands.OptimizeOutput:
    return commands.optimize(
        a.project_dir, layer=a.layer, apply=a.apply, bytecode=a.bytecode, runtime=a.runtime
    )


def _upgrade(a: argparse.Namespace, fb: commands.Feedback) -> commands.UpgradeOutput:
    return commands.upgrade_runtime(a.project_dir, a.runtime, dry_run=a.dry_run, feedback=fb)


def _package(a: argparse.Namespace, fb: commands.Feedback) -> commands.PackageOutput:
    return commands.package(
        a.project_dir, stage=a.stage, parameter_overrides=a.parameter_overrides, feedback=fb
    )


def _invoke(
    a: argparse.Namespace, fb: commands.Feedback
) -> commands.InvokeOutput | commands.StageInvokeOutput:
    return commands.invoke(
        a.project_dir,
        a.function,
        event=a.event,
        stage=a.stage,
        env_vars=a.env_vars,
        parameter_overrides=a.parameter_overrides,
        feedback=fb,
    )


def _deploy(a: argparse.Namespace, fb: commands.Feedback) -> commands.DeployOutput:
    return commands.deploy(
        a.project_dir,
        stage=a.stage,
        dry_run=a.dry_run,
        allow_deprecated_runtime=a.allow_deprecated_runtime,
        parameter_overrides=a.parameter_overrides,
        feedback=fb,
    )


def _rollback(a: argparse.Namespace, fb: commands.Feedback) -> commands.RollbackOutput:
    return commands.rollback(a.project_dir, stage=a.stage, release=a.release, feedback=fb)


def _releases(a: argparse.Namespace, fb: commands.Feedback) -> commands.ReleasesOutput:
    return commands.releases(a.project_dir, stage=a.stage, limit=a.limit, feedback=fb)


def _unlock(a: argparse.Namespace, fb: commands.Feedback) -> commands.UnlockOutput:
    return commands.unlock(a.project_dir, stage=a.stage, feedback=fb)


def _init(a: argparse.Namespace, fb: commands.Feedback) -> commands.InitOutput:
    return commands.init(a.project_dir)


def _clean(a: argparse.Namespace, fb: commands.Feedback) -> commands.CleanOutput:
    return commands.clean(a.project_dir, layer=a.layer)


# ---------------------------------------------------------------- running one


def _writer(stream: TextIO) -> Callable[[str], None]:
    def write(line: str) -> None:
        print(line, file=stream, flush=True)

    return write


def _quiet_broken_pipe() -> None:
    """The reader went away (``layerkit status | head``): stop writing, say nothing."""
    try:
        fileno = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file: nothing will flush it
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fileno)  # Python's own flush at exit must not fail again


_INV_COMMAND = re.compile(r"`inv ([a-z][a-z0-9-]*)((?:\.[a-z][a-z0-9-]*)*)")


def in_layerkit_words(text: str) -> str:
    """``text`` with each `inv TASK ...` it suggests written as the `layerkit VERB ...` it is.

    Library messages name the invoke tasks (``inv build.all --force``); whoever reads them at
    this front door types ``layerkit build all --force``: the same verbs, options and values.
    """
    return _INV_COMMAND.sub(
        lambda m: f"`layerkit {m.group(1)}{m.group(2).replace('.', ' ')}", text
    ).replace("`inv --help NAME`", "`layerkit VERB --help`")


#: The exit code of a usage mistake (a missing argument, an unknown option): invoke's, so that
#: ``layerkit`` and ``inv`` exit alike.
USAGE_ERROR = 1


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0), or a usage error
        # argparse exits 2 on a usage error; `inv` exits 1, and both front doors exit alike
        return USAGE_ERROR if exc.code else 0
    out = _writer(sys.stdout)
    raw_err = _writer(sys.stderr)

    def err(line: str) -> None:
        raw_err(in_layerkit_words(line))

    doing = f"`layerkit {' '.join(argv if argv is not None else sys.argv[1:])}`"
    try:
        if args.doing.split()[0] != "clean":  # clean works on a broken project too
            args.project_dir = find_project_root(args.project_dir)
        terminal = Terminal()  # live progress on a terminal, plain lines in CI logs and pipes
        with terminal.tracking(doing):
            feedback = commands.terminal_feedback(terminal)
            feedback = dataclasses.replace(
                feedback, note=lambda text: terminal.message(in_layerkit_words(text))
            )
            output = args.run(args, feedback)
        text = in_layerkit_words(output.render())
        if text:
            out(text)
        if output.failure:
            err(f"error: {output.failure}")
            return 1
        return 0
    except DeployInterrupted as exc:  # undone already; say what was being done
        err(f"interrupted: {exc}")
        return exc.exit_code
    except LayerkitError as exc:
        err(commands.error_text(exc))  # the paragraph, then any notice the command had
        return 1
    except KeyboardInterrupt:
        err(
            f"interrupted during {doing}: nothing half-written was kept "
            f"({_SAFE.get(args.doing.split()[0], _SAFE_DEFAULT)})."
        )
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``layerkit`` with ``argv`` (default: the process arguments); return the exit code."""
    try:
        return _run(argv)
    except BrokenPipeError:
        _quiet_broken_pipe()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
