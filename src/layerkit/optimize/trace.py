"""Tracing what each function and each layer's smoke test loads, in the sandbox, on the target.

A trace runs one *subject* in a fresh sandbox (:func:`layerkit.runtime.sandbox.prepare`, then
:func:`~layerkit.runtime.sandbox.run_code`) under the target runtime's interpreter:

- a function: its layers in the template's order and its built package; the handler is imported
  and called with every event in ``functions/<name>/events/*.json``;
- a layer's smoke test: the layer and the layers it requires.

What is recorded (see ``_tracer.py``, which runs inside the sandbox): every module imported, the
files that were opened and the shared objects mapped at exit, what a cold start (the handler's
import) loaded, each event's response, imports that nothing could satisfy and the ``-X
importtime`` figures. The raw record is turned into a :class:`Trace` by :func:`parse_trace`, a
pure function, so everything after the sandbox is tested without an interpreter.

The static half: :func:`static_imports` lists the dotted module names a function's code imports
(``check.imports.dotted_imports``), kept whatever the events load.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from layerkit.check.imports import dotted_imports, read_sources
from layerkit.errors import OptimizeError
from layerkit.project.spec import Function, Layer, Project
from layerkit.runtime.sandbox import prepare, run_code
from layerkit.runtime.target import Target

TRACER = Path(__file__).with_name("_tracer.py")
EVENTS_DIR = "events"


@dataclass(frozen=True)
class ImportTime:
    """One line of ``-X importtime``: a module and the microseconds its import took."""

    module: str
    self_us: int
    cumulative_us: int


@dataclass(frozen=True)
class Outcome:
    """What one event returned (``ok`` is False when the handler raised)."""

    event: str
    ok: bool
    response: Any


@dataclass(frozen=True)
class Subject:
    """What to trace: a function with its events, or a layer's smoke test."""

    kind: str  # "function" or "smoke"
    name: str  # the function's or the layer's name
    layers: tuple[str, ...]  # layer zips in Lambda's extraction order
    handler: str = ""
    events: tuple[Path, ...] = ()
    script: Path | None = None
    memory_mb: int = 1024

    @property
    def label(self) -> str:
        """``function predictions`` / ``smoke test of ml-libraries``."""
        return f"function {self.name}" if self.kind == "function" else f"smoke test of {self.name}"


@dataclass(frozen=True)
class Trace:
    """What one subject loaded, by layer: zip entry names (``python/...``) per layer."""

    subject: Subject
    loaded: Mapping[str, frozenset[str]]  # layer -> entries read (modules, pycs, files, .so)
    cold_start: Mapping[str, frozenset[str]]  # layer -> module sources/pycs loaded at init
    modules: tuple[str, ...]  # every module name imported
    missed: tuple[str, ...]  # imports no finder satisfied (caught or not)
    import_times: tuple[ImportTime, ...]
    outcomes: tuple[Outcome, ...]
    init_ms: float
    failure: Mapping[str, Any] | None = None  # the import of the handler / the script failed

    @property
    def ok(self) -> bool:
        """Whether the subject ran: the handler imported and no event raised (or the script)."""
        return self.failure is None and all(o.ok for o in self.outcomes)

    def problems(self) -> tuple[str, ...]:
        """One line per failure: the import, or each event that raised."""
        out = []
        if self.failure is not None:
            out.append(
                f"{self.subject.label}: {self.failure.get('errorType')}: "
                f"{self.failure.get('errorMessage')}"
            )
        for o in self.outcomes:
            if not o.ok:
                out.append(
                    f"{self.subject.label}, event {o.event}: {o.response.get('errorType')}: "
                    f"{o.response.get('errorMessage')}"
                )
        return tuple(out)


