"""Invoking a built function of a project: the template's settings over the sandbox's plain data.

:mod:`layerkit.runtime.sandbox` knows zips, interpreters and numbers, never a project (the
runtime sits below ``project/`` and ``build/``). This module is the bridge above both: it reads
the function's layers, handler, memory, timeout and ephemeral storage from the project, finds the
zips in the build output and the runtime's own SDK in the cache, and runs
:func:`layerkit.runtime.sandbox.invoke_zips`. ``invoke``, ``upgrade``'s cold starts and the
benchmarks call it.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from layerkit.build.manifest import artifact_path
from layerkit.build.sdk import runtime_sdk_dir
from layerkit.check.elf import check_files, scan
from layerkit.check.handler import handler_problem, zip_package
from layerkit.errors import SandboxError, SpecError
from layerkit.project.spec import Function, Project
from layerkit.runtime import layercache
from layerkit.runtime.host import Execution, HostSupport, host_support
from layerkit.runtime.sandbox import (
    DEFAULT_EPHEMERAL_MB,
    FunctionZip,
    InvokeResult,
    invoke_zips,
    remembered_interpreter,
)
from layerkit.runtime.target import Target


def invoke_function(
    project: Project,
    function: str,
    event: Any,
    out_dir: Path,
    *,
    interpreter: Path | None = None,
    env: Mapping[str, str] | None = None,
    cache: Path | None = None,
    runtime_sdk: Path | None = None,
) -> InvokeResult:
    """Invoke a built function as Lambda would: its layers in the template's order, its zip.

    ``out_dir`` is the build output holding ``layers/<name>.zip`` and ``functions/<name>.zip``
    (``build.require_fresh(project).out_dir``). Memory size, timeout and handler come from
    template.yaml. The zips are extracted once into ``cache`` (default:
    :func:`layerkit.runtime.layercache.default_cache_dir` of the project) and shared, read-only,
    by every later run; the rest of the sandbox lives in a temporary folder removed afterwards.
    The runtime's own boto3 (``runtime_sdk``, default :func:`layerkit.build.sdk.runtime_sdk_dir`
    in the same cache) sits behind the layers, as ``/var/runtime`` does on Lambda.
    """
    fn = project.function(function)
    zips = [Path(out_dir) / artifact_path("layer", name) for name in fn.layers]
    package = Path(out_dir) / artifact_path("function", fn.name)
    for path in (*zips, package):
        if not path.is_file():
            raise SandboxError(
                f"{path} does not exist: function {fn.name} needs it; build first "
                "(`inv build.all`)."
            )
    store = cache or layercache.default_cache_dir(project.root)
    support = host_support(fn.target)
    if not support.runs_code:
        raise SandboxError(_cannot_run(fn, support, package, zips))
    if support.execution is Execution.EMULATED:
        interpreter = support.interpreter
    interpreter = interpreter or remembered_interpreter(fn.target, project.root, store)
    storage = int(getattr(fn, "ephemeral_storage", DEFAULT_EPHEMERAL_MB) or DEFAULT_EPHEMERAL_MB)
    function_zip = FunctionZip(
        package, fn.handler, fn.target, fn.memory_size, fn.timeout, ephemeral_storage_mb=storage
    )
    sdk = runtime_sdk or runtime_sdk_dir(fn.target, store)
    return invoke_zips(
        zips, function_zip, event, interpreter, store, function_name=fn.name, env=env,
        runtime_sdk=sdk,
    )  # fmt: skip


def static_checks(handler: str, target: Target, package: Path, zips: Sequence[Path]) -> list[str]:
    """What can be checked of a function without running it: its Handler and its ELF files.

    For a target this host cannot run (arm64 on x86_64): what ``invoke`` says it checked, and
    what a local deploy reports in place of the health check it cannot run.
    """
    checked = ["its zip and its layers' zips exist"]
    if handler_problem(handler, zip_package(package, str(package))) is None:
        checked.append(f"its Handler {handler} names a module and callable in its zip")
    else:
        checked.append(f"its Handler {handler} does NOT resolve in its zip (`layerkit validate`)")
    with tempfile.TemporaryDirectory(prefix="layerkit-static-") as tmp:
        for i, archive in enumerate((*zips, package)):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(Path(tmp) / f"{i}-{archive.stem}")
        files, unreadable = scan(Path(tmp))
        problems = (*unreadable, *check_files(files, target))
    if not files and not problems:
        checked.append("they hold no shared object (nothing machine-specific)")
    elif not problems:
        checked.append(
            f"all {len(files)} shared objects are {target.machine} ELF files needing at most "
            f"glibc {target.glibc_text}"
        )
    else:
        checked.append(f"{len(problems)} of its shared objects fail the ELF check")
    return checked


def _cannot_run(fn: Function, support: HostSupport, package: Path, zips: Sequence[Path]) -> str:
    """One paragraph: this host cannot run the function's machine code, and what was checked."""
    checked = static_checks(fn.handler, fn.target, package, zips)
    return (
        f"cannot invoke {fn.name} here: it runs on {fn.target.description}, and "
        f"{support.cannot_run}. "
        "Checked statically: "
        f"{'; '.join(checked)}. To run it, invoke it on an {fn.target.machine} machine or on a "
        "stage, or enable qemu-user (Debian: `apt-get install qemu-user-static binfmt-support`) "
        f"and name an {fn.target.machine} python{fn.target.python_version_text} in "
        f"LAYERKIT_PYTHON_{fn.target.python_version_text.replace('.', '_')}_"
        f"{fn.target.architecture.upper()}, which layerkit then runs emulated."
    )


