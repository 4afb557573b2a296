"""`sam build` versus `inv build.all --force`, side by side in one run (`nox -s bench`).

The same three layers: a SAM template with one `AWS::Serverless::LayerVersion` per layer, its
ContentUri a folder holding a copy of `layers/<name>/requirements.txt`, `BuildMethod: python3.9`,
no containers (SAM's python_pip workflow with the python3.9 on PATH). layerkit builds a copy of
this project (layers, functions, locks, template, tasks.py, model_training.py) with `python -m invoke build.all
--force` in a fresh process.

Five timings, each the wall clock of one command:
- warm: after one untimed run of each (pip's cache and uv's cache hold every wheel; layerkit's
  own cache folder, LAYERKIT_CACHE_DIR, holds its step cache and unzipped layers);
- warm-uv (layerkit only): uv's cache warm, layerkit's own cache folder empty, so every module
  is compiled, every extension stripped and every file deflated again;
- cold: each tool with empty temporary cache folders (PIP_CACHE_DIR for SAM, UV_CACHE_DIR and
  LAYERKIT_CACHE_DIR for layerkit), so every wheel is downloaded again.
Both tools run without PYTHONDONTWRITEBYTECODE, as on a developer's machine: each keeps its own
bytecode, and pip (which SAM runs) compiles what it installs, as it does by default.
LAYERKIT_BENCH_ENV=as-is keeps the variable as the caller set it (then pip compiles nothing and
both tools compile their own code at every start).
Plus layerkit's no-op rebuild (`inv build.all` with nothing changed). The figures and ratios are
printed at the end and written to dist/benchmark-sam-build.json; nothing here asserts a time.

aws-sam-cli comes from PyPI in the bench session's environment (`nox -s bench`); outside nox set
LAYERKIT_SAM to a `sam` executable. Slow: minutes on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
LAYERS = ("core-data-science", "ml-libraries", "aws-utilities")
COPIED = ("layers", "functions", "locks")
RESULTS: dict[str, float] = {}
CASES = ("sam|warm", "layerkit|warm", "layerkit|warm-uv", "sam|cold", "layerkit|cold")


def sam_template(layers: tuple[str, ...]) -> str:
    """A SAM template building each layer from its requirements.txt with BuildMethod python3.9."""
    lines = ['AWSTemplateFormatVersion: "2010-09-09"', "Transform: AWS::Serverless-2016-10-31",
             "Resources:"]  # fmt: skip
    for name in layers:
        logical = "".join(part.capitalize() for part in name.split("-")) + "Layer"
        lines += [
            f"  {logical}:",
            "    Type: AWS::Serverless::LayerVersion",
            "    Properties:",
            f"      LayerName: {name}",
            f"      ContentUri: {name}/",
            "      CompatibleRuntimes: [python3.9]",
            "      CompatibleArchitectures: [x86_64]",
            "    Metadata:",
            "      BuildMethod: python3.9",
            "      BuildArchitecture: x86_64",
        ]
    return "\n".join(lines) + "\n"


def sam_executable() -> Path:
    """``sam`` from LAYERKIT_SAM, this environment's bin folder or PATH (skip when absent)."""
    candidates = [os.environ.get("LAYERKIT_SAM"), str(Path(sys.executable).with_name("sam"))]
    for candidate in [*candidates, shutil.which("sam")]:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.skip("aws-sam-cli is not installed here (nox -s bench installs it; or set LAYERKIT_SAM)")


def timed(command: list[str], cwd: Path, env: Mapping[str, str]) -> float:
    """Seconds ``command`` takes; a failure fails the benchmark with the command's output."""
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, env=dict(env), capture_output=True, text=True,
                          check=False)  # fmt: skip
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed


