"""The template check: template.yaml is valid, matches the layer folders, and its runtime is live.

- cfn-lint passes (offline; the SAM transform is applied by cfn-lint itself);
- every layer in the template has a ``layers/<name>/`` folder and every folder a layer resource;
- every function's runtime and architecture are in its layers' CompatibleRuntimes and
  CompatibleArchitectures (and in the runtimes layerkit builds the layer for), it attaches at
  most 5 layers, none twice, and every layer an attached layer requires;
- the runtime's lifecycle, read from cfn-lint's maintained ``LmbdRuntimeLifecycle.json`` rather
  than a copied table: a deprecated runtime, or one AWS blocks creating or updating, is a plain
  warning naming the dates and the way out. cfn-lint's own lifecycle rules are switched off so
  that this is said once, in layerkit's words; the deploy step refuses a blocked runtime on AWS.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from layerkit.project.spec import LAYERS_DIR, TEMPLATE_FILE, Project

MAX_LAYERS = 5
#: cfn-lint rules about the runtime lifecycle, replaced by :func:`lifecycle_problem`.
LIFECYCLE_RULES = ("W2531", "E2531", "E2533")
LIFECYCLE_DATA = ("cfnlint.data.AdditionalSpecs", "LmbdRuntimeLifecycle.json")


@dataclass(frozen=True)
class TemplateProblem:
    """One finding of the template check."""

    severity: str  # "error" | "warning"
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


@dataclass(frozen=True)
class RuntimeStatus:
    """Where a Lambda runtime is in its lifecycle on a given day."""

    runtime: str
    deprecated: date | None
    create_blocked: date | None
    update_blocked: date | None
    successor: str | None
    is_deprecated: bool
    blocked_for_create: bool
    blocked_for_update: bool


def _date(text: Any) -> date | None:
    return date.fromisoformat(text) if isinstance(text, str) and text else None


@functools.lru_cache(maxsize=1)
def lifecycle_table() -> Mapping[str, Mapping[str, Any]]:
    """cfn-lint's runtime lifecycle data: runtime -> deprecated/create-block/update-block dates."""
    package, name = LIFECYCLE_DATA
    # Found on disk without importing cfnlint: its __init__ loads all of cfn-lint (seconds).
    top, *inner = package.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{top} is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))).joinpath(*inner)
    text = (folder / name).read_text(encoding="utf-8")
    data: Mapping[str, Mapping[str, Any]] = json.loads(text)
    return data


def lifecycle_source() -> str:
    """Where the lifecycle dates come from, for messages."""
    return f"cfn-lint {importlib.metadata.version('cfn-lint')} runtime lifecycle data"


def runtime_lifecycle(
    runtime: str, today: date, table: Mapping[str, Mapping[str, Any]] | None = None
) -> RuntimeStatus:
    """The lifecycle of ``runtime`` on ``today`` (a runtime not in the table is live)."""
    entry = (lifecycle_table() if table is None else table).get(runtime, {})
    deprecated = _date(entry.get("deprecated"))
    create_blocked = _date(entry.get("create-block"))
    update_blocked = _date(entry.get("update-block"))
    return RuntimeStatus(
        runtime=runtime,
        deprecated=deprecated,
        create_blocked=create_blocked,
        update_blocked=update_blocked,
        successor=entry.get("successor"),
        is_deprecated=deprecated is not None and deprecated <= today,
        blocked_for_create=create_blocked is not None and create_blocked <= today,
        blocked_for_update=update_blocked is not None and update_blocked <= today,
    )


def _when(day: date | None, today: date, action: str) -> str | None:
    if day is None:
        return None
    if day <= today:
        return f"AWS has blocked {action} since {day}"
    return f"AWS blocks {action} from {day}"


def lifecycle_problem(
    status: RuntimeStatus, today: date, validated: tuple[str, ...] = ()
) -> TemplateProblem | None:
    """A warning for a deprecated or (soon) blocked runtime, naming the dates and the way out.

    Nothing for a runtime with no deprecation date yet, or one still ahead of it.
    """
    if not status.is_deprecated and not status.blocked_for_create:
        return None
    blocks = [
        text
        for text in (
            _when(status.create_blocked, today, "creating functions on it"),
            _when(status.update_blocked, today, "updating them"),
        )
        if text
    ]
    others = f" ({', '.join(validated)} is built and validated too)" if validated else ""
    successor = f"; AWS names {status.successor} as its successor" if status.successor else ""
    return TemplateProblem(
        "warning",
        f"runtime {status.runtime} is deprecated since {status.deprecated}"
        + (f": {' and '.join(blocks)}" if blocks else "")
        + f" ({lifecycle_source()}). The way out is one setting: Runtime in {TEMPLATE_FILE} "
        f"Globals.Function, with the layers' CompatibleRuntimes{others}{successor}.",
    )


