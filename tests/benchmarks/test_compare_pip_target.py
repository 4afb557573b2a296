"""The pip --target baseline versus layerkit, side by side, in one run (`nox -s bench`).

The baseline is how layers are commonly built by hand: `pip install --only-binary=:all:
--no-compile -t layer/python -r requirements.txt` per layer with the target's pip, then a
find/delete cleanup (``__pycache__``, ``*.dist-info``, tests/docs/examples/bin folders, ``*.pyc``,
``*.md``, ``*.txt``), no bytecode: "pip --target with find/delete cleanup" in the output.
layerkit: the layer zips in dist/ (`inv build.all`).

For each method the three layers are extracted in the order Lambda does (core-data-science,
ml-libraries, aws-utilities; a later layer's file overwrites an earlier one's) into one
`opt/python`. A fresh python3.9 process with PYTHONDONTWRITEBYTECODE=1 and that folder first on
sys.path times `import pandas`, `import sklearn.linear_model` and `import boto3` plus an s3
client. An import that fails (the cleanup deletes botocore/docs, so `import boto3` fails) is
reported as FAIL in the table, not as a crash. Sizes and ratios are printed at the end and
written to dist/benchmark-compare-pip-target.json.

Run: `nox -s bench`, or `pytest tests/benchmarks/test_compare_pip_target.py -m benchmark
--benchmark-only` after `inv build.all`. The default test run skips it (--benchmark-skip).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from layerkit.errors import InterpreterNotFoundError
from layerkit.runtime.target import Target, find_interpreter

pytestmark = pytest.mark.benchmark

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
LAYERS = ("core-data-science", "ml-libraries", "aws-utilities")  # Lambda's extraction order
CASES = {
    "pandas": "import pandas",
    "sklearn.linear_model": "import sklearn.linear_model",
    "boto3 + s3 client": "import boto3; boto3.client('s3', region_name='us-east-1')",
}
BASELINE = "pip-target"  # pip --target with find/delete cleanup
#: What the output calls the baseline.
BASELINE_NAME = "pip --target with find/delete cleanup"
METHODS = (BASELINE, "layerkit")
ROUNDS = int(os.environ.get("LAYERKIT_BENCH_ROUNDS", "7"))
RESULTS: dict[str, dict[str, object]] = {}


def find_delete_cleanup(python: Path) -> None:
    """The baseline's find/delete cleanup, file for file."""
    for path in sorted(python.rglob("*"), key=lambda p: -len(p.parts)):
        if not path.exists() and not path.is_symlink():
            continue
        name = path.name
        if path.is_dir() and not path.is_symlink():
            if (
                name == "__pycache__"
                or name.endswith((".dist-info", ".egg-info"))
                or name in ("tests", "test", "docs", "examples", "bin")
            ):
                shutil.rmtree(path)
        elif name.endswith((".pyc", ".pyo", ".exe", ".md")) or (
            name.endswith(".txt") and not name.startswith("requirements")
        ):
            path.unlink()


def tree_bytes(root: Path) -> int:
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() or p.is_symlink())


@pytest.fixture(scope="module")
def python39() -> Path:
    try:
        return find_interpreter(Target("python3.9"), cwd=ROOT)
    except InterpreterNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def opt_dirs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, python39: Path
) -> dict[str, Path]:
    """``{"pip-target": opt/python, "layerkit": opt/python}``, each the three layers merged."""
    skipping = request.config.getoption("benchmark_skip", False)
    if skipping and not request.config.getoption("benchmark_only", False):
        pytest.skip("benchmarks run with `nox -s bench` (--benchmark-only)")
    manifest = DIST / "manifest.json"
    if not manifest.is_file():
        pytest.skip("no dist/manifest.json: run `inv build.all` first")
    base = tmp_path_factory.mktemp("compare")
    sizes: dict[str, dict[str, int]] = {m: {} for m in METHODS}
    # layerkit: the built zips
    lk = base / "layerkit" / "opt"
    for layer in LAYERS:
        with zipfile.ZipFile(DIST / "layers" / f"{layer}.zip") as zf:
            sizes["layerkit"][layer] = sum(i.file_size for i in zf.infolist())
            zf.extractall(lk)
    # the baseline: pip --target per layer with the target's pip, then find/delete cleanup
    baseline = base / BASELINE / "opt"
    for layer in LAYERS:
        staged = base / BASELINE / layer / "python"
        subprocess.run(
            [str(python39), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-cache-dir", "--only-binary=:all:", "--no-compile", "-t", str(staged),
             "-r", str(ROOT / "layers" / layer / "requirements.txt")],
            check=True, cwd=base,
        )  # fmt: skip
        find_delete_cleanup(staged)
        sizes[BASELINE][layer] = tree_bytes(staged)
        shutil.copytree(staged, baseline / "python", dirs_exist_ok=True)
    RESULTS["sizes"] = sizes
    return {BASELINE: baseline / "python", "layerkit": lk / "python"}


