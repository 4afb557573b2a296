"""Compiling a layer tree to bytecode with the TARGET interpreter, hash-based and reproducible.

Lambda's ``/opt`` and ``/var/task`` are read-only, so a module without shipped bytecode is compiled
again at every cold start. Timestamp-based ``.pyc`` files go stale once zipped (a zip stores times
at 2 s resolution, so a source's mtime no longer matches its pyc), so layerkit writes hash-based
pycs. It uses **unchecked-hash**: the interpreter trusts the pyc without reading or hashing the
source, the fastest load, and safe because a layer is immutable once built (a file changed after
the build is a different layer with a different hash). ``checked-hash`` is available for trees
that are edited after compiling.

The compilation itself runs in the target interpreter (python3.9 bytecode differs from 3.12's),
reached through the :class:`~layerkit.build.tools.TargetPython` protocol. It gets an explicit,
sorted file list (so ``imported`` mode compiles exactly what a cold start loads), reports
per-file failures as data instead of console text, sets the traceback path to where the tree
lives at run time (``/opt/python/...``, not the build folder) and hashes sets reproducibly: the
same tree gives the same bytes on every build, however many compiler processes share the work.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from layerkit.build.memo import Memo, NoMemo, memo_key
from layerkit.build.slim import is_module_file
from layerkit.build.tools import CompileOutcome, TargetPython, as_target_python, default_workers
from layerkit.errors import BuildError
from layerkit.project.spec import BYTECODE_MODES

MODES = BYTECODE_MODES
INVALIDATION_MODES = ("unchecked-hash", "checked-hash")
#: Top-level names in a ``--target`` folder that are never importable modules.
_NOT_MODULES = frozenset({"__pycache__", "bin", "..", "."})


@dataclass(frozen=True)
class BytecodeResult:
    """What the bytecode step did to a tree."""

    mode: str
    compiled_files: int
    added_bytes: int  # net change of the tree's size (negative when sourceless drops sources)
    removed_sources: int  # .py files replaced by their .pyc ("sourceless")
    invalidation: str = "unchecked-hash"
    failed: tuple[tuple[str, str], ...] = ()  # (relative path, error) the target cannot compile


def python_sources(root: Path) -> tuple[str, ...]:
    """Every ``.py`` under ``root`` that belongs to an importable tree, as sorted POSIX paths.

    Skipped: dist-info/data folders, ``bin/`` and anything under ``__pycache__``.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.endswith((".dist-info", ".data", ".egg-info"))
            and d != "__pycache__"
            and not (rel_dir == Path(".") and d == "bin")
        )
        found.extend((rel_dir / f).as_posix() for f in filenames if f.endswith(".py"))
    return tuple(sorted(found))


def _tree_bytes(root: Path) -> int:
    return sum((Path(d) / f).lstat().st_size for d, _, files in os.walk(root) for f in files)


def imported_files(
    root: Path,
    python: TargetPython | Path,
    entry_modules: Sequence[str],
    *,
    search_path: Sequence[Path] = (),
    scripts: Sequence[Path] = (),
) -> tuple[str, ...]:
    """Import ``entry_modules`` (then run ``scripts``) in a fresh target interpreter.

    The interpreter runs isolated with ``sys.path = [root, *search_path, stdlib]`` and returns
    the ``.py`` files under ``root`` that were loaded, relative and sorted. Any import that
    fails is a BuildError: compiling "what a cold start loads" is meaningless if the cold start
    itself fails.
    """
    outcome = as_target_python(python).probe([root, *search_path], entry_modules, scripts)
    if outcome.failures:
        name, trace = outcome.failures[0]
        raise BuildError(
            f"finding the modules a cold start loads: importing {name!r} from {root} failed "
            f"({len(outcome.failures)} failure(s) in all):\n{trace}\nEvery entry module must "
            "import with only this layer and the layers it requires on the path; fix the layer "
            '(or its [slim] keep patterns) or choose bytecode = "all".'
        )
    resolved = root.resolve()
    found = set()
    for name in outcome.files:
        path = Path(name).resolve()
        if path.suffix == ".py" and path.is_relative_to(resolved):
            found.add(path.relative_to(resolved).as_posix())
    return tuple(sorted(found))


