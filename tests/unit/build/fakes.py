"""Fake build tools: no uv, no target interpreter, no binutils; everything else is real.

- :class:`FakeInstaller` "installs" a locked distribution as a tiny package with a dist-info.
- :class:`FakePython` compiles with the host's :func:`py_compile` in this process (named with
  the target's cache tag) and "imports" by following import statements through the files on
  the path, so a removed submodule still fails the import check.
- :class:`FakeStrip` reports a version and cuts a few bytes off each file it is given.

Each fake can raise an exception at a chosen call (``fail``), to test failures and interrupts.
"""

from __future__ import annotations

import ast
import py_compile
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.util import MAGIC_NUMBER
from pathlib import Path

from layerkit.build.lock import LockedPackage
from layerkit.build.memo import Memo, NoMemo, StepCache
from layerkit.build.tools import CompileOutcome, Compiler, ProbeOutcome, Tools
from layerkit.runtime.target import Target

Fail = Callable[[str], None]


def _never(what: str) -> None:
    """Do not fail."""


@dataclass
class FakeInstaller:
    """Writes ``<name>/__init__.py`` (importing ``.core``), ``core.py`` and a dist-info."""

    calls: list[str] = field(default_factory=list)
    fail: Fail = _never
    extra: dict[str, str] = field(default_factory=dict)  # relative path -> text, per install

    def install(self, packages: Sequence[LockedPackage], dest: Path, target: Target) -> None:
        """Write each package into ``dest``."""
        dest.mkdir(parents=True, exist_ok=True)
        for p in packages:
            self.fail(p.name)
            self.calls.append(p.name)
            (dest / p.name).mkdir(parents=True, exist_ok=True)
            (dest / p.name / "__init__.py").write_text("from .core import version\n")
            (dest / p.name / "core.py").write_text(f"version = {p.version!r}\n")
            info = dest / f"{p.name}-{p.version}.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(f"Name: {p.name}\nVersion: {p.version}\n")
            (info / "top_level.txt").write_text(f"{p.name}\n")
            record = [f"{p.name}/__init__.py,,", f"{p.name}/core.py,,"]
            for rel, text in self.extra.items():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                (dest / rel).write_text(text)
                record.append(f"{rel},,")
            (info / "RECORD").write_text("\n".join(record) + "\n")


@dataclass
class FakePython:
    """A stand-in for the target interpreter that runs in this process."""

    target: Target = field(default_factory=lambda: Target("python3.9"))
    fail: Fail = _never
    compiled: list[str] = field(default_factory=list)  # every root compiled, in order
    probes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        """``python3.9``."""
        return f"python{self.target.python_version_text}"

    @property
    def tag(self) -> str:
        """The target's cache tag (``cpython-39``)."""
        return "cpython-{}{}".format(*self.target.python_version)

    def compiler(self) -> Compiler:
        """The target's cache tag; the host's version and magic number (it compiles them)."""
        return Compiler(self.tag, f"fake {sys.version} magic {MAGIC_NUMBER.hex()}")

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
        """Compile with the host's py_compile, named as the target's pycs."""
        self.fail(f"compile {root}")
        with self._lock:
            self.compiled.append(str(root))
        mode = py_compile.PycInvalidationMode[invalidation.upper().replace("-", "_")]
        done, failed = [], []
        for rel in files:
            src = root / rel
            cfile = (
                src.with_suffix(".pyc")
                if legacy
                else src.parent / "__pycache__" / f"{src.stem}.{self.tag}.pyc"
            )
            try:
                py_compile.compile(
                    str(src),
                    cfile=str(cfile),
                    dfile=f"{dest_dir.rstrip('/')}/{rel}",
                    doraise=True,
                    invalidation_mode=mode,
                )
            except py_compile.PyCompileError as exc:
                failed.append((rel, str(exc).strip().splitlines()[-1][:300]))
            else:
                done.append(rel)
        return CompileOutcome(tuple(sorted(done)), tuple(sorted(failed)))

    def probe(
        self, path: Sequence[Path], modules: Sequence[str], scripts: Sequence[Path]
    ) -> ProbeOutcome:
        """Follow the imports of ``modules`` and ``scripts`` through the files on ``path``."""
        self.fail("probe")
        with self._lock:
            self.probes += 1
        loaded: set[Path] = set()
        failures, missing = [], []
        for subject, load in [
            *((name, lambda n=name: _load(n, path, loaded)) for name in modules),
            *((str(s), lambda s=s: _follow(s, None, path, loaded)) for s in scripts),
        ]:
            try:
                load()
            except ModuleNotFoundError as exc:
                failures.append((subject, _trace(exc)))
                missing.append((subject, str(exc.name)))
        return ProbeOutcome(tuple(sorted(str(p) for p in loaded)), tuple(failures), tuple(missing))

    def stdlib_modules(self) -> frozenset[str]:
        """The host's standard library names."""
        return frozenset(sys.stdlib_module_names)


