"""Prove a built layer on its target: imports, smoke test and ELF/glibc, in the sandbox.

:func:`validate_layer` puts the layer's zip, after the zips of the layers it requires, into a
:mod:`layerkit.runtime.sandbox` with the TARGET interpreter and nothing else on the path; imports
every top-level module of every distribution the layer carries (from each ``*.dist-info``'s
``top_level.txt`` and ``RECORD``), reporting each failure with its traceback; runs the layer's
smoke test (``smoke`` in layer.toml); and checks every ELF file the layer ships
(:mod:`layerkit.check.elf`) and, where this host runs the target's code, loads every shared
object it ships with ctypes (a lazily imported module is loaded all the same; a failure names the
file and its wheel). Failures are returned, not raised: the caller formats them
(:func:`format_validation`) and fails. :func:`validate_built_layer` does the same for the zips
``inv build.all`` wrote to ``dist/``.
"""

from __future__ import annotations

import json
import posixpath
import re
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from layerkit.build.bytecode import OptionalModule, split_optional
from layerkit.build.manifest import artifact_path
from layerkit.build.pipeline import not_current, output_dir, plan
from layerkit.build.sdk import runtime_sdk_dir
from layerkit.check.elf import check_files, elf_finding, is_shared_library, scan
from layerkit.check.findings import CheckReport, Finding, Severity
from layerkit.errors import BuildError, SandboxError
from layerkit.project.spec import Project, load_project
from layerkit.report.table import plural
from layerkit.runtime.host import Execution, host_support
from layerkit.runtime.layercache import default_cache_dir
from layerkit.runtime.sandbox import Sandbox, prepare, run_code
from layerkit.runtime.target import Target, find_interpreter

#: The environment variable that tells the aws-utilities smoke test which services are kept.
SERVICES_ENV = "LAYERKIT_BOTOCORE_SERVICES"
IMPORT_TIMEOUT_S = 300.0
SMOKE_TIMEOUT_S = 300.0

_DIST_INFO_RE = re.compile(r"^(python(?:/lib/python3\.\d+/site-packages)?)/([^/]+\.dist-info)/$")
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE_FILE_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\.[^./]+)*\.(?:py|pyc|so)$")

# Runs inside the sandbox: import each module, record the traceback of each failure (and the
# module an ImportError names).
_IMPORT_SCRIPT = """\
import json, sys, time, traceback
modules, out = json.loads(sys.argv[1]), sys.argv[2]
results = []
for name in modules:
    start = time.perf_counter()
    missing = None
    try:
        __import__(name)
        error = None
    except BaseException as exc:
        error = traceback.format_exc()
        if isinstance(exc, ImportError) and isinstance(getattr(exc, "name", None), str):
            missing = exc.name
    results.append([name, error, (time.perf_counter() - start) * 1000, missing])
with open(out, "w", encoding="utf-8") as fh:
    json.dump(results, fh)
"""

