"""What each bytecode mode costs and saves, measured on a built layer with the target interpreter.

One compile per layer gives every figure: the zip is unzipped without its bytecode, every module
is compiled (hash-based, with the target interpreter, :func:`layerkit.build.bytecode.compile_tree`)
and the sizes of the four modes follow from the files:

- ``none``: the sources only;
- ``imported``: plus the pycs of what a cold start loads (``cold`` entries from the traces);
- ``all``: plus every pyc;
- ``sourceless``: every compiled ``x.py`` replaced by its ``x.pyc``.

:func:`mode_sizes` is the pure part (file sizes in, bytes per mode out). :func:`mode_trees` writes
each mode's tree as a zip, so :func:`cold_inits` can time each handler's cold init on it in the
sandbox (:func:`layerkit.runtime.sandbox.invoke`, a fresh process each time).
"""

from __future__ import annotations

import json
import os
import statistics
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from layerkit.build.bytecode import compile_tree
from layerkit.errors import OptimizeError
from layerkit.project.spec import BYTECODE_MODES, Function
from layerkit.runtime.sandbox import extract_zip, invoke, prepare
from layerkit.runtime.target import Target


def _is_bytecode(name: str) -> bool:
    path = PurePosixPath(name)
    return path.parent.name == "__pycache__" and path.suffix == ".pyc"


def _source_of(pyc: str) -> str:
    """``a/__pycache__/m.cpython-39.pyc`` -> ``a/m.py``."""
    path = PurePosixPath(pyc)
    return str(path.parent.parent / (path.name.split(".", 1)[0] + ".py"))


def mode_files(
    compiled: Mapping[str, int], cold: frozenset[str]
) -> dict[str, dict[str, tuple[str, int]]]:
    """Each mode's entries: ``{mode: {entry: (source entry in the compiled tree, bytes)}}``.

    ``compiled`` are the entries of the tree compiled in ``all`` mode and their sizes; ``cold``
    the ``.py`` entries a cold start loads. Pure.
    """
    pycs = {name: _source_of(name) for name in compiled if _is_bytecode(name)}
    plain = {n: (n, s) for n, s in compiled.items() if not _is_bytecode(n)}
    with_pyc = {pycs[n] for n in pycs}
    out: dict[str, dict[str, tuple[str, int]]] = {
        "none": dict(plain),
        "all": {n: (n, s) for n, s in compiled.items()},
        "imported": {
            **plain,
            **{n: (n, compiled[n]) for n, src in pycs.items() if src in cold},
        },
    }
    sourceless = {n: v for n, v in plain.items() if n not in with_pyc}
    for name, src in pycs.items():
        sourceless[src + "c"] = (name, compiled[name])
    out["sourceless"] = sourceless
    return out


def mode_sizes(compiled: Mapping[str, int], cold: frozenset[str]) -> dict[str, int]:
    """Unzipped bytes of each bytecode mode (see :func:`mode_files`)."""
    files = mode_files(compiled, cold)
    return {mode: sum(s for _, s in files[mode].values()) for mode in BYTECODE_MODES}


def sourceless_entries(archive: Path) -> tuple[str, ...]:
    """The modules of ``archive`` shipped as a bare ``x.pyc`` (a layer built sourceless)."""
    with zipfile.ZipFile(archive) as zf:
        return tuple(n for n in zf.namelist() if n.endswith(".pyc") and "/__pycache__/" not in n)


def compile_layer(archive: Path, work: Path, interpreter: Path) -> dict[str, int]:
    """Unzip ``archive`` without bytecode into ``work`` and compile all of it; entry sizes.

    A sourceless layer has no sources to start from: OptimizeError says how to measure it.
    """
    sourceless = sourceless_entries(archive)
    if sourceless:
        raise OptimizeError(
            f"{archive} is built sourceless ({len(sourceless)} modules have no source, e.g. "
            f"{sourceless[0]}), so the other bytecode modes cannot be measured from it; set "
            'bytecode = "imported" in its layer.toml, `inv build.all`, then `inv optimize '
            "--bytecode`."
        )
    extract_zip(archive, work, skip_bytecode=True)
    compile_tree(work / "python", interpreter, "all", workers=max(1, os.cpu_count() or 1))
    sizes = {}
    for dirpath, _, filenames in os.walk(work):
        for name in filenames:
            path = Path(dirpath) / name
            sizes[path.relative_to(work).as_posix()] = path.stat().st_size
    return sizes


def write_mode_zip(work: Path, files: Mapping[str, tuple[str, int]], dest: Path) -> Path:
    """A stored (uncompressed) zip of one mode's entries, read from the compiled tree."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as zf:
        for name in sorted(files):
            zf.write(work / files[name][0], name)
    return dest


def cold_inits(
    fn: Function,
    zips: Sequence[Path],
    package: Path,
    interpreter: Path,
    target: Target,
    workdir: Path,
    *,
    rounds: int = 3,
    runtime_sdk: Path | None = None,
) -> float:
    """Median cold init (ms) of ``fn``'s handler over ``rounds`` fresh processes on ``zips``.

    ``runtime_sdk``: the runtime's own boto3 (Lambda's /var/runtime), behind the layers.
    """
    sandbox = prepare(workdir, zips, package, interpreter, target, runtime_sdk=runtime_sdk)
    events = sorted((fn.path / "events").glob("*.json"))
    event = json.loads(events[0].read_text(encoding="utf-8")) if events else {}
    samples = []
    for _ in range(rounds):
        result = invoke(sandbox, fn.handler, event, function_name=fn.name, memory_mb=4096)
        samples.append(result.init_ms)
    return statistics.median(samples)
