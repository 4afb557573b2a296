"""Invoking a built function of a project: the template's settings over the sandbox's plain data.

:mod:`layerkit.runtime.sandbox` knows zips, interpreters and numbers, never a project (the
runtime sits below ``project/`` and ``build/``). This module is the bridge above both: it reads
the function's layers, handler, memory, timeout and ephemeral storage from the project, finds the
zips in the build output and the runtime's own SDK in the cache, and runs
:func:`layerkit.runtime.sandbox.invoke_zips`. ``invoke``, ``upgrade``'s cold starts and the
benchmarks call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from layerkit.errors import SandboxError
from layerkit.project.spec import Project
from layerkit.runtime import layercache
from layerkit.runtime.sandbox import (
    DEFAULT_EPHEMERAL_MB,
    FunctionZip,
    InvokeResult,
    invoke_zips,
    remembered_interpreter,
)


def invoke_function(
    project: Project,
    function: str,
    event: Any,
    out_dir: Path,
    *,
    interpreter: Path | None = None,
    env: Mapping[str, str] | None = None,
    cache: Path | None = None,
) -> InvokeResult:
    """Invoke a built function as Lambda would: its layers in the template's order, its zip.

    ``out_dir`` is the build output holding ``layers/<name>.zip`` and ``functions/<name>.zip``
    (``build.require_fresh(project).out_dir``). Memory size, timeout and handler come from
    template.yaml. The zips are extracted once into ``cache`` (default:
    :func:`layerkit.runtime.layercache.default_cache_dir` of the project) and shared, read-only,
    by every later run; the rest of the sandbox lives in a temporary folder removed afterwards.
    """
    fn = project.function(function)
    zips = [Path(out_dir) / "layers" / f"{name}.zip" for name in fn.layers]
    package = Path(out_dir) / "functions" / f"{fn.name}.zip"
    for path in (*zips, package):
        if not path.is_file():
            raise SandboxError(
                f"{path} does not exist: function {fn.name} needs it; build first "
                "(`inv build.all`)."
            )
    store = cache or layercache.default_cache_dir(project.root)
    interpreter = interpreter or remembered_interpreter(fn.target, project.root, store)
    storage = int(getattr(fn, "ephemeral_storage", DEFAULT_EPHEMERAL_MB) or DEFAULT_EPHEMERAL_MB)
    function_zip = FunctionZip(
        package, fn.handler, fn.target, fn.memory_size, fn.timeout, ephemeral_storage_mb=storage
    )
    return invoke_zips(
        zips, function_zip, event, interpreter, store, function_name=fn.name, env=env
    )