# Runs inside the sandbox: load each shared object with ctypes (as the dynamic loader does when
# a module imports it), print what never loads. A grafted library (``scipy.libs/libgfortran``)
# finds its own dependencies only once they are loaded (by soname, as a module's RPATH loads
# them first on Lambda), so files that fail are tried again while another pass loads more.
# argv: the files (relative to /opt) as JSON, then the folder they were unpacked into as the host
# sees it (``/opt`` when that is not visible).
_LOAD_SCRIPT = """\
import ctypes, json, os, sys
files, opt = json.loads(sys.argv[1]), sys.argv[2]
base = opt if os.path.isdir(opt) else "/opt"
pending, errors = list(files), {}
while pending:
    left = []
    for rel in pending:
        try:
            ctypes.CDLL(os.path.join(base, rel))
        except OSError as exc:
            errors[rel] = str(exc)
            left.append(rel)
    if len(left) == len(pending):
        break
    pending = left
print("LAYERKIT-LOADS " + json.dumps([[rel, errors[rel]] for rel in pending]))
"""
LOAD_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class LayerValidation:
    """What validating one layer on one target found."""

    layer: str
    target: Target
    import_failures: tuple[tuple[str, str], ...]  # (module, traceback)
    imported: tuple[str, ...]
    smoke: str | None  # None: passed (or the layer has none); else its output and traceback
    elf_problems: tuple[Finding, ...]
    smoke_test: str | None = None  # the smoke test's file name, None if the layer has none
    elf_files: int = 0  # ELF files checked
    execution: Execution = Execution.NATIVE  # STATIC_ONLY: imports and smoke test not run
    optional: tuple[OptionalModule, ...] = ()  # modules whose import needs an absent extra
    smoke_output: str = ""  # what the smoke test printed (stdout, then stderr)
    loaded: int = 0  # shared objects loaded with the target interpreter (ctypes), each
    settings: str = "layer.toml"  # where its settings live (its layer.toml, or the template's)

    @property
    def report(self) -> CheckReport:
        """The failures as findings about the layer's zip (imports, smoke test), then ELF files."""
        subject = artifact_path("layer", self.layer)
        where = f"on {self.target.key}"
        found = [
            Finding(
                Severity.ERROR,
                subject,
                f"import {module} fails {where}:\n{error}",
                code="layer-import",
            )
            for module, error in self.import_failures
        ]
        if self.smoke is not None:
            found.append(
                Finding(
                    Severity.ERROR,
                    subject,
                    f"the smoke test fails {where}: {self.smoke}",
                    code="layer-smoke",
                    path=self.smoke_test,
                )
            )
        return CheckReport.of(found, self.elf_problems)

    @property
    def ok(self) -> bool:
        """Whether every import, the smoke test and every ELF check passed."""
        return self.report.ok


def _module_name(entry: str) -> str | None:
    """The importable top-level name a first path component stands for, if any."""
    if _IDENTIFIER_RE.match(entry):
        return entry
    match = _MODULE_FILE_RE.match(entry)
    return match.group(1) if match else None


def modules_in_zip(archive: Path) -> tuple[str, ...]:
    """Every top-level module of every distribution in the layer zip ``archive``, sorted."""
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        texts = {
            name: zf.read(name).decode("utf-8", "replace")
            for name in names
            if name.endswith((".dist-info/RECORD", ".dist-info/top_level.txt"))
        }
    return modules_from_listing(names, texts)


def modules_from_listing(names: Iterable[str], texts: Mapping[str, str]) -> tuple[str, ...]:
    """Top-level modules from a zip's member ``names`` and its dist-info ``texts`` (pure).

    Candidates come from each ``*.dist-info/top_level.txt`` and the first path component of each
    ``RECORD`` line; only names the zip really holds (a package folder, ``name.py``, ``name.pyc``
    or an extension module ``name.*.so``) are kept, so what a slimming pass removed on purpose
    is not imported, and ``numpy.libs``, ``bin`` or ``*.dist-info`` never are.
    """
    names = list(names)
    present: dict[str, set[str]] = {}  # site root -> importable names found in the zip
    for name in names:
        path = PurePosixPath(name)
        for root in _site_roots(path):
            rel = path.relative_to(root).parts
            if not rel:
                continue
            if len(rel) > 1 and _IDENTIFIER_RE.match(rel[0]):
                present.setdefault(str(root), set()).add(rel[0])
            elif len(rel) == 1 and (module := _MODULE_FILE_RE.match(rel[0])):
                present.setdefault(str(root), set()).add(module.group(1))
    found: set[str] = set()
    for name, text in texts.items():
        match = _DIST_INFO_RE.match(name.rsplit("/", 1)[0] + "/")
        if match is None:
            continue
        root = match.group(1)
        candidates: set[str] = set()
        if name.endswith("top_level.txt"):
            candidates.update(line.strip() for line in text.splitlines() if line.strip())
        else:
            for line in text.splitlines():
                first = line.split(",", 1)[0].split("/", 1)[0]
                if first and first not in ("..", ".") and not first.endswith(".dist-info"):
                    module = _module_name(first)
                    if module is not None:
                        candidates.add(module)
        found.update(c for c in candidates if c in present.get(root, set()))
    return tuple(sorted(found))


def _site_roots(path: PurePosixPath) -> list[PurePosixPath]:
    parts = path.parts
    roots = []
    if parts[:1] == ("python",):
        roots.append(PurePosixPath("python"))
        if len(parts) > 4 and parts[1] == "lib" and parts[3] == "site-packages":
            roots.append(PurePosixPath(*parts[:4]))
    return roots


