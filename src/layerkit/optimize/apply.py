"""``optimize``: trace, advise and (with ``apply``) prune, proven by running the functions again.

:func:`optimize` traces every function (its events) and every layer's smoke test in the sandbox
on the built layers, turns the traces into per-layer advice (:mod:`layerkit.optimize.advice`) and
optionally measures each bytecode mode (:mod:`layerkit.optimize.modes`). With ``apply=True`` it
writes the prunable folders into each layer's ``[slim] remove`` in ``layer.toml`` (tomlkit keeps
the file's comments and layout; a comment gives bytes and date), rebuilds, traces everything
again on the pruned layers and runs the functions' sandbox tests. The result must be the same:
every subject runs, every event returns what it returned before, and no trace imports (or tries
to import) a module inside a removed folder. Otherwise every ``layer.toml`` is restored, the
build is redone, and :class:`~layerkit.errors.OptimizeError` names the module that was needed.

:func:`verify_traces` is the safety net for ``validate``: on the current build it re-runs the
traces and checks the functions' code statically, so a change that now needs a pruned module is
caught before deploy. A module comes back with a ``keep`` pattern in the layer's ``[slim]``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import importlib.util
import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import Array, Table

from layerkit.build import pipeline as builder
from layerkit.build.sdk import runtime_sdk_dir
from layerkit.errors import OptimizeError
from layerkit.optimize.advice import (
    BytecodeCost,
    LayerAdvice,
    advise_layer,
    removed_modules_reached,
    slowest_imports,
)
from layerkit.optimize.trace import (
    ImportTime,
    LayerFiles,
    Runner,
    SandboxRunner,
    Trace,
    aws_endpoint,
    static_imports,
    subjects,
    trace_all,
)
from layerkit.project.spec import Project, load_project
from layerkit.report.table import plural
from layerkit.runtime.layercache import default_cache_dir
from layerkit.runtime.target import Target, find_interpreter

REPORT_FILE = "optimize.json"
#: The functions' sandbox tests: real python3.9, the built layers (tests/functions, integration).
SANDBOX_TESTS = ("tests/functions",)


@dataclass(frozen=True)
class Pruned:
    """What ``apply`` added to one layer's ``[slim] remove``."""

    layer: str
    patterns: tuple[str, ...]
    bytes: int


@dataclass(frozen=True)
class OptimizeReport:
    """The measured advice (and, after ``apply``, what was pruned and the sizes before/after)."""

    target: str
    layers: tuple[LayerAdvice, ...]
    slowest: tuple[ImportTime, ...]
    subjects: tuple[tuple[str, bool, float], ...]  # (label, ran, init ms)
    function_bytes: Mapping[str, int] = field(default_factory=dict)  # code + layers, unzipped
    applied: tuple[Pruned, ...] = ()
    function_bytes_after: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``dist/optimize.json``)."""
        return asdict(self)


# ---------------------------------------------------------------- layer.toml (tomlkit)


def add_removals(text: str, patterns: Sequence[str], sizes: Mapping[str, int], today: str) -> str:
    """``layer.toml`` text with ``patterns`` appended to ``[slim] remove``, comments kept.

    Each new entry carries its size; a comment line before them says who added them and when.
    Patterns already listed are not repeated.
    """
    doc = tomlkit.parse(text)
    slim = doc.get("slim")
    if slim is None:
        slim = tomlkit.table()
        doc["slim"] = slim
    assert isinstance(slim, Table)
    remove = slim.get("remove")
    if remove is None:
        remove = tomlkit.array()
        slim["remove"] = remove
    assert isinstance(remove, Array)
    new = [p for p in patterns if p not in [str(x) for x in remove]]
    if not new:
        return text
    total = sum(sizes.get(p, 0) for p in new)
    remove.add_line(
        indent="    ",
        comment=f"`inv optimize --apply` {today}: no function loads these ({total / 1e6:.1f} MB)",
    )
    for pattern in new:
        remove.add_line(pattern, comment=_size_text(sizes.get(pattern, 0)))
    remove.add_line(indent="")
    out = tomlkit.dumps(doc)
    for pattern in new:  # two spaces before an inline comment, as ruff and taplo write them
        out = out.replace(f'"{pattern}", # ', f'"{pattern}",  # ')
    return re.sub(r"\n\n(\s*\])", r"\n\1", out)  # no blank line before the closing bracket


def _size_text(size: int) -> str:
    return f"{size / 1e6:.2f} MB" if size >= 10_000 else f"{size / 1e3:.1f} kB"


# ---------------------------------------------------------------- tracing a project


def _runner(project: Project, target: Target, out_dir: Path, env: Mapping[str, str]) -> Runner:
    interpreter = find_interpreter(target, cwd=project.root)
    cache = default_cache_dir(project.root)
    sdk = runtime_sdk_dir(target, cache)
    return SandboxRunner(out_dir, interpreter, target, env=env, runtime_sdk=sdk, cache=cache)


@contextlib.contextmanager
def _aws() -> Iterator[dict[str, str]]:
    """The moto endpoint, quiet (its request log would fill the terminal)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with aws_endpoint() as env:
        yield env


