"""What a build of one target holds beyond its layers: functions, per-target data, bytecode mode.

Every target a layer lists is a first-class build: the function packages are built for it too
(in its own folder, ``dist/<target>/``), from the same function folders. What differs per target
is data a target's build produced for a function, such as the Predictions model, which must be
trained by that target's interpreter with that target's layers. Such data lives in the target's
overlay folder, ``<output>/overlay/<function>/``; its files go into the function's package in
place of the function folder's files of the same relative path (``model/model.joblib``). The
template's own target has no overlay: its data is the function folder's, committed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from layerkit.project.spec import Function, Project
from layerkit.runtime.host import HostSupport
from layerkit.runtime.target import Target

OVERLAY = "overlay"


def overlay_dir(out_dir: Path, function: str) -> Path:
    """The folder whose files replace or add to ``function``'s package in the build ``out_dir``."""
    return out_dir / OVERLAY / function


def overlay_files(folder: Path) -> tuple[tuple[str, Path], ...]:
    """``(relative path, file)`` of every file in an overlay folder, sorted (none if missing)."""
    if not folder.is_dir():
        return ()
    return tuple(
        (path.relative_to(folder).as_posix(), path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    )


def overlay_digest(files: tuple[tuple[str, Path], ...]) -> list[list[str]]:
    """The overlay's part of a function's input hash: each file's path and sha256."""
    return [[rel, hashlib.sha256(path.read_bytes()).hexdigest()] for rel, path in files]


def buildable_functions(project: Project, target: Target) -> tuple[Function, ...]:
    """The functions built for ``target``: those whose every attached layer is built for it.

    For the template's target that is every function (the pipeline refuses a function whose
    layer is not built for it); another target builds the functions it can (an arm64 target
    listed by two of three layers builds the functions that attach only those two).
    """
    return tuple(
        fn
        for fn in project.functions
        if all(target in project.layer(name).targets() for name in fn.layers)
    )


def static_bytecode_mode(requested: str, support: HostSupport) -> str:
    """The bytecode mode a layer gets on a host that may not run the target's code.

    ``imported`` needs a cold start to be run to know which modules it loads; on a static-only
    host nothing may run, so every module is compiled instead (``all``: a bigger layer, the
    same cold start). Other modes need no execution and stay as requested.
    """
    if support.runs_code or requested != "imported":
        return requested
    return "all"