def import_once(python39: Path, site: Path, statement: str) -> float:
    """Seconds a fresh process spends on ``statement``; raises RuntimeError if it fails."""
    code = (
        "import sys, time, warnings\nwarnings.simplefilter('ignore')\n"
        f"sys.path.insert(0, {str(site)!r})\nt = time.perf_counter()\n{statement}\n"
        "print(time.perf_counter() - t)"
    )
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [str(python39), "-B", "-s", "-c", code],
        capture_output=True, text=True, env=env, cwd=site.parent, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr.strip().splitlines() or ["no output"])[-1])
    return float(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(CASES))
def test_cold_import(
    benchmark, opt_dirs: dict[str, Path], python39: Path, case: str, method: str
) -> None:
    site = opt_dirs[method]
    try:
        import_once(python39, site, CASES[case])  # warm the page cache; fails fast
    except RuntimeError as exc:
        RESULTS.setdefault("times", {})[f"{case}|{method}"] = f"FAIL ({exc})"  # type: ignore[index]
        if method == "layerkit":
            pytest.fail(f"layerkit's layers cannot run {CASES[case]!r}: {exc}")
        pytest.xfail(f"the {BASELINE_NAME} layers cannot run {CASES[case]!r}: {exc}")
    samples: list[float] = []
    benchmark.extra_info.update(case=case, method=method)
    benchmark.pedantic(
        lambda: samples.append(import_once(python39, site, CASES[case])),
        rounds=ROUNDS,
        iterations=1,
    )
    samples.sort()
    RESULTS.setdefault("times", {})[f"{case}|{method}"] = samples[len(samples) // 2]  # type: ignore[index]


@pytest.fixture(scope="module", autouse=True)
def print_comparison(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module: sizes and median import times side by side, with ratios."""
    yield
    if not RESULTS:
        return
    lines = ["", f"{BASELINE_NAME} vs layerkit (python3.9, PYTHONDONTWRITEBYTECODE=1)"]
    sizes = RESULTS.get("sizes", {})
    if sizes:
        lines.append(f"{'unzipped MB':28}{'pip --target':>14}{'layerkit':>14}{'ratio':>16}")
        for layer in (*LAYERS, "total"):
            s = sum(sizes[BASELINE].values()) if layer == "total" else sizes[BASELINE][layer]
            k = sum(sizes["layerkit"].values()) if layer == "total" else sizes["layerkit"][layer]
            lines.append(f"{layer:28}{s / 1e6:14.1f}{k / 1e6:14.1f}{s / k:15.2f}x")
    times = RESULTS.get("times", {})
    if times:
        lines.append(
            f"{'import time, median s':28}{'pip --target':>14}{'layerkit':>14}{'speed-up':>16}"
        )
        for case in CASES:
            s, k = times.get(f"{case}|{BASELINE}"), times.get(f"{case}|layerkit")
            ratio = f"{s / k:15.2f}x" if isinstance(s, float) and isinstance(k, float) else "-"
            fmt = lambda v: f"{v:14.3f}" if isinstance(v, float) else f"{str(v)[:60]:>14}"  # noqa: E731
            lines.append(f"{case:28}{fmt(s)}{fmt(k)}{ratio:>16}")
    out = DIST / "benchmark-compare-pip-target.json"
    if DIST.is_dir():
        out.write_text(json.dumps(RESULTS, indent=2, default=str) + "\n")
        lines.append(f"(written to {out})")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # teardown output is captured otherwise
            reporter.write_line("\n".join(lines))