def compile_tree(
    root: Path,
    python: TargetPython | Path,
    mode: str,
    *,
    search_path: Sequence[Path] = (),
    entry_modules: Sequence[str] = (),
    scripts: Sequence[Path] = (),
    workers: int | None = None,
    invalidation: str = "unchecked-hash",
    dest_dir: str = "/opt/python",
    imported: Sequence[str] | None = None,
    memo: Memo | None = None,
) -> BytecodeResult:
    """Compile the ``.py`` files under ``root`` with the target interpreter ``python``.

    ``python`` is a :class:`~layerkit.build.tools.TargetPython` or the absolute path
    :func:`layerkit.runtime.target.find_interpreter` returns. Modes: ``all`` (every module),
    ``imported`` (only the modules loaded by importing ``entry_modules`` and running
    ``scripts``; see :func:`imported_files`), ``none``, and ``sourceless`` (``x.pyc`` next to
    and in place of ``x.py``: smallest, but tracebacks lose source lines). Pycs go to
    ``__pycache__`` except in sourceless mode. ``dest_dir`` is where the tree is found at run
    time (``/opt/python`` for a layer, ``/var/task`` for a function), used as the file name in
    code objects. Files the target cannot compile (syntax of another Python version) are left
    as source and listed in ``failed``. ``workers`` compiler processes run at once (default:
    one per core); the bytes do not depend on it. ``imported`` gives the ``imported`` mode its
    file list instead of running ``python`` to find it (a target the host cannot run:
    :func:`layerkit.build.targets.static_imported_files`). With a step cache (``memo``), a
    module compiled before (same source, run-time path, compiler and modes) is written from
    it and only the others go to the interpreter: :func:`compile_memoized`.
    """
    if mode not in MODES:
        raise BuildError(f"bytecode mode {mode!r} is unknown; choose one of {', '.join(MODES)}.")
    if invalidation not in INVALIDATION_MODES:
        raise BuildError(
            f"invalidation mode {invalidation!r} is unknown; choose one of "
            f"{', '.join(INVALIDATION_MODES)}."
        )
    if mode == "none" or not python_sources(root):  # nothing to compile (an empty layer)
        return BytecodeResult(mode, 0, 0, 0, invalidation)
    target_python = as_target_python(python)
    before = _tree_bytes(root)
    if mode == "imported" and imported is not None:
        files: Sequence[str] = tuple(imported)
    elif mode == "imported":
        if not entry_modules and not scripts:
            raise BuildError(
                f'bytecode = "imported" for {root} needs entry modules to import (the layer\'s '
                "top-level modules or its functions' handlers); none were given."
            )
        files = imported_files(
            root, target_python, entry_modules, search_path=search_path, scripts=scripts
        )
    else:
        files = python_sources(root)
    outcome = compile_memoized(
        target_python,
        root,
        files,
        legacy=mode == "sourceless",
        invalidation=invalidation,
        dest_dir=dest_dir,
        workers=workers or default_workers(),
        memo=memo or NoMemo(),
    )
    removed = 0
    if mode == "sourceless":
        removed = _drop_sources(root, outcome.compiled)
    return BytecodeResult(
        mode=mode,
        compiled_files=len(outcome.compiled),
        added_bytes=_tree_bytes(root) - before,
        removed_sources=removed,
        invalidation=invalidation,
        failed=outcome.failed,
    )


def pyc_path(root: Path, rel: str, *, legacy: bool, cache_tag: str) -> Path:
    """Where the pyc of ``root/rel`` goes: beside it (``legacy``) or in ``__pycache__``."""
    source = root / rel
    if legacy:
        return source.with_name(source.name + "c")
    return source.parent / "__pycache__" / f"{source.stem}.{cache_tag}.pyc"