def _trace(
    project: Project, target: Target, out_dir: Path, layer: str | None, runner: Runner | None
) -> tuple[Trace, ...]:
    todo = subjects(project, layer)
    if runner is not None:
        return trace_all(todo, runner)
    with _aws() as env:
        functions = _runner(project, target, out_dir, env)
        plain = _runner(project, target, out_dir, {})
        return tuple(functions(s) if s.kind == "function" else plain(s) for s in todo)


def project_static_imports(project: Project) -> dict[str, tuple[str, ...]]:
    """The dotted imports of every function's code: ``{function: names}``."""
    target = project.deploy_target
    return {
        fn.name: static_imports(fn, builder.function_files(fn), target) for fn in project.functions
    }


def advise(
    project: Project,
    out_dir: Path,
    traces: Sequence[Trace],
    layer: str | None = None,
) -> tuple[LayerAdvice, ...]:
    """Advice for every layer (or ``layer``) from ``traces`` and the built zips in ``out_dir``."""
    static = {n for names in project_static_imports(project).values() for n in names}
    out = []
    for item in project.layers:
        if layer is not None and item.name != layer:
            continue
        archive = out_dir / "layers" / f"{item.name}.zip"
        if not archive.is_file():
            continue
        files = LayerFiles.read(item.name, archive)
        used = [t for t in traces if item.name in t.subject.layers]
        out.append(advise_layer(files, used, static, item.slim.keep))
    return tuple(out)


def function_bytes(project: Project, out_dir: Path) -> dict[str, int]:
    """Each function's code plus its layers, unzipped bytes, from the manifest."""
    from layerkit.build.manifest import read_manifest
    from layerkit.check.sizes import function_totals

    return {t.function: t.total for t in function_totals(project, read_manifest(out_dir))}


# ---------------------------------------------------------------- proof after pruning


def _same_outcomes(before: Sequence[Trace], after: Sequence[Trace]) -> list[str]:
    problems = []
    old = {t.subject.label: t for t in before}
    for trace in after:
        problems.extend(trace.problems())
        prior = old.get(trace.subject.label)
        if prior is None:
            continue
        was = {o.event: o.response for o in prior.outcomes}
        for outcome in trace.outcomes:
            if outcome.event in was and was[outcome.event] != outcome.response:
                problems.append(
                    f"{trace.subject.label}, event {outcome.event}: the response changed after "
                    "pruning"
                )
    return problems


def pytest_sandbox_tests(root: Path, paths: Sequence[str] = SANDBOX_TESTS) -> tuple[bool, str]:
    """Run the functions' sandbox tests (``-m integration``) in this interpreter's pytest."""
    present = [p for p in paths if (root / p).exists()]
    if not present:
        return True, "no sandbox tests"
    if importlib.util.find_spec("pytest") is None:
        return False, (
            f"pytest is not installed in {sys.executable}'s environment, so the functions' "
            "sandbox tests cannot run; install it (`pip install pytest`) and run again."
        )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-m", "integration", "-p", "no:cacheprovider",
         *present],
        cwd=root, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


Build = Callable[[Project, Target, Sequence[str]], Any]
Tests = Callable[[Path], tuple[bool, str]]


