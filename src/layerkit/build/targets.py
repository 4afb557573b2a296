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

import ast
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from layerkit.project.spec import Function, Project
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
    """The functions built for ``target``.

    A target some function of the template runs on builds those functions (an arm64 function
    is built for arm64 only). A target no function runs on (a runtime only the layers list, to
    try it) builds every function whose attached layers are all built for it.
    """
    if any(fn.target == target for fn in project.functions):
        return tuple(fn for fn in project.functions if fn.target == target)
    return tuple(
        fn
        for fn in project.functions
        if all(target in project.layer(name).targets() for name in fn.layers)
    )


def _module_file(root: Path, name: str) -> Path | None:
    """The source file of module ``name`` under ``root`` (package ``__init__.py`` or ``.py``)."""
    base = root.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_name(base.name + ".py")):
        if candidate.is_file():
            return candidate
    return None


def _import_time_nodes(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements a module runs when imported: module level, blocks and class bodies."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, field, None)
            if isinstance(children, list):
                for child in children:
                    if isinstance(child, (ast.ExceptHandler, ast.match_case)):
                        yield from _import_time_nodes(child.body)
                    elif isinstance(child, ast.stmt):
                        yield from _import_time_nodes([child])


def _imported_names(tree: ast.Module, package: str) -> Iterator[str]:
    """Every module name an import-time statement of ``tree`` names (``package``: its own)."""
    for node in _import_time_nodes(tree.body):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - node.level + 1] if node.level > 1 else parts
                base = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            if base:
                yield base
            yield from (f"{base}.{a.name}" if base else a.name for a in node.names)


def static_imported_files(
    root: Path, entry_modules: Sequence[str], scripts: Sequence[Path] = ()
) -> tuple[str, ...]:
    """The ``.py`` files under ``root`` a cold start loads, found without running anything.

    Follows the imports that run at import time (module level, including ``try``/``if``
    blocks and class bodies, not function bodies) from ``entry_modules`` and ``scripts``,
    transitively, within ``root``; a package's ``__init__.py`` counts for each of its modules.
    A superset of what an import loads, never an execution: the ``imported`` bytecode mode of a
    target this host cannot run (:mod:`layerkit.runtime.host`).
    """
    found: set[Path] = set()
    queue: list[tuple[str, Path | None]] = [(name, None) for name in entry_modules]
    queue += [("", script) for script in scripts]
    seen: set[str] = set()
    while queue:
        name, source = queue.pop()
        if source is None:
            if name in seen:
                continue
            seen.add(name)
            parts = name.split(".")
            for depth in range(1, len(parts)):  # importing a.b.c runs a and a.b first
                queue.append((".".join(parts[:depth]), None))
            source = _module_file(root, name)
            if source is None or source in found:
                continue
            found.add(source)
        try:
            tree = ast.parse(source.read_bytes(), filename=str(source))
        except (SyntaxError, ValueError):
            continue  # the compile step reports files the target cannot compile
        package = name if source.name == "__init__.py" else name.rpartition(".")[0]
        queue.extend((imported, None) for imported in _imported_names(tree, package))
    return tuple(sorted(p.relative_to(root).as_posix() for p in found))