@dataclass(frozen=True)
class LayerFiles:
    """A built layer's zip entries and their unzipped sizes."""

    name: str
    files: Mapping[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Unzipped bytes of every entry."""
        return sum(self.files.values())

    @classmethod
    def read(cls, name: str, archive: Path) -> LayerFiles:
        """The entries of ``archive``."""
        with zipfile.ZipFile(archive) as zf:
            return cls(name, {i.filename: i.file_size for i in zf.infolist() if not i.is_dir()})


# ---------------------------------------------------------------- pure: raw record -> Trace


def parse_importtime(text: str) -> tuple[ImportTime, ...]:
    """The ``import time:`` lines of ``-X importtime`` output (other lines are ignored)."""
    found = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        try:
            own, cumulative, name = line[len("import time:") :].split("|", 2)
            found.append(ImportTime(name.strip(), int(own), int(cumulative)))
        except ValueError:
            continue
    return tuple(found)


def owners(layers: Sequence[LayerFiles]) -> dict[str, str]:
    """Which layer each ``opt/`` entry comes from: a later layer's file overwrites an earlier's."""
    owner: dict[str, str] = {}
    for layer in layers:
        for name in layer.files:
            owner[name] = layer.name
    return owner


def _by_layer(paths: Sequence[str], opt: str, owner: Mapping[str, str]) -> dict[str, set[str]]:
    """Group absolute sandbox paths under ``opt`` by the layer that owns them."""
    prefix = opt.rstrip("/") + "/"
    grouped: dict[str, set[str]] = {}
    for path in paths:
        if not path.startswith(prefix):
            continue
        rel = PurePosixPath(path[len(prefix) :]).as_posix()
        layer = owner.get(rel)
        if layer is not None:
            grouped.setdefault(layer, set()).add(rel)
    return grouped


def parse_trace(
    subject: Subject,
    raw: Mapping[str, Any],
    importtime: str,
    opt: str,
    owner: Mapping[str, str],
) -> Trace:
    """Turn the tracer's JSON and its importtime text into a :class:`Trace` (pure).

    ``opt`` is the sandbox's ``opt/`` folder as the tracer saw it; ``owner`` maps each entry
    under it to its layer (:func:`owners`). Files outside ``opt/`` (the function package, the
    standard library) are not attributed to any layer.
    """
    modules: Mapping[str, Sequence[str | None]] = raw.get("modules", {})
    module_files = [p for pair in modules.values() for p in pair if isinstance(p, str)]
    loaded = _by_layer([*module_files, *raw.get("opened", ()), *raw.get("mapped", ())], opt, owner)
    init = set(raw.get("init_modules", ()))
    cold = _by_layer(
        [p for name in init for p in modules.get(name, ()) if isinstance(p, str)], opt, owner
    )
    return Trace(
        subject=subject,
        loaded={k: frozenset(v) for k, v in loaded.items()},
        cold_start={k: frozenset(v) for k, v in cold.items()},
        modules=tuple(sorted(modules)),
        missed=tuple(raw.get("missed", ())),
        import_times=parse_importtime(importtime),
        outcomes=tuple(
            Outcome(o["event"], bool(o["ok"]), o["response"]) for o in raw.get("outcomes", ())
        ),
        init_ms=float(raw.get("init_ms", 0.0)),
        failure=raw.get("failure"),
    )


# ---------------------------------------------------------------- subjects of a project


def subjects(project: Project, layer: str | None = None) -> tuple[Subject, ...]:
    """Every function (with its events) and every layer's smoke test.

    With ``layer``, only those that load it: the functions attaching it, its own smoke test and
    those of the layers that require it.
    """
    out: list[Subject] = []
    for fn in project.functions:
        if layer is not None and layer not in fn.layers:
            continue
        out.append(function_subject(fn))
    for item in project.layers:
        if item.smoke_test is None:
            continue
        stack = (*project.required_closure(item.name), item.name)
        if layer is None or layer in stack:
            out.append(smoke_subject(item, stack))
    return tuple(out)


def function_subject(fn: Function) -> Subject:
    """A function and its events (sorted by file name)."""
    events = tuple(sorted((fn.path / EVENTS_DIR).glob("*.json")))
    return Subject(
        "function", fn.name, fn.layers, handler=fn.handler, events=events, memory_mb=fn.memory_size
    )


def smoke_subject(layer: Layer, stack: Sequence[str]) -> Subject:
    """A layer's smoke test on the layer and the layers it requires (in extraction order)."""
    return Subject("smoke", layer.name, tuple(stack), script=layer.smoke_test)


def static_imports(fn: Function, files: Sequence[Path], target: Target) -> tuple[str, ...]:
    """The dotted modules a function's code imports (``from a.b import c`` gives a.b, a.b.c)."""
    sources = read_sources(fn.path, files)
    names = set()
    for rel, text in sources.items():
        names.update(name for name, _ in dotted_imports(text, rel, target.python_version))
    return tuple(sorted(names))


# ---------------------------------------------------------------- the sandbox edge


class Runner(Protocol):
    """Runs a subject and returns its :class:`Trace` (the sandbox, or a fake in tests)."""

    def __call__(self, subject: Subject) -> Trace:
        """Trace ``subject``."""
        ...


@contextlib.contextmanager
def aws_endpoint() -> Iterator[dict[str, str]]:
    """A local moto server for events that call AWS (the environment that points boto3 at it)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_REGION": "us-east-1"}
    finally:
        server.stop()


@dataclass(frozen=True)
class SandboxRunner:
    """Trace subjects in the sandbox from built zips under ``out_dir`` (``dist/``)."""

    out_dir: Path
    interpreter: Path
    target: Target
    env: Mapping[str, str] = field(default_factory=dict)
    packages: Mapping[str, Path] = field(default_factory=dict)  # function -> zip or folder
    runtime_sdk: Path | None = None  # the runtime's own boto3 (Lambda's /var/runtime)
    cache: Path | None = None  # shared read-only extracted zips (layerkit.runtime.layercache)

    def layer_zip(self, name: str) -> Path:
        """The built zip of a layer (OptimizeError when it is missing)."""
        path = self.out_dir / "layers" / f"{name}.zip"
        if not path.is_file():
            raise OptimizeError(
                f"{path} does not exist: tracing needs the built layer {name}; run "
                "`inv build.all` first."
            )
        return path

    def __call__(self, subject: Subject) -> Trace:
        """Trace ``subject`` in a fresh sandbox."""
        zips = [self.layer_zip(n) for n in subject.layers]
        package = None
        if subject.kind == "function":
            package = self.packages.get(
                subject.name, self.out_dir / "functions" / f"{subject.name}.zip"
            )
        layers = [LayerFiles.read(n, z) for n, z in zip(subject.layers, zips, strict=True)]
        with tempfile.TemporaryDirectory(prefix=f"layerkit-trace-{subject.name}-") as tmp:
            sandbox = prepare(
                Path(tmp) / "sandbox", zips, package, self.interpreter, self.target,
                runtime_sdk=self.runtime_sdk, cache=self.cache,
            )  # fmt: skip
            job_dir = Path(tmp) / "job"
            job_dir.mkdir()
            job = {
                "kind": subject.kind,
                "handler": subject.handler,
                "events": [str(e) for e in subject.events],
                "script": str(subject.script) if subject.script else "",
                "out": str(job_dir / "trace.json"),
                "importtime": str(job_dir / "importtime.txt"),
            }
            job_path = job_dir / "job.json"
            job_path.write_text(json.dumps(job), encoding="utf-8")
            proc = run_code(
                sandbox,
                TRACER,
                args=[str(job_path)],
                env=dict(self.env),
                function_name=subject.name,
                memory_mb=subject.memory_mb,
            )
            out = Path(job["out"])
            if not out.is_file():
                raise OptimizeError(
                    f"tracing the {subject.label} in the {self.target.runtime} sandbox wrote no "
                    f"result (exit {proc.returncode}): {(proc.stderr or proc.stdout)[-1500:]}"
                )
            raw = json.loads(out.read_text(encoding="utf-8"))
            importtime = Path(job["importtime"]).read_text(encoding="utf-8", errors="replace")
            return parse_trace(subject, raw, importtime, str(sandbox.opt), owners(layers))


def trace_all(subjects_: Sequence[Subject], runner: Runner) -> tuple[Trace, ...]:
    """Trace every subject with ``runner``, in order."""
    return tuple(runner(s) for s in subjects_)