def _rebuild(project: Project, target: Target, layers: Sequence[str]) -> Any:
    return builder.build(project, target, layers=list(layers))


def apply_pruning(
    project: Project,
    target: Target,
    advice: Sequence[LayerAdvice],
    baseline: Sequence[Trace],
    *,
    today: str | None = None,
    build: Build = _rebuild,
    runner: Runner | None = None,
    tests: Tests | None = pytest_sandbox_tests,
) -> tuple[Project, tuple[Pruned, ...]]:
    """Write the prunable folders into each layer.toml, rebuild and prove nothing changed.

    Returns the reloaded project and what was pruned. On any failure every layer.toml is
    restored, the layers are rebuilt as they were and OptimizeError names what was needed.
    """
    today = today or dt.date.today().isoformat()
    originals: dict[str, str] = {}
    pruned = []
    for item in advice:
        if not item.prune:
            continue
        path = project.layer(item.layer).path / "layer.toml"
        text = path.read_text(encoding="utf-8")
        sizes = {c.pattern: c.bytes for c in item.prune}
        new = add_removals(text, [c.pattern for c in item.prune], sizes, today)
        if new != text:
            originals[item.layer] = text
            path.write_text(new, encoding="utf-8")
            pruned.append(Pruned(item.layer, tuple(sizes), item.prune_bytes))
    if not pruned:
        return project, ()
    removed = [p for x in pruned for p in x.patterns]
    try:
        project = load_project(project.root)
        result = build(project, target, [p.layer for p in pruned])
        out_dir = getattr(result, "out_dir", builder.output_dir(project, target))
        after = _trace(project, target, out_dir, None, runner)
        problems = _same_outcomes(baseline, after)
        needed = removed_modules_reached(after, removed)
        statically = [module for _, module, _ in _static_hits(project, removed)]
        if needed or statically or problems:
            raise OptimizeError(_failure(needed, statically, problems))
        if tests is not None:
            ok, output = tests(project.root)
            if not ok:
                raise OptimizeError(
                    "the functions' sandbox tests failed on the pruned layers, so nothing was "
                    f"pruned (layer.toml restored). Their output ends with:\n{output}"
                )
    except BaseException:
        for layer, text in originals.items():
            (project.layer(layer).path / "layer.toml").write_text(text, encoding="utf-8")
        project = load_project(project.root)
        build(project, target, list(originals))
        raise
    return project, tuple(pruned)


def _failure(needed: Sequence[str], statically: Sequence[str], problems: Sequence[str]) -> str:
    names = sorted({*needed, *statically})
    head = (
        f"pruning was undone (layer.toml restored): {', '.join(names)} "
        f"{'is' if len(names) == 1 else 'are'} needed"
        if names
        else "pruning was undone (layer.toml restored): the functions do not behave the same"
    )
    detail = "; ".join(problems[:5])
    return (
        f"{head}{': ' + detail if detail else ''}. Keep what is needed with a `keep` pattern in "
        'the layer\'s [slim] (for example keep = ["scipy/signal"]) and run `inv optimize '
        "--apply` again."
    )


def _static_hits(project: Project, removed: Sequence[str]) -> tuple[tuple[str, str, str], ...]:
    """(function, module, removed folder) for each static import inside a removed folder."""
    hits = set()
    for fn, names in project_static_imports(project).items():
        for name in names:
            for folder in removed:
                dotted = folder.replace("/", ".")
                if name == dotted or name.startswith(dotted + "."):
                    hits.add((fn, name, folder))
    return tuple(sorted(hits))


# ---------------------------------------------------------------- the two entry points


