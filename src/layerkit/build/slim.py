"""Slimming a staged layer tree: ordered passes that each report what they removed.

The tree is a layer's ``python/`` folder, installed by ``uv pip install --target --no-deps``.
Every pass has two halves: a pure *planner* that takes a :class:`Tree` snapshot (relative POSIX
paths and sizes) and returns the paths to remove, unit-tested on synthetic trees, and a thin edge
(:func:`_apply_removals`, :func:`strip_pass`) that touches the disk.

Safe by default (each rule below once broke a real layer): dist-info metadata and licence files
are never removed, ``docs`` folders that are Python packages (``botocore/docs``, ``boto3/docs``)
are kept, ``strip`` only touches extension modules, never the auditwheel-grafted ``*.libs/``
folders, and no installed file is modified in place (uv may hard-link them from its cache): a
stripped copy is written next to the original and renamed over it. Aggressive pruning is opt-in
per layer through ``[slim] remove = [...]`` patterns; a ``keep`` pattern always wins over every
pass.
"""

from __future__ import annotations

import csv
import difflib
import fnmatch
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from layerkit.build.memo import Memo, NoMemo, memo_key
from layerkit.build.tools import Stripper, SystemStrip, default_workers
from layerkit.digest import sha256_file
from layerkit.errors import BuildError, SpecError
from layerkit.project.spec import SlimConfig
from layerkit.runtime.target import Target

#: Folder names removed by the tests pass (never when the folder is matched by a keep pattern).
TEST_DIRS = frozenset({"tests", "test"})
#: Folder names removed by the examples pass.
EXAMPLE_DIRS = frozenset({"examples"})
#: Folder names removed by the docs pass, unless the folder is a Python package.
DOC_DIRS = frozenset({"docs", "doc"})
#: Build-only inputs: C/C++/Cython sources and headers, static libraries, Cython templates.
SOURCE_SUFFIXES = frozenset(
    {".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".pyx", ".pxd", ".pxi", ".a", ".tp"}
)
#: Files that are licences: never removed by any pass.
_LICENCE_RE = re.compile(r"^(licen[cs]e|copying|notice|authors)([._-].*)?$", re.IGNORECASE)
_PYC_TAG_RE = re.compile(r"^[^.]+\.(?P<tag>[a-z]+-\d+)\.pyc$")  # no .opt-N: Lambda runs without -O
_ELF_MAGIC = b"\x7fELF"


@dataclass(frozen=True)
class PassResult:
    """What one pass removed: counts, bytes saved and a few example paths for the report."""

    name: str
    removed_files: int
    removed_bytes: int
    examples: tuple[str, ...]
    note: str = ""
    unsafe: tuple[str, ...] = ()  # strip: files whose stripped copy would not load (kept)


@dataclass(frozen=True)
class SlimResult:
    """Every pass, in the order they ran."""

    passes: tuple[PassResult, ...]

    @property
    def removed_bytes(self) -> int:
        """Bytes saved by all passes together."""
        return sum(p.removed_bytes for p in self.passes)

    @property
    def removed_files(self) -> int:
        """Files removed (or, for strip, rewritten) by all passes together."""
        return sum(p.removed_files for p in self.passes)


@dataclass(frozen=True)
class Tree:
    """A snapshot of a staged tree: every file's relative POSIX path and its size in bytes."""

    files: Mapping[str, int]

    @classmethod
    def scan(cls, root: Path) -> Tree:
        """Read the tree under ``root`` (symlinks are listed, never followed)."""
        found: dict[str, int] = {}
        top = os.fspath(root)
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            rel = os.path.relpath(dirpath, top).replace(os.sep, "/")
            prefix = "" if rel == "." else rel + "/"
            links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
            for name in filenames + links:
                found[prefix + name] = os.lstat(os.path.join(dirpath, name)).st_size
        return cls(found)

    def without(self, removed: Iterable[str]) -> Tree:
        """Return the snapshot after ``removed`` are gone."""
        gone = set(removed)
        return Tree({p: s for p, s in self.files.items() if p not in gone})

    @property
    def packages(self) -> frozenset[str]:
        """Folders that are regular Python packages (hold an ``__init__`` module)."""
        return frozenset(
            posixpath.dirname(p) or "."
            for p in self.files
            if p.endswith(("/__init__.py", "/__init__.pyc")) or p in ("__init__.py", "__init__.pyc")
        )


def matches(path: str, patterns: Iterable[str]) -> bool:
    """Whether ``path`` or one of the folders above it matches a glob pattern.

    Patterns are matched against POSIX paths relative to the layer's ``python/`` folder with
    :func:`fnmatch.fnmatchcase` (``*`` also crosses ``/``), so ``sklearn/datasets/descr`` removes
    that whole folder and ``*/tests/data/*.csv`` matches at any depth.
    """
    pats = tuple(patterns)
    if not pats:
        return False
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatchcase(c, p) for c in candidates for p in pats)