def _trace(exc: BaseException) -> str:
    return f"Traceback (most recent call last):\n  (fake probe)\n{type(exc).__name__}: {exc}\n"


def _find(name: str, path: Sequence[Path]) -> Path | None:
    parts = name.split(".")
    for entry in path:
        base = entry.joinpath(*parts)
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if candidate.is_file():
                return candidate
    return None


def _load(name: str, path: Sequence[Path], loaded: set[Path]) -> None:
    """Load ``name`` (and its parent packages) or raise ModuleNotFoundError."""
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        dotted = ".".join(parts[:i])
        file = _find(dotted, path)
        if file is None:
            raise ModuleNotFoundError(f"No module named {dotted!r}", name=dotted)
        if file not in loaded:
            loaded.add(file)
            package = dotted if file.name == "__init__.py" else ".".join(parts[: i - 1])
            _follow(file, package, path, loaded)


def _stdlib(name: str, path: Sequence[Path]) -> bool:
    """Whether ``name`` is the standard library's: not on ``path``, and a stdlib name."""
    top = name.split(".")[0]
    return _find(top, path) is None and top in sys.stdlib_module_names


def _follow(file: Path, package: str | None, path: Sequence[Path], loaded: set[Path]) -> None:
    """Load what ``file`` imports: relative imports must resolve, absolute ones on ``path``."""
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _stdlib(alias.name, path):
                    _load(alias.name, path, loaded)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = (package or "").split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
                if _stdlib(module, path):
                    continue
            _load(module, path, loaded)
            for alias in node.names:
                if _find(f"{module}.{alias.name}", path) is not None:
                    _load(f"{module}.{alias.name}", path, loaded)


@dataclass
class FakeStrip:
    """A strip that is "installed" (``version``) and cuts ``shrink`` bytes off each file."""

    installed: bool = True
    description: str = "fake-strip"
    shrink: int = 0

    def version(self) -> str | None:
        """``fake-strip 1`` or None when not installed."""
        return "fake-strip 1" if self.installed else None

    def strip(self, path: Path) -> bool:
        """Cut ``shrink`` bytes off the end of ``path``."""
        if self.shrink:
            data = path.read_bytes()
            path.write_bytes(data[: len(data) - self.shrink])
        return True


@dataclass
class CountingMemo:
    """A real step cache in a folder that counts its hits and misses."""

    cache: StepCache
    hits: int = 0
    misses: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: str) -> bytes | None:
        """Look up, counting."""
        found = self.cache.get(key)
        with self._lock:
            self.hits += found is not None
            self.misses += found is None
        return found

    def put(self, key: str, payload: bytes) -> None:
        """Keep."""
        self.cache.put(key, payload)

    def trim(self, limit: int = 1 << 40) -> int:
        """Trim the cache."""
        return self.cache.trim(limit)


def fake_tools(
    installer: FakeInstaller | None = None,
    python: FakePython | None = None,
    stripper: FakeStrip | None = None,
    memo: Memo | None = None,
) -> Tools:
    """The three fakes as one :class:`Tools` (no step cache unless ``memo`` is given)."""
    return Tools(
        installer or FakeInstaller(), python or FakePython(), stripper or FakeStrip(),
        memo=memo or NoMemo(),
    )  # fmt: skip


def fail_on(what: str, exc: BaseException) -> Fail:
    """A ``fail`` hook raising ``exc`` when the call's description contains ``what``."""

    def fail(call: str) -> None:
        if what in call:
            raise exc

    return fail