def optimize(
    project: Project,
    target: Target | None = None,
    layer: str | None = None,
    apply: bool = False,
    *,
    measure_bytecode: bool = False,
    runner: Runner | None = None,
    build: Build = _rebuild,
    tests: Tests | None = pytest_sandbox_tests,
    today: str | None = None,
) -> OptimizeReport:
    """Trace, advise and (with ``apply``) prune; the report is also written to dist/optimize.json.

    The build must be current (``inv build.all``). ``layer`` limits advice and pruning to one
    layer (its functions and smoke tests are still traced). ``measure_bytecode`` adds each
    bytecode mode's size and each handler's cold init on it (a compile and sandbox runs per mode).
    """
    target = target or project.deploy_target
    current = builder.require_fresh(project, target)
    out_dir = current.out_dir
    traces = _trace(project, target, out_dir, layer, runner)
    failed = [line for t in traces for line in t.problems()]
    if failed:
        raise OptimizeError(
            "the functions or smoke tests fail on the current build, so there is nothing to "
            f"measure against: {'; '.join(failed[:5])}. Fix them first (`inv validate`)."
        )
    advice = advise(project, out_dir, traces, layer)
    if measure_bytecode:
        advice = measure_modes(project, target, out_dir, advice, traces)
    before = function_bytes(project, out_dir)
    report = OptimizeReport(
        target=target.key,
        layers=advice,
        slowest=slowest_imports(traces),
        subjects=tuple((t.subject.label, t.ok, round(t.init_ms, 1)) for t in traces),
        function_bytes=before,
    )
    if apply:
        project, pruned = apply_pruning(
            project, target, advice, traces, today=today, build=build, runner=runner, tests=tests
        )
        after = function_bytes(project, out_dir)
        report = dataclasses.replace(report, applied=pruned, function_bytes_after=after)
    (out_dir / REPORT_FILE).write_text(
        json.dumps(report.to_json(), indent=2, sort_keys=True, default=str) + "\n",
        encoding="utf-8",
    )
    return report


def verify_traces(
    project: Project, target: Target | None = None, *, runner: Runner | None = None
) -> tuple[str, ...]:
    """Re-run every trace on the current build; the problems found (empty: all is well).

    A problem is a function or smoke test that fails, a module inside a folder some layer's
    ``[slim] remove`` lists that a trace imports or tries to import, or a function whose code
    imports such a module statically. Each line names the module and the layer.
    """
    target = target or project.deploy_target
    current = builder.require_fresh(project, target)
    removed = {p: x.name for x in project.layers for p in x.slim.remove if "*" not in p}
    problems = [
        f"{project.function(fn).path.relative_to(project.root).as_posix()} imports {name}, but "
        f"{project.layer(removed[folder]).settings_file} prunes "
        f'{folder!r}; add keep = ["{folder}"] to its [slim] and rebuild'
        for fn, name, folder in _static_hits(project, tuple(removed))
    ]
    traces = _trace(project, target, current.out_dir, None, runner)
    problems.extend(line for t in traces for line in t.problems())
    for name in removed_modules_reached(traces, tuple(removed)):
        folder = next(p for p in removed if name.replace(".", "/").startswith(p))
        problems.append(
            f"{name} is imported but layers/{removed[folder]}/layer.toml prunes {folder!r}; "
            f'add keep = ["{folder}"] to its [slim] and rebuild'
        )
    return tuple(problems)