def event_candidates(project: Project, fn: Function, event: str | None) -> tuple[Path, ...]:
    """Where an event is looked for, in order: the function's ``events/``, then the project's.

    ``sam init`` keeps events in the project's ``events/`` folder; layerkit's projects keep them
    beside each function. No event named: ``basic.json`` in either, then SAM's ``event.json``.
    A name is tried as given (relative to the working folder), then in both folders, with and
    without ``.json``.
    """
    folders = (fn.path / "events", project.root / "events")
    if event is None:
        names = ["basic.json", "event.json"]
        return tuple(folder / name for name in names for folder in folders)
    given = Path(event)
    if given.is_absolute():
        return (given,)
    names = [event] if event.endswith(".json") else [event, f"{event}.json"]
    found = [given.absolute()]
    found += [folder / name for folder in folders for name in names]
    return tuple(dict.fromkeys(found))


def find_event(project: Project, fn: Function, event: str | Path | None) -> Path:
    """The event file ``invoke`` reads (see :func:`event_candidates`), or one paragraph."""
    candidates = event_candidates(project, fn, None if event is None else str(event))
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(str(p) for p in candidates)
    what = f"the event {event}" if event is not None else f"an event for {fn.name}"
    raise SpecError(
        f"cannot find {what}: looked at {looked}. Put a JSON event in the function's events/ "
        "folder or the project's events/ folder, or pass --event with a path."
    )


def read_env_vars(path: Path) -> dict[str, Any]:
    """A SAM ``--env-vars`` file: ``{"LogicalId": {"VAR": "v"}, "Parameters": {"VAR": "v"}}``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError(
            f"cannot read the environment file {path}: {exc}; pass a JSON file shaped as SAM's "
            '--env-vars: {"MyFunction": {"TABLE": "t"}, "Parameters": {"STAGE": "dev"}}.'
        ) from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise SpecError(
            f"{path}: an --env-vars file maps a function's logical id (or `Parameters`, for "
            'every function) to its variables: {"MyFunction": {"TABLE": "t"}}; fix the file.'
        )
    return data


def env_overrides(data: Mapping[str, Any], fn: Function) -> dict[str, str]:
    """The variables an ``--env-vars`` document gives ``fn``: ``Parameters``, then its own.

    A function's own entry (by logical id, or by its name) wins over ``Parameters``; values
    become strings as Lambda's environment holds them (JSON ``true`` is ``"true"``).
    """
    merged: dict[str, str] = {}
    for key in ("Parameters", fn.name, fn.logical_id):
        for name, value in (data.get(key) or {}).items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            merged[str(name)] = value if isinstance(value, str) else json.dumps(value)
    return merged