@dataclass(frozen=True)
class _Imports:
    """What importing a layer's modules in the sandbox did."""

    imported: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()  # (module, traceback)
    missing: tuple[tuple[str, str], ...] = ()  # (module, the module its ImportError named)

    def __add__(self, other: _Imports) -> _Imports:
        return _Imports(
            self.imported + other.imported, self.failed + other.failed, self.missing + other.missing
        )


def _check_imports(sandbox: Sandbox, modules: tuple[str, ...], workdir: Path) -> _Imports:
    """Import ``modules`` in one sandboxed process; on a crash, one process per module."""
    out = workdir / "imports.json"
    try:
        proc = run_code(
            sandbox, _IMPORT_SCRIPT, args=[json.dumps(list(modules)), str(out)],
            timeout_s=IMPORT_TIMEOUT_S,
        )  # fmt: skip
    except SandboxError as exc:
        return _Imports(failed=(("(all modules)", str(exc)),))
    if proc.returncode == 0 and out.is_file():
        results = json.loads(out.read_text(encoding="utf-8"))
        return _Imports(
            tuple(name for name, error, *_ in results if error is None),
            tuple((name, error) for name, error, *_ in results if error is not None),
            tuple((r[0], r[3]) for r in results if len(r) > 3 and r[3] is not None),
        )
    if len(modules) == 1:
        detail = f"the process died ({_exit_text(proc.returncode)}):\n{proc.stdout}{proc.stderr}"
        return _Imports(failed=((modules[0], detail),))
    found = _Imports()
    for module in modules:  # find which import kills the process
        found += _check_imports(sandbox, (module,), workdir)
    return found


def _exit_text(returncode: int) -> str:
    return f"signal {-returncode}" if returncode < 0 else f"exit status {returncode}"


def _smoke_env(project: Project, layer: str) -> dict[str, str]:
    services = project.layer(layer).slim.botocore_services
    return {} if services is None else {SERVICES_ENV: ",".join(services)}


def _run_smoke(sandbox: Sandbox, script: Path, env: Mapping[str, str]) -> tuple[str | None, str]:
    """Run the smoke test: (None when it passed, else why it failed; what it printed)."""
    try:
        proc = run_code(sandbox, script, timeout_s=SMOKE_TIMEOUT_S, env=env)
    except SandboxError as exc:
        return str(exc), ""
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode == 0:
        return None, output
    return f"{script.name} failed ({_exit_text(proc.returncode)}):\n{output}", output


def wheel_of_files(archive: Path) -> dict[str, str]:
    """Which distribution (``name version``) installed each file of a layer zip, from RECORD."""
    owners: dict[str, str] = {}
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            if not name.endswith(".dist-info/RECORD"):
                continue
            info = PurePosixPath(name).parent
            dist, _, version = info.name.removesuffix(".dist-info").partition("-")
            text = zf.read(name).decode("utf-8", "replace")
            for line in text.splitlines():
                rel = line.split(",", 1)[0]
                if rel:
                    owners[posixpath.normpath(f"{info.parent}/{rel}")] = f"{dist} {version}"
    return owners


def _load_shared_objects(
    sandbox: Sandbox, files: Iterable[str], owners: Mapping[str, str]
) -> tuple[int, tuple[Finding, ...]]:
    """Load every shared object in ``files`` (relative to /opt) with ctypes in the sandbox.

    Returns how many were loaded and a finding per file the loader refuses, naming the file and
    the distribution (wheel) it came from. A module imported lazily, or a library no test
    imports, is loaded here all the same.
    """
    wanted = sorted(files)
    if not wanted:
        return 0, ()
    try:
        proc = run_code(
            sandbox, _LOAD_SCRIPT, args=[json.dumps(wanted), str(sandbox.opt)],
            timeout_s=LOAD_TIMEOUT_S,
        )  # fmt: skip
    except SandboxError as exc:
        return 0, (elf_finding("(all shared objects)", str(exc), "elf-load"),)
    marker = next(
        (line for line in proc.stdout.splitlines() if line.startswith("LAYERKIT-LOADS ")), None
    )
    if marker is None:
        detail = f"the process died ({_exit_text(proc.returncode)}): {proc.stdout}{proc.stderr}"
        return 0, (elf_finding("(all shared objects)", detail.strip(), "elf-load"),)
    failures = json.loads(marker.split(" ", 1)[1])
    found = tuple(
        elf_finding(
            rel,
            f"does not load with {sandbox.interpreter} ({error}); it comes from the "
            f"{owners.get(rel, 'no distribution (no RECORD names it)')} wheel: pin another "
            "release, or set `[slim] strip = false` if a stripped copy is to blame",
            "elf-load",
        )
        for rel, error in failures
    )
    return len(wanted) - len(found), found