@pytest.fixture(scope="module")
def workspace(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The SAM project and the layerkit copy, side by side in one temporary folder."""
    skipping = request.config.getoption("benchmark_skip", False)
    if skipping and not request.config.getoption("benchmark_only", False):
        pytest.skip("benchmarks run with `nox -s bench` (--benchmark-only)")
    base = tmp_path_factory.mktemp("sam-vs-layerkit")
    sam_dir = base / "sam"
    for name in LAYERS:
        (sam_dir / name).mkdir(parents=True)
        shutil.copy2(ROOT / "layers" / name / "requirements.txt", sam_dir / name)
    (sam_dir / "template.yaml").write_text(sam_template(LAYERS))
    lk_dir = base / "layerkit"
    for name in COPIED:
        shutil.copytree(ROOT / name, lk_dir / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("template.yaml", "tasks.py", "model_training.py", "pyproject.toml", ".cfnlintrc"):
        shutil.copy2(ROOT / name, lk_dir / name)
    return {"base": base, "sam": sam_dir, "layerkit": lk_dir}


def command(tool: str, dirs: Mapping[str, Path], *, force: bool = True) -> list[str]:
    """The build command of ``tool`` in its folder."""
    if tool == "sam":
        return [str(sam_executable()), "build", "--template-file", "template.yaml",
                "--build-dir", str(dirs["base"] / "sam-build")]  # fmt: skip
    return [sys.executable, "-m", "invoke", "build.all", *(["--force"] if force else [])]


def environment(tool: str, cache: Path | None, caches: str = "warm") -> dict[str, str]:
    """The host environment, SAM's telemetry off, and (cold, warm-uv) empty cache folders."""
    dropped = ("PIP_CACHE_DIR", "UV_CACHE_DIR", "LAYERKIT_CACHE_DIR")
    if os.environ.get("LAYERKIT_BENCH_ENV") != "as-is":
        dropped += ("PYTHONDONTWRITEBYTECODE",)
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["SAM_CLI_TELEMETRY"] = "0"
    versions = ROOT / ".python-version"  # pyenv's shims find python3.9 from any folder
    if versions.is_file() and "PYENV_VERSION" not in env:
        env["PYENV_VERSION"] = ":".join(versions.read_text().split())
    if cache is not None and tool == "sam":
        env["PIP_CACHE_DIR"] = str(cache)
    elif cache is not None:
        env["LAYERKIT_CACHE_DIR"] = str(cache / "layerkit")
        if caches == "cold":
            env["UV_CACHE_DIR"] = str(cache / "uv")
    return env


@pytest.mark.parametrize("case", CASES)
def test_build_time(benchmark, workspace: dict[str, Path], case: str) -> None:
    tool, caches = case.split("|")
    cwd = workspace[tool]
    cache = None
    if caches == "warm":
        timed(command(tool, workspace), cwd, environment(tool, None))  # fills the caches
    else:
        cache = workspace["base"] / f"empty-cache-{tool}"
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir()
    if caches == "warm-uv":
        timed(command(tool, workspace), cwd, environment(tool, None))  # fills uv's cache
    seconds: list[float] = []
    benchmark.extra_info.update(tool=tool, caches=caches)
    env = environment(tool, cache, caches)
    benchmark.pedantic(
        lambda: seconds.append(timed(command(tool, workspace), cwd, env)),
        rounds=1,
        iterations=1,
    )
    RESULTS[case] = seconds[0]
    if case == "layerkit|warm":
        RESULTS["layerkit|no-op"] = timed(
            command(tool, workspace, force=False), cwd, environment(tool, None)
        )


@pytest.fixture(scope="module", autouse=True)
def print_comparison(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module: the four timings side by side with the ratios."""
    yield
    if not RESULTS:
        return
    lines = ["", "sam build vs inv build.all --force (three layers, python3.9, wall clock s)"]
    for caches in ("warm", "warm-uv", "cold"):
        sam, lk = RESULTS.get(f"sam|{caches}"), RESULTS.get(f"layerkit|{caches}")
        ratio = f"{sam / lk:.2f}x" if sam and lk else "-"
        fmt = lambda v: f"{v:10.1f}" if v is not None else f"{'-':>10}"  # noqa: E731
        lines.append(
            f"{caches + ' caches':14} sam {fmt(sam)}  layerkit {fmt(lk)}  sam/layerkit {ratio}"
        )
    if "layerkit|no-op" in RESULTS:
        lines.append(f"layerkit no-op rebuild: {RESULTS['layerkit|no-op']:.2f} s")
    if DIST.is_dir():
        out = DIST / "benchmark-sam-build.json"
        out.write_text(json.dumps(RESULTS, indent=2) + "\n")
        lines.append(f"(written to {out})")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("\n".join(lines))