def cfn_lint(path: Path) -> tuple[TemplateProblem, ...]:
    """cfn-lint's findings for the template at ``path`` (lifecycle rules left to layerkit)."""
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(path, config=ManualArgs(ignore_checks=list(LIFECYCLE_RULES)))
    problems = []
    for match in matches:
        severity = "error" if match.rule.id.startswith("E") else "warning"
        if match.rule.id.startswith("I"):
            continue
        problems.append(
            TemplateProblem(
                severity,
                f"{path.name}:{match.linenumber}: cfn-lint {match.rule.id}: {match.message}",
            )
        )
    return tuple(problems)


def wiring_problems(project: Project) -> tuple[TemplateProblem, ...]:
    """Layer folders vs template layers, and each function's layers vs its runtime."""
    problems: list[TemplateProblem] = []
    template_layers = {tl.layer: tl for tl in project.template.layers}
    folders = {layer.name for layer in project.layers}
    for name in sorted(set(template_layers) - folders):
        problems.append(
            TemplateProblem(
                "error",
                f"{TEMPLATE_FILE}: {template_layers[name].logical_id} builds layer {name!r} "
                f"but there is no {LAYERS_DIR}/{name}/ folder; create it or fix the ContentUri.",
            )
        )
    for name in sorted(folders - set(template_layers)):
        problems.append(
            TemplateProblem(
                "error",
                f"{LAYERS_DIR}/{name}/ has no AWS::Serverless::LayerVersion in {TEMPLATE_FILE} "
                f"(ContentUri dist/layers/{name}.zip); add one or remove the folder.",
            )
        )
    for fn in project.functions:
        where = f"{TEMPLATE_FILE}: function {fn.logical_id}"
        runtime, arch = fn.target.runtime, fn.target.architecture
        if len(fn.layers) > MAX_LAYERS:
            problems.append(
                TemplateProblem(
                    "error",
                    f"{where} attaches {len(fn.layers)} layers; Lambda allows {MAX_LAYERS}. "
                    "Merge layers or drop one.",
                )
            )
        for name in sorted({n for n in fn.layers if fn.layers.count(n) > 1}):
            problems.append(TemplateProblem("error", f"{where} attaches layer {name} twice."))
        for name in dict.fromkeys(fn.layers):
            tl = template_layers.get(name)
            if tl is None:
                continue
            if runtime not in tl.compatible_runtimes:
                problems.append(
                    TemplateProblem(
                        "error",
                        f"{where} runs {runtime}, but layer {name} ({tl.logical_id}) lists "
                        f"CompatibleRuntimes {list(tl.compatible_runtimes)}; add {runtime} there.",
                    )
                )
            if arch not in tl.compatible_architectures:
                problems.append(
                    TemplateProblem(
                        "error",
                        f"{where} runs on {arch}, but layer {name} ({tl.logical_id}) lists "
                        f"CompatibleArchitectures {list(tl.compatible_architectures)}.",
                    )
                )
            if name not in folders:
                continue
            layer = project.layer(name)
            if runtime not in layer.runtimes or arch not in layer.architectures:
                problems.append(
                    TemplateProblem(
                        "error",
                        f"{where} runs {runtime} on {arch}, but {LAYERS_DIR}/{name}/layer.toml "
                        f"builds the layer for runtimes {list(layer.runtimes)} and "
                        f"architectures {list(layer.architectures)}; add them there.",
                    )
                )
            missing = [r for r in project.required_closure(name) if r not in fn.layers]
            if missing:
                problems.append(
                    TemplateProblem(
                        "error",
                        f"{where} attaches {name}, which requires {', '.join(missing)} (see "
                        f"{LAYERS_DIR}/{name}/layer.toml), but does not attach "
                        f"{'it' if len(missing) == 1 else 'them'}; add to its Layers.",
                    )
                )
    return tuple(problems)


def runtime_problems(project: Project, today: date) -> tuple[TemplateProblem, ...]:
    """Lifecycle warnings for every runtime the template's functions use."""
    built = sorted({r for layer in project.layers for r in layer.runtimes})
    problems = []
    for runtime in sorted({fn.target.runtime for fn in project.functions}):
        others = tuple(
            r for r in built if r != runtime and not runtime_lifecycle(r, today).is_deprecated
        )
        problem = lifecycle_problem(runtime_lifecycle(runtime, today), today, others)
        if problem is not None:
            problems.append(problem)
    return tuple(problems)


def check_template(project: Project, today: date | None = None) -> tuple[TemplateProblem, ...]:
    """Every template finding: cfn-lint, wiring, runtime lifecycle (errors first)."""
    today = date.today() if today is None else today
    found = (
        *cfn_lint(project.template.path),
        *wiring_problems(project),
        *runtime_problems(project, today),
    )
    return tuple(sorted(found, key=lambda p: p.severity != "error"))