def _file_names(archive: Path) -> tuple[str, ...]:
    with zipfile.ZipFile(archive) as zf:
        return tuple(n for n in zf.namelist() if not n.endswith("/"))


def validate_layer(
    project: Project,
    layer: str,
    target: Target,
    layer_zips: Mapping[str, Path],
    workdir: Path,
    *,
    interpreter: Path | None = None,
    runtime_sdk: Path | None = None,
    cache: Path | None = None,
) -> LayerValidation:
    """Validate ``layer`` for ``target`` from its zip and the zips of the layers it requires.

    ``layer_zips`` maps the layer and each layer in ``project.required_closure(layer)`` to its
    zip; ``workdir`` must be an empty or missing folder (the sandbox is built there). With
    ``cache`` the layers are the shared read-only trees of the layer cache instead of a fresh
    unzip (:mod:`layerkit.runtime.layercache`). Import
    failures, a failing smoke test and ELF problems are returned in the result, never raised;
    a missing zip or interpreter raises a :class:`~layerkit.errors.LayerkitError`.
    """
    spec = project.layer(layer)
    order = (*project.required_closure(layer), layer)
    missing = [name for name in order if name not in layer_zips]
    if missing:
        raise BuildError(
            f"validating layer {layer} for {target.key} needs the zips of "
            f"{', '.join(missing)}; build them first (`inv build.all --runtime {target.runtime}`)."
        )
    for name in order:
        if not Path(layer_zips[name]).is_file():
            raise BuildError(
                f"{layer_zips[name]} (layer {name}, {target.key}) does not exist; build it "
                f"first (`inv build.all --runtime {target.runtime}`)."
            )
    interpreter = interpreter or find_interpreter(target, cwd=project.root)
    support = host_support(target, native_interpreter=interpreter)
    interpreter = support.interpreter or interpreter  # static only: lays out files, runs nothing
    workdir = Path(workdir)
    sandbox = prepare(
        workdir / "sandbox", [Path(layer_zips[name]) for name in order], None, interpreter, target,
        runtime_sdk=runtime_sdk if support.runs_code else None, cache=cache,
    )  # fmt: skip
    own_zip = Path(layer_zips[layer])
    modules = modules_in_zip(own_zip)
    imports = _Imports()
    optional: tuple[OptionalModule, ...] = ()
    failures: tuple[tuple[str, str], ...] = ()
    smoke, smoke_output = None, ""
    if support.runs_code:  # never execute foreign code (runtime/host.py)
        imports = _check_imports(sandbox, modules, workdir)
        optional, failures = split_optional(
            imports.failed, dict(imports.missing), modules, sandbox.search_path
        )
        if spec.smoke_test is not None:
            smoke, smoke_output = _run_smoke(sandbox, spec.smoke_test, _smoke_env(project, layer))
    files = _file_names(own_zip)
    elf_files, unreadable = scan(sandbox.opt, only=files)
    static = check_files(elf_files, target)
    loaded, load_problems = 0, ()
    if support.runs_code:  # every shared object, not only what the imports reached
        broken = {f.subject for f in (*unreadable, *static)}
        libraries = [
            f.path
            for f in elf_files
            if f.path not in broken and is_shared_library(sandbox.opt / f.path)
        ]
        loaded, load_problems = _load_shared_objects(sandbox, libraries, wheel_of_files(own_zip))
    elf_problems = tuple(sorted((*unreadable, *static, *load_problems), key=lambda p: p.subject))
    return LayerValidation(
        layer=layer,
        target=target,
        import_failures=failures,
        imported=imports.imported,
        smoke=smoke,
        elf_problems=elf_problems,
        smoke_test=spec.smoke_test.name if spec.smoke_test is not None else None,
        elf_files=len(elf_files) + len(unreadable),
        execution=support.execution,
        optional=optional,
        smoke_output=smoke_output,
        loaded=loaded,
        settings=spec.settings_file,
    )


