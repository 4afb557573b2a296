"""A warm ``invoke`` of predictions: the layers already in the shared cache (target ≤ 1.5 s).

"Warm" is what every ``inv invoke`` after the first pays: the built zips are extracted once into
the read-only cache (:mod:`layerkit.runtime.layercache`), so a call is a fresh python3.9
process importing the handler (pandas, scikit-learn, the model) and running it — no unzipping.
The first (cold-cache) call is measured apart. Run with ``nox -s bench``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from layerkit.build.pipeline import require_fresh
from layerkit.check.invocation import invoke_function
from layerkit.errors import LayerkitError
from layerkit.project.spec import load_project
from layerkit.runtime.target import find_interpreter

pytestmark = pytest.mark.benchmark(group="warm-invoke", disable_gc=False, warmup=False)

ROOT = Path(__file__).resolve().parents[2]
TARGET_S = 1.5


def test_warm_invoke_of_predictions(benchmark: Any, tmp_path: Path, capsys: Any) -> None:
    project = load_project(ROOT)
    try:
        out = require_fresh(project).out_dir
    except LayerkitError as exc:
        pytest.fail(f"the benchmark invokes the built zips: {exc}", pytrace=False)
    fn = project.function("predictions")
    event = json.loads((fn.path / "events" / "basic.json").read_text())
    interpreter = find_interpreter(fn.target, cwd=ROOT)
    cache = tmp_path / "cache"
    started = time.perf_counter()
    first = invoke_function(project, fn.name, event, out, interpreter=interpreter, cache=cache)
    cold_cache_s = time.perf_counter() - started
    assert first.ok, (first.response, first.logs)

    def warm() -> None:
        result = invoke_function(project, fn.name, event, out, interpreter=interpreter, cache=cache)
        assert result.ok, (result.response, result.logs)

    benchmark.pedantic(warm, rounds=5, iterations=1, warmup_rounds=0)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(cold_cache_s=round(cold_cache_s, 2), target_s=TARGET_S)
    with capsys.disabled():
        print(
            f"\npredictions: warm invoke {median:.2f} s (target {TARGET_S} s), first call with "
            f"an empty cache {cold_cache_s:.2f} s; {first.report_line()}"
        )
