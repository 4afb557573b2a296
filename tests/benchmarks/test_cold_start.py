"""Cold-start benchmarks through the sandbox: fresh python3.9 processes, the built zips in dist/.

Each case runs twice: with the layers' shipped bytecode, and with every ``.pyc`` left out
(what a layer without bytecode costs on Lambda, where /opt is read-only and nothing gets
cached). The benchmark time is the whole fresh process (what a cold start pays); the time the
import or handler init took inside the process is saved in ``extra_info`` and the ratio
source/bytecode is printed and saved. Run with ``nox -s bench`` (it builds first), or
``pytest tests/benchmarks --benchmark-only --benchmark-autosave``; compare runs with
``--benchmark-compare``. Set LAYERKIT_BENCH_ROUNDS to change the number of rounds (default 5).
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any

import pytest

from layerkit.build.pipeline import output_dir, require_fresh
from layerkit.errors import LayerkitError
from layerkit.project.spec import Project, load_project
from layerkit.runtime.sandbox import Sandbox, invoke, prepare, run_code
from layerkit.runtime.target import find_interpreter

pytestmark = pytest.mark.benchmark(group="cold-start", disable_gc=False, warmup=False)

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = int(os.environ.get("LAYERKIT_BENCH_ROUNDS", "5"))
VARIANTS = ("bytecode", "source")

IMPORTS = {
    "pandas": "import pandas",
    "sklearn.linear_model": "import sklearn.linear_model",
    "boto3+s3": "import boto3\nboto3.client('s3', region_name='us-east-1')",
}
# Which layers each import needs, in the order a function attaches them.
IMPORT_LAYERS = {
    "pandas": ("core-data-science",),
    "sklearn.linear_model": ("core-data-science", "ml-libraries"),
    "boto3+s3": ("aws-utilities",),
}
TIMED = """\
import sys, time
start = time.perf_counter()
exec(compile({code!r}, "<cold-start>", "exec"))
sys.stdout.write("%.3f" % ((time.perf_counter() - start) * 1000))
"""

_medians: dict[tuple[str, str], float] = {}


class Built:
    """The project, its dist/ folder, and sandboxes prepared on demand (one per layer set)."""

    def __init__(self, project: Project, work: Path) -> None:
        self.project = project
        self.target = project.deploy_target
        self.out = output_dir(project, self.target)
        self.interpreter = find_interpreter(self.target, cwd=project.root)
        self.work = work
        self._sandboxes: dict[tuple[Any, ...], Sandbox] = {}

    def sandbox(self, layers: tuple[str, ...], function: str | None, variant: str) -> Sandbox:
        key = (layers, function, variant)
        if key not in self._sandboxes:
            zips = [self.out / "layers" / f"{name}.zip" for name in layers]
            fn = self.out / "functions" / f"{function}.zip" if function else None
            self._sandboxes[key] = prepare(
                self.work / f"sandbox-{len(self._sandboxes)}",
                zips,
                fn,
                self.interpreter,
                self.target,
                skip_bytecode=variant == "source",
            )
        return self._sandboxes[key]


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    project = load_project(ROOT)
    try:
        require_fresh(project)
    except LayerkitError as exc:
        pytest.fail(f"the benchmarks measure the built zips: {exc}", pytrace=False)
    return Built(project, tmp_path_factory.mktemp("cold-start"))


def _record(benchmark: Any, case: str, variant: str, inner_ms: list[float], label: str) -> None:
    median = statistics.median(inner_ms)
    benchmark.extra_info[f"{label}_ms"] = inner_ms
    benchmark.extra_info[f"{label}_median_ms"] = round(median, 2)
    _medians[(case, variant)] = median
    other = _medians.get((case, "bytecode"))
    if variant == "source" and other:
        ratio = median / other
        benchmark.extra_info["ratio_source_to_bytecode"] = round(ratio, 2)
        print(
            f"\n{case}: {label} {median:.0f} ms without bytecode, {other:.0f} ms with it: "
            f"{ratio:.2f}x"
        )


@pytest.mark.parametrize(
    ("name", "variant"), [(n, v) for n in IMPORTS for v in VARIANTS], ids=lambda x: x
)
def test_import(benchmark: Any, built: Built, name: str, variant: str, capsys: Any) -> None:
    sandbox = built.sandbox(IMPORT_LAYERS[name], None, variant)
    code = TIMED.format(code=IMPORTS[name])
    inner: list[float] = []

    def cold_import() -> None:
        proc = run_code(sandbox, code, timeout_s=120)
        assert proc.returncode == 0, proc.stderr
        inner.append(float(proc.stdout))

    benchmark.pedantic(cold_import, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    with capsys.disabled():
        _record(benchmark, f"import {name}", variant, inner[1:], "import")


def _functions() -> list[str]:
    try:
        return [fn.name for fn in load_project(ROOT).functions]
    except LayerkitError:
        return []


def _event(project: Project, function: str) -> Any:
    events = sorted((project.function(function).path / "events").glob("*.json"))
    basic = [e for e in events if e.name == "basic.json"]
    return json.loads((basic or events)[0].read_text()) if events else {}


@pytest.mark.parametrize(
    ("function", "variant"), [(f, v) for f in _functions() for v in VARIANTS], ids=lambda x: x
)
def test_handler_init(
    benchmark: Any, built: Built, function: str, variant: str, capsys: Any
) -> None:
    fn = built.project.function(function)
    sandbox = built.sandbox(fn.layers, fn.name, variant)
    event = _event(built.project, function)
    inits: list[float] = []

    def cold_start() -> None:
        result = invoke(
            sandbox, fn.handler, event, function_name=fn.name, memory_mb=fn.memory_size,
            timeout_s=fn.timeout,
            init_limit_s=120,  # measured, not judged: without bytecode init may pass Lambda's 10 s
        )  # fmt: skip
        assert result.ok, (result.response, result.logs)
        inits.append(result.init_ms)

    benchmark.pedantic(cold_start, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    with capsys.disabled():
        _record(benchmark, f"{function} handler", variant, inits[1:], "init")