def built_layer_zips(project: Project, layer: str, target: Target) -> dict[str, Path]:
    """The built zips of ``layer`` and the layers it requires, checked fresh for ``target``.

    Raises :class:`~layerkit.errors.BuildError` naming what is missing or stale.
    """
    if target not in project.layer(layer).targets():
        raise BuildError(
            f"layer {layer} is not built for {target.key} (its layer.toml lists runtimes "
            f"{', '.join(project.layer(layer).runtimes)}); add the runtime there or pick another."
        )
    names = (*project.required_closure(layer), layer)
    planned, _, _ = plan(project, target, layers=names, functions=False)
    wanted = {p.name: p for p in planned if p.kind == "layer" and p.name in names}
    bad = not_current(output_dir(project, target), wanted.values())
    if bad:
        raise BuildError(
            f"the {target.key} build of layer {layer} is not current: {', '.join(bad)}. Build "
            f"it first: `inv build.layer {layer} --runtime {target.runtime}`."
        )
    out = output_dir(project, target)
    return {name: out / wanted[name].path for name in names}


def validate_built_layer(
    root: Path, layer: str, runtime: str, *, architecture: str = "x86_64"
) -> LayerValidation:
    """Load the project at ``root`` and validate the built zip of ``layer`` for ``runtime``.

    The zips come from ``dist/layers/`` for the template's target and from
    ``dist/<target.key>/layers/`` for any other; they must be fresh (``inv build.layer``).
    """
    project = load_project(Path(root))
    target = Target(runtime, architecture)
    zips = built_layer_zips(project, layer, target)
    runs = host_support(target).runs_code  # the runtime's boto3 is needed only to run code
    cache = default_cache_dir(project.root)
    sdk = runtime_sdk_dir(target, cache) if runs else None
    with tempfile.TemporaryDirectory(prefix=f"layerkit-validate-{layer}-") as tmp:
        return validate_layer(project, layer, target, zips, Path(tmp), runtime_sdk=sdk, cache=cache)


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.rstrip().splitlines())


def _run_lines(v: LayerValidation, *, verbose: bool = False) -> list[str]:
    """The imports and smoke-test lines of a validation that ran the layer's code.

    ``verbose`` adds what the smoke test printed, passed or not.
    """
    lines = [f"  imports: {len(v.imported)} ok ({', '.join(v.imported) or 'none'})"]
    for module, error in v.import_failures:
        lines.append(f"  import {module} FAILED:")
        lines.append(_indent(error))
    lines.extend(f"  note: {o.note()}" for o in v.optional)
    if v.smoke_test is None:
        lines.append(f"  smoke test: none (set `smoke` in {v.settings})")
    elif v.smoke is None:
        lines.append(f"  smoke test {v.smoke_test}: passed")
        if verbose:
            lines.append(_indent(v.smoke_output) if v.smoke_output else "    (it printed nothing)")
    else:
        lines.append(f"  smoke test {v.smoke_test} FAILED:")
        lines.append(_indent(v.smoke))
    return lines


def format_validation(v: LayerValidation, *, verbose: bool = False) -> str:
    """A readable report of one validation: a status line, then what passed and what failed.

    ``verbose`` shows the smoke test's output even when it passed.
    """
    status = "OK" if v.ok else "FAILED"
    if v.execution is not Execution.NATIVE:
        status += f" ({v.execution.value})"
    lines = [f"layer {v.layer} on {v.target.key}: {status}"]
    if v.execution is Execution.STATIC_ONLY:
        lines.append("  imports and smoke test: not run (static only: the host cannot run them)")
    else:
        lines.extend(_run_lines(v, verbose=verbose))
    checked, problems = plural(v.elf_files, "file"), plural(len(v.elf_problems), "problem")
    loaded = f", {plural(v.loaded, 'shared object')} loaded" if v.loaded else ""
    lines.append(f"  ELF: {checked} checked{loaded}, {problems}")
    lines.extend(f"    {p}" for p in v.elf_problems)
    return "\n".join(lines)
