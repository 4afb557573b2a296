"""Advice from traces (pure): what no function loads, what may safely go, the slowest imports.

Input: each built layer's entries (:class:`~layerkit.optimize.trace.LayerFiles`), the traces of
every function and smoke test, the dotted modules the functions' code imports statically, and
each layer's ``[slim] keep`` patterns. Output: one :class:`LayerAdvice` per layer.

What is *pruned* is deliberately much less than what is *unloaded*. A module the events never
loaded may still be needed by another code path (another input, another model), so only whole
subpackages go, and only when:

- no file under the subpackage was loaded, opened or mapped by any trace;
- it is a subpackage (``a/b``), never a top-level package: a distribution stays importable and
  its ``__init__`` and dist-info (with licence files) are never touched;
- no function's code imports it, or a module inside it, statically (``import a.b.c`` keeps
  ``a/b``); no ``keep`` pattern matches it or a file in it;
- its parent package is not itself unloaded (the top-most unloaded folder is the pattern).

Data files of loaded packages that nothing opened (time-zone databases, botocore models of
listed services) depend on the input, so they are reported, never pruned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from layerkit.build.slim import is_protected, matches
from layerkit.optimize.trace import ImportTime, LayerFiles, Trace

SITE = "python/"  # a layer zip's importable root; [slim] patterns are relative to it
_CODE_SUFFIXES = (".py", ".pyc", ".so")


@dataclass(frozen=True)
class Candidate:
    """A folder no trace loaded: its ``[slim] remove`` pattern, files and bytes."""

    pattern: str  # relative to python/ (``scipy/signal``)
    files: int
    bytes: int
    prunable: bool
    reason: str  # why it is kept, when not prunable


@dataclass(frozen=True)
class BytecodeCost:
    """One bytecode mode of one layer: its unzipped bytes and each handler's cold init (ms)."""

    mode: str
    bytes: int
    init_ms: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LayerAdvice:
    """What the traces say about one layer."""

    layer: str
    total_bytes: int
    loaded_files: int
    loaded_bytes: int
    unloaded_files: int  # entries no trace loaded (dist-info and licences not counted)
    unloaded_bytes: int
    unloaded_data_bytes: int  # of which not code (.py/.pyc/.so): data files, never pruned
    candidates: tuple[Candidate, ...]  # top-most unloaded subpackages, prunable or not
    cold_start_without_bytecode: tuple[str, ...] = ()  # sources a cold start compiles again
    bytecode: tuple[BytecodeCost, ...] = ()

    @property
    def prune(self) -> tuple[Candidate, ...]:
        """The candidates that may go."""
        return tuple(c for c in self.candidates if c.prunable)

    @property
    def prune_bytes(self) -> int:
        """Bytes the prunable candidates take."""
        return sum(c.bytes for c in self.prune)


def site_path(entry: str) -> str:
    """``python/scipy/signal/x.py`` -> ``scipy/signal/x.py`` (entries outside python/ unchanged)."""
    return entry[len(SITE) :] if entry.startswith(SITE) else entry


def package_dirs(files: Iterable[str]) -> frozenset[str]:
    """Folders (relative to python/) that hold an ``__init__`` module: regular packages."""
    found = set()
    for entry in files:
        rel = PurePosixPath(site_path(entry))
        if rel.stem == "__init__" and rel.suffix in (".py", ".pyc") and len(rel.parts) > 1:
            if rel.parent.name == "__pycache__":
                continue
            found.add(rel.parent.as_posix())
    return frozenset(found)


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + "/")


def _static_keeps(static: Iterable[str]) -> tuple[str, ...]:
    """Folders a static import needs: ``a.b.c`` -> ``a/b/c`` (and so every folder above it)."""
    return tuple(sorted({name.replace(".", "/") for name in static}))