def is_protected(path: str, keep: Sequence[str] = ()) -> bool:
    """Files no pass may remove: dist-info metadata, licence files and ``keep`` matches."""
    parts = path.split("/")
    if any(part.endswith(".dist-info") for part in parts[:-1]):
        return True
    if _LICENCE_RE.match(parts[-1]):
        return True
    return matches(path, keep)


def _in_dir_named(path: str, names: frozenset[str]) -> str | None:
    """Return the first folder of ``path`` whose name is in ``names``, or None."""
    parts = path.split("/")
    for i, part in enumerate(parts[:-1]):
        if part in names:
            return "/".join(parts[: i + 1])
    return None


# --- planners: pure functions from a Tree (and settings) to the paths to remove ---------------


def plan_uv_lock(tree: Tree) -> tuple[str, ...]:
    """Plan removing the empty ``.lock`` file uv leaves in a ``--target`` folder."""
    return tuple(p for p in tree.files if p == ".lock" and tree.files[p] == 0)


def plan_bin(tree: Tree) -> tuple[str, ...]:
    """Plan removing ``bin/``: scripts pointing at the build machine's Python."""
    return tuple(p for p in tree.files if p.startswith("bin/"))


@dataclass(frozen=True)
class Installed:
    """What the installed distributions' metadata says about the top of a tree."""

    recorded_dirs: frozenset[str] = frozenset()  # top-level folders their RECORD files list
    top_levels: frozenset[str] = frozenset()  # what their top_level.txt files call importable

    @classmethod
    def read(cls, root: Path) -> Installed:
        """Read every ``*.dist-info/RECORD`` and ``top_level.txt`` directly under ``root``."""
        dirs: set[str] = set()
        tops: set[str] = set()
        for info in sorted(root.glob("*.dist-info")):
            record = info / "RECORD"
            if record.is_file():
                with record.open(encoding="utf-8", newline="") as handle:
                    for row in csv.reader(handle):
                        path = row[0] if row else ""
                        if "/" in path and not path.startswith(("../", "/")):
                            dirs.add(path.split("/", 1)[0])
            top = info / "top_level.txt"
            if top.is_file():
                tops.update(
                    line.strip().split("/")[0]
                    for line in top.read_text(encoding="utf-8").splitlines()
                )
        return cls(frozenset(dirs), frozenset(tops) - {""})


def is_module_file(name: str) -> bool:
    """Whether a file name is something Python imports: source, bytecode, an extension."""
    return name.endswith((".py", ".pyc", ".so")) or ".so." in name


def plan_wheel_data(tree: Tree, installed: Installed) -> tuple[str, ...]:
    """Files a wheel installs as data (``.data/data``, ``.data/headers``), not as code.

    An installer puts a wheel's data files at the top of a ``--target`` folder (fonttools'
    ``share/man/man1/ttx.1``). Such a folder is listed by a RECORD, is not a top-level name
    of its distribution (top_level.txt) and holds no module at any depth, so nothing imports
    it. Its scripts (``.data/scripts``) land in ``bin/``, which the bin pass removes.
    """
    candidates = {
        d
        for d in installed.recorded_dirs - installed.top_levels
        if not d.endswith((".dist-info", ".libs")) and d not in {"__pycache__", "bin"}
    }
    by_dir: dict[str, list[str]] = {}
    for path in tree.files:
        top = path.split("/", 1)[0]
        if top in candidates and "/" in path:
            by_dir.setdefault(top, []).append(path)
    return tuple(
        path
        for folder in sorted(by_dir)
        if not any(is_module_file(PurePosixPath(p).name) for p in by_dir[folder])
        for path in by_dir[folder]
    )