def compile_memoized(
    python: TargetPython,
    root: Path,
    files: Sequence[str],
    *,
    legacy: bool,
    invalidation: str,
    dest_dir: str,
    workers: int,
    memo: Memo,
) -> CompileOutcome:
    """``python.compile`` through the step cache: only modules not compiled before are compiled.

    A module's key is its source's sha256, the path its code objects name (``dest_dir/rel``),
    the compiler's identity (full version and magic number), the invalidation mode and where
    the pyc goes; a hit is written where the compiler would have written it, with the same
    bytes. What the interpreter compiles is kept; files it could not compile are not.
    """
    if isinstance(memo, NoMemo) or not files:
        return python.compile(
            root, files, legacy=legacy, invalidation=invalidation, dest_dir=dest_dir,
            workers=workers,
        )  # fmt: skip
    compiler = python.compiler()
    place = "legacy" if legacy else compiler.cache_tag
    keys: dict[str, str] = {}
    hits: list[str] = []
    todo: list[str] = []
    for rel in files:
        digest = hashlib.sha256((root / rel).read_bytes()).digest()
        key = memo_key(
            "pyc", compiler.identity, invalidation, place, f"{dest_dir.rstrip('/')}/{rel}", digest
        )
        keys[rel] = key
        cached = memo.get(key)
        if cached is None:
            todo.append(rel)
            continue
        out = pyc_path(root, rel, legacy=legacy, cache_tag=compiler.cache_tag)
        out.parent.mkdir(exist_ok=True)
        out.write_bytes(cached)
        hits.append(rel)
    outcome = CompileOutcome(())
    if todo:
        outcome = python.compile(
            root, todo, legacy=legacy, invalidation=invalidation, dest_dir=dest_dir,
            workers=workers,
        )  # fmt: skip
        for rel in outcome.compiled:
            out = pyc_path(root, rel, legacy=legacy, cache_tag=compiler.cache_tag)
            memo.put(keys[rel], out.read_bytes())
    return CompileOutcome(tuple(sorted([*hits, *outcome.compiled])), outcome.failed)


def _drop_sources(root: Path, compiled: Iterable[str]) -> int:
    """Remove each compiled ``x.py`` (its ``x.pyc`` replaces it) and its unused ``__pycache__``."""
    count = 0
    for rel in compiled:
        source = root / rel
        if source.with_suffix(".pyc").is_file():
            source.unlink()
            count += 1
            cache = source.parent / "__pycache__"
            for stale in cache.glob(f"{source.stem}.*.pyc") if cache.is_dir() else ():
                stale.unlink()
    for cache in sorted(root.rglob("__pycache__"), reverse=True):
        if cache.is_dir() and not any(cache.iterdir()):
            cache.rmdir()
    return count


def _record_top_levels(record: str) -> set[str]:
    """Top-level names from the paths in a RECORD file."""
    names = set()
    for line in record.splitlines():
        path = line.split(",", 1)[0].strip()
        if not path:
            continue
        first = PurePosixPath(path).parts[0]
        if "/" not in path and first.endswith(".py"):
            names.add(first[:-3])
        elif "/" not in path and first.endswith(".so"):
            names.add(first.split(".", 1)[0])
        elif "/" in path:
            names.add(first)
    return names


def _holds_module(folder: Path) -> bool:
    """Whether ``folder`` is a package: a module file somewhere below it (namespace ones too).

    A folder of wheel data (``share/man/...``) is not, whatever a RECORD says.
    """
    if (folder / "__init__.py").is_file():
        return True
    return any(is_module_file(name) for _, _, files in os.walk(folder) for name in files)


def top_level_modules(root: Path) -> tuple[str, ...]:
    """Importable top-level modules of every distribution installed in ``root``, sorted.

    Read from each ``*.dist-info/top_level.txt``, or from its RECORD when that file is absent,
    and kept only when the module is really there (a package folder, a ``.py``/``.pyc`` file or
    an extension module), so names whose files a slim pass removed are not reported.
    Metadata folders, ``*.libs``, ``bin`` and ``__pycache__`` are never modules.
    """
    names: set[str] = set()
    for info in sorted(root.glob("*.dist-info")):
        top = info / "top_level.txt"
        record = info / "RECORD"
        if top.is_file():
            names.update(
                line.strip().replace("/", ".").split(".")[0]
                for line in top.read_text(encoding="utf-8").splitlines()
            )
        elif record.is_file():
            names.update(_record_top_levels(record.read_text(encoding="utf-8")))
    found = []
    for name in names:
        if (
            not name
            or name in _NOT_MODULES
            or name.endswith((".dist-info", ".data", ".libs", ".egg-info"))
            or not name.isidentifier()
        ):
            continue
        if (
            _holds_module(root / name)
            or (root / f"{name}.py").is_file()
            or (root / f"{name}.pyc").is_file()
            or any(root.glob(f"{name}.*.so"))
            or (root / f"{name}.so").is_file()
        ):
            found.append(name)
    return tuple(sorted(found))
