from __future__ import annotations

from layerkit.optimize.advice import (
    advise_layer,
    candidates,
    package_dirs,
    removed_modules_reached,
    slowest_imports,
)
from layerkit.optimize.trace import ImportTime, LayerFiles, Subject, Trace

FILES = {
    "python/sk/__init__.py": 100,
    "python/sk/linear/__init__.py": 100,
    "python/sk/linear/_base.py": 1000,
    "python/sk/datasets/__init__.py": 100,
    "python/sk/datasets/_base.py": 2000,
    "python/sk/datasets/data/iris.csv": 50,
    "python/sk/datasets/deep/__init__.py": 10,
    "python/sk/compose/__init__.py": 100,
    "python/sk/compose/_x.py": 300,
    "python/sk/keepme/__init__.py": 100,
    "python/tz/__init__.py": 10,
    "python/tz/zoneinfo/__init__.py": 10,
    "python/tz/zoneinfo/Europe/Paris": 5000,
    "python/lonely/__init__.py": 10,
    "python/lonely/sub/__init__.py": 10,
    "python/sk-1.0.dist-info/LICENSE": 900,
}
LOADED = frozenset(
    {
        "python/sk/__init__.py",
        "python/sk/linear/__init__.py",
        "python/sk/linear/_base.py",
        "python/tz/__init__.py",
    }
)


def judged(static: tuple[str, ...] = (), keep: tuple[str, ...] = ()) -> dict[str, str]:
    return {
        c.pattern: ("prune" if c.prunable else c.reason)
        for c in candidates(FILES, LOADED, static, keep)
    }


def test_packages_are_folders_with_an_init_module() -> None:
    assert "sk/datasets" in package_dirs(FILES)
    assert "sk/datasets/data" not in package_dirs(FILES)


def test_only_the_topmost_unloaded_subpackage_is_a_candidate_never_a_top_level_one() -> None:
    found = judged()
    assert found["sk/datasets"] == "prune"
    assert "sk/datasets/deep" not in found  # its parent goes as a whole
    assert "lonely" not in found  # a top-level package (a distribution) is never a candidate
    assert "sk/linear" not in found  # loaded
    assert "sk" not in found


def test_the_candidate_carries_all_its_files_and_bytes() -> None:
    datasets = next(c for c in candidates(FILES, LOADED, (), ()) if c.pattern == "sk/datasets")
    assert (datasets.files, datasets.bytes) == (4, 2160)


def test_a_statically_imported_module_keeps_its_package() -> None:
    found = judged(static=("sk.compose.ColumnTransformer",))
    assert found["sk/compose"].startswith("a function imports it")
    assert found["sk/datasets"] == "prune"


def test_keep_patterns_and_data_packages_are_not_pruned() -> None:
    found = judged(keep=("sk/keepme",))
    assert found["sk/keepme"].startswith("a keep pattern")
    assert found["tz/zoneinfo"].startswith("mostly data files")


def test_advice_counts_unloaded_files_but_not_licences() -> None:
    layer = LayerFiles("l", FILES)
    trace = Trace(
        Subject("function", "fn", ("l",)),
        loaded={"l": LOADED},
        cold_start={"l": frozenset({"python/sk/__init__.py"})},
        modules=(),
        missed=(),
        import_times=(),
        outcomes=(),
        init_ms=1.0,
    )
    advice = advise_layer(layer, [trace], (), ())
    assert advice.total_bytes == sum(FILES.values())
    assert advice.unloaded_bytes == sum(FILES.values()) - 1210 - 900
    assert advice.cold_start_without_bytecode == ("sk/__init__.py",)
    assert advice.prune_bytes == sum(c.bytes for c in advice.candidates if c.prunable)


def _trace(modules: tuple[str, ...] = (), missed: tuple[str, ...] = (), times=()) -> Trace:
    return Trace(Subject("smoke", "l", ("l",)), {}, {}, modules, missed, times, (), 0.0)


def test_a_removed_module_reached_is_named_whether_imported_or_missed() -> None:
    traces = [_trace(modules=("sk", "sk.datasetsx")), _trace(missed=("sk.datasets._base",))]
    assert removed_modules_reached(traces, ["sk/datasets"]) == ("sk.datasets._base",)
    assert removed_modules_reached(traces, ["sk/linear"]) == ()


def test_slowest_imports_take_each_modules_worst_self_time() -> None:
    traces = [
        _trace(times=(ImportTime("a", 10, 10), ImportTime("b", 500, 600))),
        _trace(times=(ImportTime("a", 900, 950),)),
    ]
    assert [(i.module, i.self_us) for i in slowest_imports(traces, 2)] == [("a", 900), ("b", 500)]