def candidates(
    files: Mapping[str, int],
    loaded: frozenset[str],
    static: Iterable[str],
    keep: Sequence[str],
) -> tuple[Candidate, ...]:
    """The top-most subpackages of a layer that nothing loaded, each judged prunable or not.

    ``files`` are the zip entries and sizes, ``loaded`` the entries any trace touched,
    ``static`` the dotted names the functions import, ``keep`` the layer's keep patterns.
    """
    rel_files = {site_path(f): s for f, s in files.items()}
    rel_loaded = {site_path(f) for f in loaded}
    packages = package_dirs(files)
    touched = set()  # every folder above a loaded entry
    for path in rel_loaded:
        parts = PurePosixPath(path).parts
        touched.update("/".join(parts[:i]) for i in range(1, len(parts)))
    static_dirs = _static_keeps(static)
    unloaded = sorted(p for p in packages if p not in touched and "/" in p)
    found = []
    for folder in unloaded:
        parent = folder.rsplit("/", 1)[0]
        if parent in packages and parent not in touched:
            continue  # an unloaded folder above it is the candidate
        inside = {f: s for f, s in rel_files.items() if _under(f, folder)}
        reason = ""
        if any(_under(d, folder) for d in static_dirs):
            reason = "a function imports it (or a module in it) statically"
        elif sum(s for f, s in inside.items() if not f.endswith(_CODE_SUFFIXES)) * 2 > sum(
            inside.values()
        ):
            reason = "mostly data files (time zones, models): what is read depends on the input"
        elif matches(folder, keep) or any(is_protected(f, keep) for f in inside):
            reason = "a keep pattern (or a licence or dist-info file) is inside"
        found.append(Candidate(folder, len(inside), sum(inside.values()), not reason, reason or ""))
    return tuple(found)


def _cold_without_bytecode(files: Mapping[str, int], cold: frozenset[str]) -> tuple[str, ...]:
    """Cold-start sources of the layer that have no pyc of their own in the zip."""
    out = []
    for entry in sorted(cold):
        if not entry.endswith(".py"):
            continue
        path = PurePosixPath(entry)
        prefix = f"{path.parent}/__pycache__/{path.stem}."
        if not any(f.startswith(prefix) and f.endswith(".pyc") for f in files) and (
            entry + "c" not in files
        ):
            out.append(site_path(entry))
    return tuple(out)


def advise_layer(
    layer: LayerFiles,
    traces: Sequence[Trace],
    static: Iterable[str],
    keep: Sequence[str],
) -> LayerAdvice:
    """The advice for one layer from every trace that used it."""
    loaded = frozenset().union(*(t.loaded.get(layer.name, frozenset()) for t in traces))
    cold = frozenset().union(*(t.cold_start.get(layer.name, frozenset()) for t in traces))
    counted = {f: s for f, s in layer.files.items() if not is_protected(site_path(f))}
    unloaded = {f: s for f, s in counted.items() if f not in loaded}
    data = sum(s for f, s in unloaded.items() if not f.endswith(_CODE_SUFFIXES))
    return LayerAdvice(
        layer=layer.name,
        total_bytes=sum(layer.files.values()),
        loaded_files=len(loaded),
        loaded_bytes=sum(layer.files.get(f, 0) for f in loaded),
        unloaded_files=len(unloaded),
        unloaded_bytes=sum(unloaded.values()),
        unloaded_data_bytes=data,
        candidates=candidates(layer.files, loaded, static, keep),
        cold_start_without_bytecode=_cold_without_bytecode(layer.files, cold),
    )


def slowest_imports(traces: Sequence[Trace], count: int = 15) -> tuple[ImportTime, ...]:
    """The modules whose own import time (``self``) is largest, worst trace per module."""
    worst: dict[str, ImportTime] = {}
    for trace in traces:
        for item in trace.import_times:
            if item.module not in worst or item.self_us > worst[item.module].self_us:
                worst[item.module] = item
    return tuple(sorted(worst.values(), key=lambda i: (-i.self_us, i.module))[:count])


def removed_modules_reached(traces: Sequence[Trace], removed: Iterable[str]) -> tuple[str, ...]:
    """Modules inside a removed folder that a trace imported or tried to import (and missed).

    ``removed`` are folders relative to python/ (``scipy/signal``); a name ``scipy.signal.x``
    or ``scipy.signal`` lies inside that one.
    """
    dotted = tuple(r.replace("/", ".") for r in removed)
    hits = set()
    for trace in traces:
        for name in (*trace.missed, *trace.modules):
            if any(name == d or name.startswith(d + ".") for d in dotted):
                hits.add(name)
    return tuple(sorted(hits))
