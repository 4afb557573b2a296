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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

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
    optional: tuple[OptionalModule, ...] = ()  # entry modules left out ("imported" mode)


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


@dataclass(frozen=True)
class OptionalModule:
    """A top-level module left out of a cold start: it imports a module nothing installed.

    A wheel may ship a module that only works with one of its extras installed (say a plugin
    for a library the layer does not carry); importing it fails, and that failure says nothing
    about the layer.
    """

    module: str
    distribution: str  # the distribution that ships it, "" when no metadata names one
    needs: str  # the module its import asked for

    def note(self) -> str:
        """One line for the build's output."""
        owner = f" (from {self.distribution})" if self.distribution else ""
        return (
            f"{self.module}{owner} is left out: importing it needs {self.needs}, which nothing "
            "on the layer's path provides (an optional dependency)"
        )


@dataclass(frozen=True)
class ColdStart:
    """What importing a tree's entry modules loaded, and the optional modules left out."""

    files: tuple[str, ...]  # the .py files under the root that were loaded, relative, sorted
    optional: tuple[OptionalModule, ...] = ()


def _on_path(name: str, path: Sequence[Path]) -> bool:
    """Whether a top-level module ``name`` is somewhere on ``path`` (a package, file or .so)."""
    for entry in path:
        if (
            (entry / name).is_dir()
            or (entry / f"{name}.py").is_file()
            or (entry / f"{name}.pyc").is_file()
            or (entry / f"{name}.so").is_file()
            or any(entry.glob(f"{name}.*.so"))
        ):
            return True
    return False


def _distributions(root: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """Top-level module -> (its distribution's name, the names it requires for an extra only)."""
    owners: dict[str, tuple[str, frozenset[str]]] = {}
    for info in sorted(root.glob("*.dist-info")):
        metadata = info / "METADATA"
        text = metadata.read_text("utf-8", "replace") if metadata.is_file() else ""
        name = next(
            (line[5:].strip() for line in text.splitlines() if line.startswith("Name:")),
            info.name.split("-", 1)[0],
        )
        always, extras = set(), set()
        for line in text.splitlines():
            if not line.startswith("Requires-Dist:"):
                continue
            try:
                requirement = Requirement(line.split(":", 1)[1].strip())
            except InvalidRequirement:
                continue
            marker = str(requirement.marker or "")
            (extras if "extra" in marker else always).add(canonicalize_name(requirement.name))
        for module in _dist_top_levels(info):
            owners.setdefault(module, (name, frozenset(extras - always)))
    return owners


def split_optional(
    failures: Sequence[tuple[str, str]],
    missing: Mapping[str, str],
    entry_modules: Sequence[str],
    path: Sequence[Path],
) -> tuple[tuple[OptionalModule, ...], tuple[tuple[str, str], ...]]:
    """Split import ``failures`` into optional modules and the failures that count.

    ``missing`` maps a failed subject to the module its ImportError named. A failure is an
    optional module when the subject is one of ``entry_modules``, the module it asked for is
    another top-level name that no folder of ``path`` provides, and the subject's
    distribution requires a distribution of that name for one of its extras only. A module
    that imports something its distribution never declares is a failure: nothing says it is
    optional.
    """
    owners: dict[str, tuple[str, frozenset[str]]] = {}
    for entry in reversed(path) if failures else ():
        owners.update(_distributions(entry))  # the first folder on the path wins
    optional, fatal = [], []
    for subject, trace in failures:
        needs = missing.get(subject, "")
        top = needs.split(".")[0]
        distribution, for_extras = owners.get(subject.split(".")[0], ("", frozenset()))
        if (
            subject in entry_modules
            and top
            and top != subject.split(".")[0]
            and not _on_path(top, path)
            and canonicalize_name(top) in for_extras
        ):
            optional.append(OptionalModule(subject, distribution, needs))
        else:
            fatal.append((subject, trace))
    return tuple(optional), tuple(fatal)


def cold_start(
    root: Path,
    python: TargetPython | Path,
    entry_modules: Sequence[str],
    *,
    search_path: Sequence[Path] = (),
    scripts: Sequence[Path] = (),
) -> ColdStart:
    """Import ``entry_modules`` (then run ``scripts``) in a fresh target interpreter.

    The interpreter runs isolated with ``sys.path = [root, *search_path, stdlib]``; the result
    lists the ``.py`` files under ``root`` that were loaded. An entry module whose import fails
    only because it imports a module that nothing on that path provides, and that its
    distribution does not require (an optional dependency), is left out as an
    :class:`OptionalModule`. Any other failure is a BuildError: compiling "what a cold start
    loads" is meaningless if the cold start itself fails.
    """
    outcome = as_target_python(python).probe([root, *search_path], entry_modules, scripts)
    optional, fatal = split_optional(
        outcome.failures, dict(outcome.missing), entry_modules, [root, *search_path]
    )
    if fatal:
        raise BuildError(_import_failure(root, fatal))
    resolved = root.resolve()
    left_out = {o.module for o in optional}
    found = set()
    for name in outcome.files:
        path = Path(name).resolve()
        if path.suffix == ".py" and path.is_relative_to(resolved):
            rel = path.relative_to(resolved)
            if rel.parts[0].removesuffix(".py") not in left_out:
                found.add(rel.as_posix())
    return ColdStart(tuple(sorted(found)), tuple(optional))


def _import_failure(root: Path, fatal: Sequence[tuple[str, str]]) -> str:
    """One paragraph for imports that failed: each subject with its exception's last line."""
    shown = "; ".join(
        f"importing {subject!r} from {root} failed ({_last_line(trace)})"
        for subject, trace in fatal[:3]
    )
    more = f"; {len(fatal) - 3} more failed too" if len(fatal) > 3 else ""
    return (
        f"{shown}{more}, with only this layer and the layers it requires on the path. "
        "Add the missing distribution to the layer's requirements (or to a layer it "
        "requires); when a [slim] rule removed the module, add a keep pattern for it; when "
        "the failing module is an optional part of its wheel that no function uses, remove "
        "it with a [slim] remove pattern."
    )


def _last_line(trace: str) -> str:
    """The exception line of a traceback (its last non-empty line)."""
    lines = [line.strip() for line in trace.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no traceback"


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
    ``scripts``; see :func:`cold_start`), ``none``, and ``sourceless`` (``x.pyc`` next to
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
    optional: tuple[OptionalModule, ...] = ()
    if mode == "imported" and imported is not None:
        files: Sequence[str] = tuple(imported)
    elif mode == "imported":
        if not entry_modules and not scripts:
            raise BuildError(
                f'bytecode = "imported" for {root} needs entry modules to import (the layer\'s '
                "top-level modules or its functions' handlers); none were given."
            )
        probed = cold_start(
            root, target_python, entry_modules, search_path=search_path, scripts=scripts
        )
        files, optional = probed.files, probed.optional
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
        optional=optional,
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


def _dist_top_levels(info: Path) -> set[str]:
    """The top-level names a ``*.dist-info`` folder claims: ``top_level.txt``, else its RECORD."""
    top = info / "top_level.txt"
    record = info / "RECORD"
    if top.is_file():
        return {
            line.strip().replace("/", ".").split(".")[0]
            for line in top.read_text(encoding="utf-8").splitlines()
        }
    if record.is_file():
        return _record_top_levels(record.read_text(encoding="utf-8"))
    return set()


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
        names.update(_dist_top_levels(info))
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
