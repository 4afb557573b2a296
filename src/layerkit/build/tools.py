"""The tools a build drives, behind small protocols: the installer, the target interpreter, strip.

The build steps only talk to these protocols, so unit tests hand them fakes and start neither
uv nor an interpreter; the real implementations below wrap uv (:mod:`layerkit.build.install`),
the target runtime's interpreter (python3.9 for python3.9: its bytecode and its import system
are what Lambda runs) and binutils' ``strip``.

The interpreter runs small drivers over :func:`py_compile.compile` (the function ``compileall``
calls per file) and :func:`importlib.import_module`: they take an explicit job on stdin and
write their answer as JSON, so failures come back as data, never as console text. The compiler
runs with ``PYTHONHASHSEED=0`` (set constants are marshalled in hash order) in several
processes at once; each file is compiled on its own, so how the files are shared between the
processes never changes a byte.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import subprocess
import sysconfig
import tempfile
import threading
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from layerkit.build.lock import LockedPackage
from layerkit.build.memo import Memo, NoMemo, step_cache
from layerkit.build.uv import Indexes
from layerkit.errors import BuildError
from layerkit.runtime.host import Execution, HostSupport, host_support
from layerkit.runtime.layercache import default_cache_dir
from layerkit.runtime.target import Target, find_interpreter


@dataclass(frozen=True)
class CompileOutcome:
    """What the target interpreter compiled: relative paths, and (path, error) it could not."""

    compiled: tuple[str, ...]
    failed: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Compiler:
    """What shapes a pyc besides its source: the pyc names and the interpreter's compiler.

    ``cache_tag`` names the pycs in ``__pycache__`` (``cpython-39``); ``identity`` is the
    interpreter's full version and bytecode magic number, part of every step-cache key of a
    compiled module.
    """

    cache_tag: str
    identity: str


@dataclass(frozen=True)
class ProbeOutcome:
    """What importing modules (and running scripts) in a fresh target interpreter did.

    ``files`` are the absolute paths of every module file loaded; ``failures`` are (module or
    script, the end of its traceback) for each one that raised; ``missing`` are (module or
    script, the module name) for each failure that was an ``ImportError`` naming a module that
    could not be found (its ``name`` attribute).
    """

    files: tuple[str, ...]
    failures: tuple[tuple[str, str], ...] = ()
    missing: tuple[tuple[str, str], ...] = ()


class Installer(Protocol):
    """Installs locked distributions into a folder for a target (the build's network I/O)."""

    def install(self, packages: Sequence[LockedPackage], dest: Path, target: Target) -> None:
        """Install exactly ``packages`` into ``dest`` (created if needed) for ``target``."""
        ...


class TargetPython(Protocol):
    """The target runtime's interpreter, as the build uses it."""

    @property
    def name(self) -> str:
        """A short name for messages (``python3.9``)."""
        ...

    def compile(
        self,
        root: Path,
        files: Sequence[str],
        *,
        legacy: bool,
        invalidation: str,
        dest_dir: str,
        workers: int,
    ) -> CompileOutcome:
        """Compile ``files`` (relative to ``root``) to hash-based pycs.

        ``legacy`` writes ``x.pyc`` beside ``x.py`` instead of ``__pycache__``; ``dest_dir`` is
        where the tree lives at run time (the file name recorded in code objects).
        """
        ...

    def compiler(self) -> Compiler:
        """The interpreter's cache tag and compiler identity."""
        ...

    def probe(
        self, path: Sequence[Path], modules: Sequence[str], scripts: Sequence[Path]
    ) -> ProbeOutcome:
        """Import ``modules``, then run ``scripts``, isolated with ``path`` before the stdlib."""
        ...

    def stdlib_modules(self) -> frozenset[str]:
        """The top-level modules of the interpreter's standard library."""
        ...


class Stripper(Protocol):
    """Strips symbols from ELF files (extension modules)."""

    @property
    def description(self) -> str:
        """What is run, for the slim report (``strip --strip-unneeded``)."""
        ...

    def version(self) -> str | None:
        """The tool's version line, or None when it is not installed."""
        ...

    def strip(self, path: Path) -> bool:
        """Strip ``path`` in place; False when the tool refused the file."""
        ...


@dataclass(frozen=True)
class Tools:
    """The tools one build uses.

    ``host`` says whether this machine can run the target's code (None: natively). When it
    cannot (an arm64 target on an x86_64 host without qemu-user), ``python`` is the host's
    interpreter of the target's Python version: it compiles (a ``.pyc`` does not depend on the
    CPU) but never imports the target's code (:mod:`layerkit.runtime.host`).
    """

    installer: Installer
    python: TargetPython
    stripper: Stripper
    host: HostSupport | None = None
    memo: Memo = field(default_factory=NoMemo)  # the step cache (layerkit.build.memo)

    @property
    def execution(self) -> Execution:
        """How the target's code runs here: native, emulated or static only."""
        return Execution.NATIVE if self.host is None else self.host.execution

    @property
    def runs_code(self) -> bool:
        """Whether the build may import and run the target's code on this host."""
        return self.host is None or self.host.runs_code

    def versions(self) -> dict[str, str]:
        """The versions of the host tools that shape a layer's bytes."""
        return byte_shaping_versions(self.stripper)


def byte_shaping_versions(stripper: Stripper) -> dict[str, str]:
    """Host tools whose version changes a layer's bytes: zlib (deflate) and strip."""
    return {"zlib": zlib.ZLIB_RUNTIME_VERSION, "strip": stripper.version() or "absent"}


# ---------------------------------------------------------------- the real tools


class UvInstaller:
    """Installs with ``uv pip install --target`` (see :mod:`layerkit.build.install`)."""

    def __init__(self, indexes: Indexes | None = None) -> None:
        # Finding uv reads sysconfig, whose first use is not thread-safe (another thread may
        # see it half-initialised, EXE = None); builds install from several threads at once.
        sysconfig.get_config_vars()
        self.indexes = indexes  # the project's indexes (None: uv's default, PyPI)

    def install(self, packages: Sequence[LockedPackage], dest: Path, target: Target) -> None:
        """Install exactly ``packages`` into ``dest`` for ``target``."""
        from layerkit.build.install import install_packages

        install_packages(packages, dest, target, self.indexes)


@functools.lru_cache(maxsize=8)
def _strip_version(tool: str) -> str:
    proc = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    return (proc.stdout.splitlines() or ["unknown"])[0]


#: The Debian package carrying each foreign architecture's strip.
STRIP_PACKAGES = {"aarch64": "binutils-aarch64-linux-gnu", "x86_64": "binutils-x86-64-linux-gnu"}


class SystemStrip:
    """binutils ``strip`` (found on PATH unless ``tool`` is given).

    ``name`` is the executable looked up: ``strip`` for the host's own architecture,
    ``aarch64-linux-gnu-strip`` for arm64 files on an x86_64 host (the host's ``strip`` cannot
    read them: "Unable to recognise the format"); see :meth:`for_target`.
    """

    def __init__(
        self,
        tool: str | None = None,
        args: Sequence[str] = ("--strip-unneeded",),
        *,
        name: str = "strip",
    ):
        self._tool = tool
        self.args = tuple(args)
        self.name = name

    @classmethod
    def for_target(cls, target: Target) -> SystemStrip:
        """The strip that reads ``target``'s ELF files on this host."""
        if target.machine == platform.machine():
            return cls()
        return cls(name=f"{target.machine}-linux-gnu-strip")

    @property
    def missing(self) -> str:
        """How to name this strip when it is not installed (with the package carrying it)."""
        if self.name == "strip":
            return "`strip` (binutils)"
        machine = self.name.removesuffix("-linux-gnu-strip")
        package = STRIP_PACKAGES.get(machine, f"binutils-{machine}-linux-gnu")
        return f"`{self.name}` (Debian package {package})"

    @property
    def tool(self) -> str | None:
        """The executable, or None when none is installed."""
        return self._tool or shutil.which(self.name)

    @property
    def description(self) -> str:
        """``strip --strip-unneeded``."""
        return f"strip {' '.join(self.args)}"

    def version(self) -> str | None:
        """The first line of ``strip --version`` (asked once per process)."""
        tool = self.tool
        return None if tool is None else _strip_version(tool)

    def strip(self, path: Path) -> bool:
        """Run strip on ``path``; False when it fails."""
        tool = self.tool
        if tool is None:
            return False
        proc = subprocess.run(
            [tool, *self.args, str(path)], capture_output=True, text=True, check=False
        )
        return proc.returncode == 0


_COMPILE_DRIVER = r"""
import json, os, py_compile, sys
from importlib.util import cache_from_source
job = json.load(sys.stdin)
mode = py_compile.PycInvalidationMode[job["invalidation"].upper().replace("-", "_")]
done, failed = [], []
for rel in job["files"]:
    src = os.path.join(job["root"], rel)
    cfile = src + "c" if job["legacy"] else cache_from_source(src)
    dfile = job["dest"].rstrip("/") + "/" + rel
    try:
        py_compile.compile(src, cfile=cfile, dfile=dfile, doraise=True, invalidation_mode=mode)
    except (py_compile.PyCompileError, SyntaxError, ValueError, UnicodeError) as exc:
        failed.append([rel, (str(exc).strip().splitlines() or [repr(exc)])[-1][:300]])
    else:
        done.append(rel)
with open(job["out"], "w") as handle:
    json.dump({"compiled": done, "failed": failed}, handle)
"""

_COMPILER_DRIVER = r"""
import importlib.util, json, sys
job = json.load(sys.stdin)
with open(job["out"], "w") as handle:
    json.dump({"tag": sys.implementation.cache_tag, "version": sys.version,
               "magic": importlib.util.MAGIC_NUMBER.hex()}, handle)
"""

_PROBE_DRIVER = r"""
import importlib, json, os, runpy, sys, traceback
job = json.load(sys.stdin)
sys.path[:0] = job["path"]
failures, missing = [], []
def failed(subject, exc):
    failures.append([subject, traceback.format_exc()[-1500:]])
    if isinstance(exc, ImportError) and isinstance(getattr(exc, "name", None), str):
        missing.append([subject, exc.name])
for name in job["modules"]:
    try:
        importlib.import_module(name)
    except BaseException as exc:
        failed(name, exc)
for script in job["scripts"]:
    try:
        runpy.run_path(script, run_name="__layerkit_probe__")
    except BaseException as exc:
        failed(script, exc)
files = sorted({m.__file__ for m in list(sys.modules.values())
                if isinstance(getattr(m, "__file__", None), str)})
with open(job["out"], "w") as handle:
    json.dump({"files": files, "failures": failures, "missing": missing}, handle)
"""


def clean_env(**extra: str) -> dict[str, str]:
    """Return an environment without the caller's PYTHON* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(extra)
    return env


def default_workers() -> int:
    """How many compiler processes to run at once: one per core."""
    return max(1, os.cpu_count() or 1)


class TargetInterpreter:
    """The target runtime's interpreter on this machine.

    ``path`` is the interpreter, or a function that finds it (called once, on first use: a
    build with nothing to do never looks for one).
    """

    def __init__(self, path: Path | Callable[[], Path]):
        self._path = path if isinstance(path, Path) else None
        self._find = None if isinstance(path, Path) else path
        self._lock = threading.Lock()
        self._compiler_lock = threading.Lock()
        self._compiler: Compiler | None = None

    @classmethod
    def for_target(cls, target: Target, cwd: Path | None = None) -> TargetInterpreter:
        """The interpreter of ``target``'s runtime, found on first use."""
        return cls(lambda: find_interpreter(target, cwd=cwd))

    @property
    def path(self) -> Path:
        """The interpreter's absolute path."""
        with self._lock:
            if self._path is None:
                assert self._find is not None
                self._path = self._find()
            return self._path

    @property
    def name(self) -> str:
        """The executable's name (``python3.9``)."""
        return self.path.name

    def _run(self, args: Sequence[str], code: str, job: dict[str, object], what: str) -> dict:
        """Run ``code`` with ``job`` on stdin; return the JSON it writes."""
        interpreter = self.path
        with tempfile.TemporaryDirectory(prefix="layerkit-python-") as tmp:
            out = Path(tmp) / "out.json"
            proc = subprocess.run(
                [str(interpreter), *args, "-c", code],
                input=json.dumps({**job, "out": str(out)}),
                capture_output=True,
                text=True,
                cwd=tmp,
                env=clean_env(PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1"),
                check=False,
            )
            if proc.returncode != 0 or not out.is_file():
                raise BuildError(
                    f"{what} failed in {interpreter} (exit {proc.returncode}): "
                    f"{proc.stderr.strip()[-1500:] or 'no error output'}. Check that this "
                    f"interpreter runs (`{interpreter} -c pass`) and that the tree is a "
                    "complete layer."
                )
            return json.loads(out.read_text(encoding="utf-8"))  # type: ignore[no-any-return]

    def compile(
        self,
        root: Path,
        files: Sequence[str],
        *,
        legacy: bool,
        invalidation: str,
        dest_dir: str,
        workers: int,
    ) -> CompileOutcome:
        """Compile ``files`` in up to ``workers`` interpreter processes at once."""
        count = max(1, min(workers, len(files)))
        chunks = [list(files[i::count]) for i in range(count)]
        jobs = [
            {
                "root": str(root),
                "files": chunk,
                "legacy": legacy,
                "invalidation": invalidation,
                "dest": dest_dir,
            }
            for chunk in chunks
            if chunk
        ]
        if not jobs:
            return CompileOutcome(())

        def one(job: dict[str, object]) -> dict:
            return self._run(["-S", "-s"], _COMPILE_DRIVER, job, "compiling")

        if len(jobs) == 1:
            results = [one(jobs[0])]
        else:
            with ThreadPoolExecutor(len(jobs)) as pool:
                results = list(pool.map(one, jobs))
        compiled = sorted(rel for result in results for rel in result["compiled"])
        failed = sorted((rel, err) for result in results for rel, err in result["failed"])
        return CompileOutcome(tuple(compiled), tuple(failed))

    def compiler(self) -> Compiler:
        """The cache tag, full version and magic number, asked of the interpreter once."""
        with self._compiler_lock:
            if self._compiler is None:
                out = self._run(["-S", "-s"], _COMPILER_DRIVER, {}, "asking its version")
                self._compiler = Compiler(out["tag"], f"{out['version']} magic {out['magic']}")
            return self._compiler

    def probe(
        self, path: Sequence[Path], modules: Sequence[str], scripts: Sequence[Path]
    ) -> ProbeOutcome:
        """Import ``modules`` and run ``scripts`` isolated (``-I -S -B``) with ``path`` first."""
        job = {
            "path": [str(p) for p in path],
            "modules": list(modules),
            "scripts": [str(s) for s in scripts],
        }
        result = self._run(["-I", "-S", "-B"], _PROBE_DRIVER, job, "importing")
        failures = tuple((name, trace) for name, trace in result["failures"])
        missing = tuple((name, module) for name, module in result.get("missing", ()))
        return ProbeOutcome(tuple(result["files"]), failures, missing)

    def stdlib_modules(self) -> frozenset[str]:
        """The interpreter's standard library modules (asked once per interpreter)."""
        from layerkit.check.imports import stdlib_modules

        return stdlib_modules(self.path)


def as_target_python(python: TargetPython | Path) -> TargetPython:
    """``python`` itself, or the interpreter at that path."""
    return TargetInterpreter(python) if isinstance(python, Path) else python


def real_tools(target: Target, cwd: Path | None = None, indexes: Indexes | None = None) -> Tools:
    """uv, ``target``'s interpreter (found on first use) and the system's strip.

    For a target this host runs through qemu-user the interpreter is the emulated one its
    environment variable names; for one it cannot run at all, the host's interpreter of the
    same Python version (:func:`layerkit.runtime.host.host_support`).
    """
    support = host_support(target)
    python = (
        TargetInterpreter(support.interpreter)
        if support.execution is Execution.EMULATED and support.interpreter is not None
        else TargetInterpreter.for_target(target, cwd)
    )
    return Tools(
        UvInstaller(indexes),
        python,
        SystemStrip.for_target(target),
        support,
        step_cache(default_cache_dir(cwd)),
    )