def plan_bytecode(tree: Tree, target: Target) -> tuple[str, ...]:
    """Bytecode that cannot serve the target: other interpreters' tags, ``.pyo``, stale pycs.

    Kept: ``__pycache__/*.cpython-<target>.pyc`` (the bytecode pass rewrites them, hash-based)
    and legacy ``x.pyc`` without an ``x.py`` next to it (a sourceless module: its code).
    Removed: every other ``__pycache__`` entry, ``*.pyo``, and ``x.pyc`` shadowed by ``x.py``.
    """
    tag = "cpython-{}{}".format(*target.python_version)
    out = []
    for path in tree.files:
        folder, _, name = path.rpartition("/")
        if path.endswith(".pyo"):
            out.append(path)
        elif folder == "__pycache__" or folder.endswith("/__pycache__"):
            match = _PYC_TAG_RE.match(name)
            if match is None or match.group("tag") != tag:
                out.append(path)
        elif path.endswith(".pyc") and path[:-1] in tree.files:
            out.append(path)
    return tuple(out)


def plan_named_dirs(
    tree: Tree, names: frozenset[str], files: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    """Every file under a folder called one of ``names``, and files called one of ``files``."""
    return tuple(
        p
        for p in tree.files
        if _in_dir_named(p, names) is not None or p.rpartition("/")[2] in files
    )


def plan_docs(tree: Tree) -> tuple[str, ...]:
    """Files under ``docs``/``doc`` folders that are not Python packages.

    ``botocore/docs`` and ``boto3/docs`` hold ``__init__.py`` and are imported: they stay.
    """
    packages = tree.packages
    out = []
    for path in tree.files:
        parts = path.split("/")
        for i, part in enumerate(parts[:-1]):
            if part in DOC_DIRS and "/".join(parts[: i + 1]) not in packages:
                out.append(path)
                break
    return tuple(out)


def plan_suffixes(tree: Tree, suffixes: frozenset[str]) -> tuple[str, ...]:
    """Files whose suffix is one of ``suffixes`` (``.pyi`` stubs, C/Cython sources)."""
    return tuple(p for p in tree.files if _suffix(p) in suffixes)


def _suffix(path: str) -> str:
    """The suffix of a POSIX path's last part, as :attr:`PurePosixPath.suffix` gives it."""
    name = path.rpartition("/")[2]
    dot = name.rfind(".")
    return name[dot:] if 0 < dot < len(name) - 1 else ""


def _data_entries(tree: Tree, prefix: str) -> dict[str, list[str]]:
    """``{service: [files]}`` for ``<prefix>/<service>/...``; top-level data files excluded."""
    found: dict[str, list[str]] = {}
    for path in tree.files:
        if path.startswith(prefix):
            rest = path[len(prefix) :].split("/")
            if len(rest) > 1:
                found.setdefault(rest[0], []).append(path)
    return found


def plan_aws_data(
    tree: Tree, package: str, services: Sequence[str] | None, *, strict: bool
) -> tuple[str, ...]:
    """Service folders under ``<package>/data/`` that are not in ``services``.

    Top-level files (``endpoints.json``, ``partitions.json``, ``_retry.json``,
    ``sdk-default-configuration.json``) are always kept: botocore needs them for any client.
    With ``strict`` (botocore), a listed service that botocore does not ship is a SpecError:
    a typo would otherwise surface only as UnknownServiceError in production.
    """
    if services is None:
        return ()
    entries = _data_entries(tree, f"{package}/data/")
    if not entries:
        return ()
    if strict:
        unknown = [s for s in services if s not in entries]
        if unknown:
            hints = "; ".join(
                f"{s!r} (did you mean {', '.join(difflib.get_close_matches(s, entries, 3))}?)"
                if difflib.get_close_matches(s, entries, 3)
                else repr(s)
                for s in unknown
            )
            raise SpecError(
                f"layer.toml [slim] botocore-services lists {hints}, which this botocore does "
                f"not ship (it has {len(entries)} services, the folder names under "
                "botocore/data/). Fix the name; botocore's service names are the ones "
                "boto3.client() takes, e.g. 's3', 'dynamodb', 'lambda'."
            )
    wanted = set(services)
    return tuple(p for s, files in sorted(entries.items()) if s not in wanted for p in files)


def plan_patterns(tree: Tree, patterns: Sequence[str]) -> tuple[str, ...]:
    """Files matched by the layer's ``[slim] remove`` patterns (see :func:`matches`)."""
    return tuple(p for p in tree.files if matches(p, patterns))


def plan_strip(tree: Tree) -> tuple[str, ...]:
    """Extension modules to strip: ``*.so`` / ``*.so.N`` outside any ``*.libs/`` folder.

    auditwheel's grafted libraries (``numpy.libs``, ``scipy.libs``) break when stripped
    (the dynamic loader then fails with "ELF load command address/offset not page-aligned"):
    never touched.
    """
    out = []
    for path in tree.files:
        pure = PurePosixPath(path)
        if any(part.endswith(".libs") for part in pure.parts[:-1]):
            continue
        if pure.suffix == ".so" or ".so." in pure.name:
            out.append(path)
    return tuple(out)


# --- the edge: removing files and stripping ---------------------------------------------------


def _prune_empty_dirs(root: Path, removed: Iterable[str]) -> None:
    """Remove folders left empty by a pass (never ``root`` itself)."""
    top = os.fspath(root)
    parents = {posixpath.dirname(p) for p in removed}
    for folder in sorted(parents, key=lambda d: d.count("/"), reverse=True):
        current = folder
        while (
            current and os.path.isdir(full := os.path.join(top, current)) and not os.listdir(full)
        ):
            os.rmdir(full)
            current = posixpath.dirname(current)


def _apply_removals(
    root: Path, tree: Tree, name: str, planned: Iterable[str], keep: Sequence[str]
) -> tuple[PassResult, Tree]:
    """Delete the planned files except protected ones; return the result and the new snapshot."""
    doomed = sorted({p for p in planned if p in tree.files and not is_protected(p, keep)})
    for path in doomed:
        os.unlink(os.path.join(root, path))
    _prune_empty_dirs(root, doomed)
    result = PassResult(
        name=name,
        removed_files=len(doomed),
        removed_bytes=sum(tree.files[p] for p in doomed),
        examples=_examples(doomed),
    )
    return result, tree.without(doomed)


def _examples(paths: Sequence[str], count: int = 3) -> tuple[str, ...]:
    """Pick a few representative paths, one per folder, shortest first."""
    seen: dict[str, str] = {}
    for path in paths:
        parent = str(PurePosixPath(path).parent)
        seen.setdefault(parent, path)
    return tuple(sorted(seen.values(), key=lambda p: (len(p), p))[:count])


@dataclass(frozen=True)
class _Stripped:
    """What stripping one file did: its new size, or why its original was kept."""

    size: int | None = None  # the stripped size (None: untouched)
    refused: bool = False  # the tool refused the file
    unsafe: str = ""  # the stripped copy failed the ELF check (check.elf.load_problem)


def _strip_copy(tool: Stripper, full: Path, size: int, memo: Memo) -> _Stripped:
    """Strip a copy of ``full`` and rename it over ``full`` when smaller and still loadable.

    The stripped copy is proven first (:func:`layerkit.check.elf.load_problem`: it parses and
    every ``PT_LOAD`` offset agrees with its address modulo the page and its alignment); one
    that fails where the original passes is dropped and ``full`` keeps its original bytes.
    The result is looked up in the step cache first, by the file's sha256 and the tool's
    version; what strip did (or that it saved nothing) is kept there, and a cached copy is
    proven again.
    """
    from layerkit.check.elf import load_problem

    key = memo_key("strip", tool.description, tool.version() or "", sha256_file(full))
    cached = memo.get(key)
    if cached is not None and not cached:
        return _Stripped()
    fd, tmp_name = tempfile.mkstemp(prefix=".strip-", dir=full.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if cached is not None:
            tmp.write_bytes(cached)
            shutil.copymode(full, tmp)
        else:
            shutil.copy2(full, tmp)
            if not tool.strip(tmp):
                return _Stripped(refused=True)
        new_size = tmp.stat().st_size
        if new_size >= size:
            memo.put(key, b"")
            return _Stripped()
        if cached is None:
            memo.put(key, tmp.read_bytes())
        problem = load_problem(tmp)
        if problem is not None and load_problem(full) is None:  # strip broke a loadable file
            return _Stripped(unsafe=problem)
        os.replace(tmp, full)
        return _Stripped(new_size)
    finally:
        tmp.unlink(missing_ok=True)


def strip_pass(
    root: Path,
    tree: Tree,
    keep: Sequence[str],
    *,
    stripper: Stripper | None = None,
    memo: Memo | None = None,
) -> tuple[PassResult, Tree]:
    """Strip symbols from extension modules (the system ``strip`` unless ``stripper`` is given).

    ``--strip-unneeded`` keeps the dynamic symbol table an extension module is loaded through
    (``PyInit_*``) and drops the static symbol table and debug sections. Each file is copied,
    the copy stripped, proven loadable and renamed over the original (files may be hard links
    into uv's cache); one strip runs per core at a time, each on its own file. A missing
    ``strip``, a file it refuses and a stripped copy that fails the ELF check are skipped,
    counted and named in the pass's note (``unsafe`` lists the last kind). ``memo`` is the
    step cache.
    """
    tool, cache = stripper or SystemStrip(), memo or NoMemo()
    candidates = []
    for path in plan_strip(tree):
        full = root / path
        if is_protected(path, keep) or full.is_symlink():
            continue
        with full.open("rb") as handle:
            if handle.read(4) == _ELF_MAGIC:
                candidates.append(path)
    if tool.version() is None:
        return PassResult("strip", 0, 0, (), note=_not_stripped(tool, root, candidates)), tree
    with ThreadPoolExecutor(default_workers()) as pool:
        outcomes = list(
            pool.map(lambda p: _strip_copy(tool, root / p, tree.files[p], cache), candidates)
        )
    saved, done, refused, unsafe = 0, [], [], []
    sizes = dict(tree.files)
    for path, outcome in zip(candidates, outcomes, strict=True):
        if outcome.refused:
            refused.append(path)
        elif outcome.unsafe:
            unsafe.append(path)
        elif outcome.size is not None:
            saved += sizes[path] - outcome.size
            sizes[path] = outcome.size
            done.append(path)
    note = tool.description
    if refused:
        note += (
            f"; strip refused {len(refused)} file(s), left as they were: {', '.join(refused[:3])}"
        )
    if unsafe:
        note += (
            f"; {len(unsafe)} stripped file(s) failed the ELF check (would not load), "
            f"originals kept: {', '.join(unsafe[:3])}"
        )
    result = PassResult("strip", len(done), saved, _examples(done), note=note, unsafe=tuple(unsafe))
    return result, Tree(sizes)


def _not_stripped(tool: Stripper, root: Path, candidates: Sequence[str]) -> str:
    """The note of a strip pass that could not run: what was not stripped, and its cost."""
    from layerkit.check.elf import strippable_bytes

    missing = getattr(tool, "missing", "`strip` (binutils)")
    if not candidates:
        return f"skipped: {missing} not found"
    cost = sum(strippable_bytes(root / p) for p in candidates)
    return (
        f"skipped: {missing} not found, so {len(candidates)} extension module(s) were not "
        f"stripped; that costs about {cost:,} bytes unzipped (their symbol and debug sections)"
    )


# --- the pipeline ----------------------------------------------------------------------------

Planner = Callable[[Tree], Sequence[str]]


def removal_passes(
    config: SlimConfig, target: Target, installed: Installed = Installed()
) -> tuple[tuple[str, Planner], ...]:
    """List the removal passes for ``config`` in order, as ``(name, planner)`` pairs.

    ``installed`` is what the distributions' metadata says (for the wheel-data pass).
    """
    return (
        ("uv-lock", plan_uv_lock),
        ("bin", plan_bin),
        ("wheel-data", lambda t: plan_wheel_data(t, installed)),
        ("stale-bytecode", lambda t: plan_bytecode(t, target)),
        ("tests", lambda t: plan_named_dirs(t, TEST_DIRS, frozenset({"conftest.py"}))),
        ("examples", lambda t: plan_named_dirs(t, EXAMPLE_DIRS)),
        ("docs", plan_docs),
        ("stubs", lambda t: plan_suffixes(t, frozenset({".pyi"}))),
        ("sources", lambda t: plan_suffixes(t, SOURCE_SUFFIXES)),
        (
            "botocore-services",
            lambda t: plan_aws_data(t, "botocore", config.botocore_services, strict=True),
        ),
        (
            "boto3-resources",
            lambda t: plan_aws_data(t, "boto3", config.botocore_services, strict=False),
        ),
        ("layer-remove", lambda t: plan_patterns(t, config.remove)),
    )


def slim_tree(
    root: Path,
    config: SlimConfig,
    target: Target,
    *,
    stripper: Stripper | None = None,
    memo: Memo | None = None,
) -> SlimResult:
    """Slim the staged tree at ``root`` (a layer's ``python/`` folder) in place.

    Runs every removal pass in order, then strips extension modules when ``config.strip``.
    Files matched by ``config.keep``, dist-info metadata and licence files are never removed.
    ``stripper`` is the strip tool (the system's ``strip`` by default); ``memo`` the step
    cache strip results are kept in.
    """
    if not root.is_dir():
        raise BuildError(f"cannot slim {root}: it is not a folder (was the layer installed?).")
    tree = Tree.scan(root)
    results: list[PassResult] = []
    for name, planner in removal_passes(config, target, Installed.read(root)):
        result, tree = _apply_removals(root, tree, name, planner(tree), config.keep)
        results.append(result)
    if config.strip:
        result, tree = strip_pass(root, tree, config.keep, stripper=stripper, memo=memo)
        results.append(result)
    return SlimResult(tuple(results))
