"""What every verb and option is for, said once for both front doors.

``layerkit VERB --help`` (:mod:`layerkit.cli`) and ``inv TASK --help`` (:mod:`layerkit.tasks`)
both read :data:`HELP`: a verb's one-sentence summary and each option's help, keyed by the
command's parameter name. A test compares the two front doors' help with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: What ``--force`` does, for every front door's help.
FORCE = (
    "rebuild even fresh artifacts (the step cache still serves unchanged files; "
    "LAYERKIT_STEP_CACHE=off computes everything again)"
)
RUNTIME = "use this runtime instead of the template's (e.g. python3.12)"
ARCH = "target architecture, x86_64 or arm64, instead of the template's"
STAGE = "a stage of the stages file (default: local, an embedded moto server, no credentials)"
CACHE = (
    "shared build cache: s3://BUCKET/PREFIX, file:///DIR, or none "
    "(default: LAYERKIT_CACHE, else [tool.layerkit] cache)"
)
LAYER_NAME = "the layer folder name"
OVERRIDES = (
    "template parameter values, SAM's form: 'Stage=prod Owner=team'; they win over "
    "stages.toml's `parameters` and samconfig.toml's parameter_overrides"
)


@dataclass(frozen=True)
class VerbHelp:
    """One verb's help: a sentence saying what it does, and each option's help by parameter."""

    summary: str
    options: Mapping[str, str] = field(default_factory=dict)


#: Every verb's help, keyed by the ``layerkit`` words (``build layer``); the invoke task of a
#: verb is the same words joined by a dot (``build.layer``).
HELP: Mapping[str, VerbHelp] = {
    "lock": VerbHelp(
        "Resolve all requirements once per target with uv and write locks/<target>.toml.",
        {
            "upgrade": "re-resolve every version instead of keeping the locked ones",
            "upgrade_package": "let this distribution move to another version (repeatable)",
        },
    ),
    "build all": VerbHelp(
        "Build every layer and function package that is not fresh (dist/).",
        {"runtime": RUNTIME, "arch": ARCH, "force": FORCE, "cache": CACHE},
    ),
    "build layer": VerbHelp(
        "Build one layer, the layers it requires, and the layers that require it if stale.",
        {"name": LAYER_NAME, "runtime": RUNTIME, "arch": ARCH, "force": FORCE},
    ),
    "build functions": VerbHelp(
        "Build the function packages (app code and function-only dependencies).",
        {"force": FORCE},
    ),
    "status": VerbHelp(
        "Show what is built, whether it is fresh or stale, and its sizes.",
        {"runtime": RUNTIME, "arch": ARCH, "timings": "also the seconds of each build step"},
    ),
    "validate all": VerbHelp(
        "Check sizes and Lambda limits, the template, and every layer on its runtime.",
        {"runtime": RUNTIME, "arch": ARCH, "parameter_overrides": OVERRIDES},
    ),
    "validate layer": VerbHelp(
        "Build (if stale) and prove one layer on its runtime: imports, smoke test, ELF/glibc.",
        {
            "name": LAYER_NAME,
            "runtime": RUNTIME,
            "arch": ARCH,
            "verbose": "also show what the smoke test printed (stdout and stderr), passed or not",
        },
    ),
    "optimize": VerbHelp(
        "Trace what every function loads; report what no function loads; --apply prunes it.",
        {
            "layer": "advise (and prune) only this layer",
            "apply": "write the removals into layer.toml, rebuild and prove the functions work",
            "bytecode": "also measure every bytecode mode (size, each handler's cold init)",
            "runtime": RUNTIME,
        },
    ),
    "upgrade-runtime": VerbHelp(
        "Move template and layers to a new runtime: re-lock, rebuild, validate, invoke.",
        {
            "runtime": "the runtime to move to, for example python3.12",
            "dry_run": "rehearse every step in a scratch copy and print the changes; write nothing",
        },
    ),
    "report": VerbHelp(
        "Write dist/report.json and dist/report.html for every built target; print the tables.",
        {"verbose": "every slimming pass and all rows"},
    ),
    "invoke": VerbHelp(
        "Run a built function in the local Lambda sandbox; print logs, result and REPORT line.",
        {
            "function": "folder name or logical id; with --stage also FUNCTION:ALIAS or :VERSION",
            "event": "event JSON, or its name in the function's or the project's events/ "
            "(default: events/basic.json)",
            "stage": "invoke what this stage runs (local: the deployed zips, run for real)",
            "env_vars": "SAM's environment file: "
            '{"LogicalId": {"VAR": "v"}, "Parameters": {"VAR": "v"}}',
            "parameter_overrides": OVERRIDES,
        },
    ),
    "deploy": VerbHelp(
        "Deploy the current build (dist/) to a stage; roll back on any failure.",
        {
            "stage": STAGE,
            "dry_run": "print the plan, change nothing",
            "allow_deprecated_runtime": "deploy a runtime AWS blocks (real AWS only)",
            "parameter_overrides": OVERRIDES,
        },
    ),
    "package": VerbHelp(
        "Upload the current build to a stage's bucket; write dist/template.packaged.yaml.",
        {"stage": STAGE, "parameter_overrides": OVERRIDES},
    ),
    "rollback": VerbHelp(
        "Move a stage's aliases (and $LATEST) back to a recorded release.",
        {"stage": STAGE, "release": "the release id (default: the one before the current)"},
    ),
    "releases": VerbHelp(
        "List the releases recorded for a stage, oldest first.",
        {"stage": STAGE, "limit": "show only the newest N"},
    ),
    "unlock": VerbHelp(
        "Remove a stage's deploy lock that a killed deploy or rollback left behind.",
        {"stage": STAGE},
    ),
    "init": VerbHelp("Write a commented stages.toml into the project (refuses to overwrite one)."),
    "clean": VerbHelp(
        "Remove build output: all of dist/, or one layer's zips.",
        {"layer": "remove only this layer's zips (every target)"},
    ),
}


def summary(verb: str) -> str:
    """The one sentence saying what ``verb`` (``build layer``) does."""
    return HELP[verb].summary


def option(verb: str, name: str) -> str:
    """The help of ``verb``'s option or argument ``name`` (the command's parameter name)."""
    return HELP[verb].options[name]
