from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from layerkit.errors import OptimizeError
from layerkit.optimize import apply as A
from layerkit.optimize.advice import Candidate, LayerAdvice
from layerkit.optimize.trace import Outcome, Subject, Trace
from layerkit.project.spec import load_project

LAYER_TOML = """\
requires = []
budget = "10 MB"   # unzipped
runtimes = ["python3.9"]

[slim]
# a reviewed removal
remove = ["numpy/_core/_simd.*"]
keep = []
"""


def test_removals_are_appended_with_sizes_and_date_and_comments_survive() -> None:
    text = A.add_removals(
        LAYER_TOML, ["scipy/io", "numpy/_core/_simd.*"], {"scipy/io": 2_690_000}, "2026-12-02"
    )
    assert "# a reviewed removal" in text
    assert 'budget = "10 MB"   # unzipped' in text
    assert "2026-12-02" in text
    assert "2.69 MB" in text
    assert tomlkit.parse(text).unwrap()["slim"]["remove"] == ["numpy/_core/_simd.*", "scipy/io"]


def test_a_layer_toml_without_slim_gets_one() -> None:
    text = A.add_removals('budget = "1 MB"\n', ["a/b"], {"a/b": 5}, "2026-12-02")
    assert tomlkit.parse(text).unwrap()["slim"]["remove"] == ["a/b"]
    assert A.add_removals(text, ["a/b"], {}, "2026-12-03") == text  # nothing new: unchanged


def _trace(subject: Subject, response: Any = 200, modules: Sequence[str] = ()) -> Trace:
    return Trace(
        subject, {}, {}, tuple(modules), (), (), (Outcome("basic.json", True, response),), 1.0
    )


def _advice(layer: str) -> LayerAdvice:
    return LayerAdvice(
        layer, 1000, 1, 1, 1, 600, 0, (Candidate("six_extra/sub", 3, 600, True, ""),)
    )


@pytest.fixture
def project(make_project: Callable[..., Path]):
    return load_project(make_project())


def _run(project, after: Callable[[Subject], Trace], tests=None):
    builds: list[list[str]] = []
    subject = Subject("function", "fn", ("base", "top"))
    baseline = [_trace(subject)]

    def build(p, target, layers):
        builds.append(sorted(layers))

    result = A.apply_pruning(
        project,
        project.deploy_target,
        [_advice("base")],
        baseline,
        today="2026-12-02",
        build=build,
        runner=after,
        tests=tests,
    )
    return result, builds


def test_apply_writes_the_removal_when_the_functions_behave_the_same(project) -> None:
    (new_project, pruned), builds = _run(project, lambda s: _trace(s))
    assert [(p.layer, p.patterns, p.bytes) for p in pruned] == [("base", ("six_extra/sub",), 600)]
    assert new_project.layer("base").slim.remove == ("six_extra/sub",)
    assert builds == [["base"]]


def test_a_module_reached_in_a_removed_folder_restores_layer_toml_and_is_named(project) -> None:
    path = project.layer("base").path / "layer.toml"
    before = path.read_text()
    with pytest.raises(OptimizeError, match=r"six_extra\.sub\.mod is needed"):
        _run(project, lambda s: _trace(s, modules=("six_extra.sub.mod",)))
    assert path.read_text() == before
    assert load_project(project.root).layer("base").slim.remove == ()


def test_a_changed_response_or_failing_tests_restore_layer_toml(project) -> None:
    path = project.layer("base").path / "layer.toml"
    before = path.read_text()
    with pytest.raises(OptimizeError, match="response changed"):
        _run(project, lambda s: _trace(s, response=500))
    assert path.read_text() == before
    with pytest.raises(OptimizeError, match="sandbox tests failed"):
        _run(project, lambda s: _trace(s), tests=lambda root: (False, "1 failed"))
    assert path.read_text() == before


def test_the_report_text_names_what_was_pruned() -> None:
    report = A.OptimizeReport(
        target="python3.9-x86_64",
        layers=(_advice("base"),),
        slowest=(),
        subjects=(("function fn", True, 12.0),),
        function_bytes={"fn": 2_000_000},
        applied=(A.Pruned("base", ("six_extra/sub",), 600),),
        function_bytes_after={"fn": 1_999_400},
    )
    text = A.format_report(report)
    assert "pruned from base: six_extra/sub" in text
    assert "function fn: code + layers 2.0 MB -> 2.0 MB" in text
    assert report.to_json()["applied"][0]["patterns"] == ("six_extra/sub",)


def _pruning_project(make_project: Callable[..., Path], app: str) -> Path:
    root = make_project(functions={"fn": app})
    toml = root / "layers" / "base" / "layer.toml"
    toml.write_text(toml.read_text() + '\n[slim]\nremove = ["six_extra/sub"]\n')
    return root


def test_verify_traces_names_a_pruned_module_a_trace_reaches(
    make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = load_project(_pruning_project(make_project, "def handler(e, c):\n    return 1\n"))
    monkeypatch.setattr(
        A.builder, "require_fresh", lambda p, t: type("R", (), {"out_dir": p.root})()
    )
    fine = A.verify_traces(project, runner=lambda s: _trace(s))
    assert fine == ()
    problems = A.verify_traces(project, runner=lambda s: _trace(s, modules=("six_extra.sub.x",)))
    assert len(problems) == 1
    assert "six_extra.sub.x" in problems[0]
    assert "layers/base/layer.toml" in problems[0]
    assert 'keep = ["six_extra/sub"]' in problems[0]


def test_verify_traces_names_a_static_import_of_a_pruned_module(
    make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = "import six_extra.sub.mod\n\n\ndef handler(e, c):\n    return 1\n"
    project = load_project(_pruning_project(make_project, app))
    monkeypatch.setattr(
        A.builder, "require_fresh", lambda p, t: type("R", (), {"out_dir": p.root})()
    )
    problems = A.verify_traces(project, runner=lambda s: _trace(s))
    assert problems == (
        "functions/fn imports six_extra.sub.mod, but layers/base/layer.toml prunes "
        "'six_extra/sub'; add keep = [\"six_extra/sub\"] to its [slim] and rebuild",
    )