def measure_modes(
    project: Project,
    target: Target,
    out_dir: Path,
    advice: Sequence[LayerAdvice],
    traces: Sequence[Trace],
) -> tuple[LayerAdvice, ...]:
    """Each layer's size in every bytecode mode and each handler's cold init on that mode.

    A layer built sourceless has no sources to rebuild the other modes from: it shows its
    sourceless size only, and a function attaching it is timed in the sourceless mode only.
    """
    import tempfile

    from layerkit.optimize.modes import (
        cold_inits,
        compile_layer,
        mode_files,
        sourceless_entries,
        write_mode_zip,
    )

    interpreter = find_interpreter(target, cwd=project.root)
    modes = ("none", "imported", "all", "sourceless")
    with tempfile.TemporaryDirectory(prefix="layerkit-modes-") as tmp:
        base = Path(tmp)
        zips: dict[tuple[str, str], Path] = {}
        sizes: dict[str, dict[str, int]] = {}
        for item in project.layers:
            archive = out_dir / "layers" / f"{item.name}.zip"
            if sourceless_entries(archive):
                zips[item.name, "sourceless"] = archive
                sizes[item.name] = {"sourceless": LayerFiles.read(item.name, archive).total}
                continue
            work = base / item.name
            compiled = compile_layer(archive, work, interpreter)
            for mode, files in mode_files(compiled, _cold_sources(item.name, traces)).items():
                dest = base / f"{item.name}-{mode}.zip"
                zips[item.name, mode] = write_mode_zip(work, files, dest)
                sizes.setdefault(item.name, {})[mode] = sum(s for _, s in files.values())
        inits: dict[str, dict[str, float]] = {}
        sdk = runtime_sdk_dir(target, default_cache_dir(project.root))
        for fn in project.functions:
            for mode in modes:
                if not all((name, mode) in zips for name in fn.layers):
                    continue
                inits.setdefault(mode, {})[fn.name] = round(
                    cold_inits(
                        fn,
                        [zips[name, mode] for name in fn.layers],
                        out_dir / "functions" / f"{fn.name}.zip",
                        interpreter,
                        target,
                        base / f"sandbox-{fn.name}-{mode}",
                        runtime_sdk=sdk,
                    ),
                    1,
                )
    return tuple(
        dataclasses.replace(
            a,
            bytecode=tuple(
                BytecodeCost(
                    mode,
                    sizes[a.layer][mode],
                    {
                        f: ms
                        for f, ms in inits.get(mode, {}).items()
                        if a.layer in project.function(f).layers
                    },
                )
                for mode in modes
                if mode in sizes.get(a.layer, {})
            ),
        )
        for a in advice
    )


def _cold_sources(layer: str, traces: Sequence[Trace]) -> frozenset[str]:
    """``.py`` entries of ``layer`` a function's cold start or a smoke test loads."""
    found: set[str] = set()
    for trace in traces:
        entries = trace.cold_start if trace.subject.kind == "function" else trace.loaded
        found.update(e for e in entries.get(layer, ()) if e.endswith(".py"))
    return frozenset(found)


def format_report(report: OptimizeReport) -> str:
    """The report as text for a terminal (what `inv optimize` prints)."""
    lines = [f"optimize ({report.target}): traced {len(report.subjects)} subjects"]
    for label, ok, init in report.subjects:
        lines.append(f"  {label}: {'ok' if ok else 'FAILED'}, init {init:.0f} ms")
    for item in report.layers:
        lines.append(
            f"layer {item.layer}: {item.total_bytes / 1e6:.1f} MB; no function loads "
            f"{plural(item.unloaded_files, 'file')}, {item.unloaded_bytes / 1e6:.1f} MB "
            "(data files "
            f"{item.unloaded_data_bytes / 1e6:.1f} MB); prunable {item.prune_bytes / 1e6:.1f} MB"
        )
        for c in sorted(item.candidates, key=lambda c: -c.bytes)[:20]:
            verdict = "prune" if c.prunable else f"keep ({c.reason})"
            lines.append(f"    {c.pattern:48} {c.bytes / 1e6:7.2f} MB  {verdict}")
        if item.cold_start_without_bytecode:
            lines.append(
                f"    {plural(len(item.cold_start_without_bytecode), 'module')} a cold start loads "
                f"without bytecode, e.g. {', '.join(item.cold_start_without_bytecode[:3])}"
            )
        for cost in item.bytecode:
            inits = ", ".join(f"{f} {ms:.0f} ms" for f, ms in sorted(cost.init_ms.items()))
            lines.append(
                f"    bytecode {cost.mode:10} {cost.bytes / 1e6:7.1f} MB  cold init, every layer "
                f"in this mode: {inits}"
            )
    lines.append("slowest imports (self time):")
    for imp in report.slowest:
        lines.append(f"    {imp.module:56} {imp.self_us / 1000:8.1f} ms")
    for p in report.applied:
        lines.append(f"pruned from {p.layer}: {', '.join(p.patterns)} ({p.bytes / 1e6:.1f} MB)")
    for fn, total in sorted(report.function_bytes.items()):
        after = report.function_bytes_after.get(fn)
        tail = f" -> {after / 1e6:.1f} MB" if after is not None else ""
        lines.append(f"function {fn}: code + layers {total / 1e6:.1f} MB{tail}")
    return "\n".join(lines)
