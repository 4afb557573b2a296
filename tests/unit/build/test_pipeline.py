"""The build pipeline with fake tools (no uv, no target interpreter); everything else is real."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from layerkit.build import lock as L
from layerkit.build import pipeline as B
from layerkit.build.cache import FolderStore
from layerkit.build.manifest import read_manifest, step_timings
from layerkit.build.plan import state_of
from layerkit.build.runner import EventKind
from layerkit.build.tools import Tools
from layerkit.errors import BuildLockedError
from layerkit.project.spec import Project, load_project
from layerkit.runtime.target import Target
from tests.unit.build.fakes import FakeInstaller, FakePython, fail_on, fake_tools

T = Target("python3.9")
TOOLS = fake_tools()


def build(project: Project, *args: object, tools: Tools = TOOLS, **kwargs: object) -> B.BuildResult:
    """B.build with the fake tools."""
    return B.build(project, *args, tools=tools, **kwargs)  # type: ignore[arg-type]


def plan(project: Project, target: Target = T, **kwargs: object) -> tuple[B.Planned, ...]:
    """The planned artifacts, hashed with the fake tools' versions."""
    return B.plan(project, target, tool_versions=TOOLS.versions(), **kwargs)[0]  # type: ignore[arg-type]


def locked(project: Project) -> L.Lock:
    def pkg(name: str, *by: str) -> L.LockedPackage:
        return L.LockedPackage(
            name, "1.0", f"https://x/{name}-1.0-py3-none-any.whl", "00" * 32, 1, by
        )  # type: ignore[arg-type]

    lock = L.Lock(T, L.input_hashes(project), (pkg("pytz", "layer:top"), pkg("six", "layer:base")))
    L.write_lock(project, lock)
    return lock


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Project:
    p = load_project(make_project())
    locked(p)
    return p


def test_second_build_does_nothing(project: Project) -> None:
    first = build(project, functions=False)
    assert first.built == ("layers/base.zip", "layers/top.zip")
    installer, python = FakeInstaller(), FakePython()
    events: list[B.BuildEvent] = []
    second = build(
        project, functions=False, progress=events.append, tools=fake_tools(installer, python)
    )
    assert second.built == ()
    assert installer.calls == []
    assert (python.compiled, python.probes) == ([], 0)
    assert {e.step for e in events} == {"fresh"}
    assert second.records == first.records


def test_changed_layer_rebuilds_it_and_its_dependents_only(
    make_project: Callable[..., Path],
) -> None:
    root = make_project({"base": ([], "six\n"), "top": (["base"], "pytz\n"), "solo": ([], "")})
    locked(load_project(root))
    build(load_project(root), functions=False)
    toml = root / "layers" / "base" / "layer.toml"
    toml.write_text(toml.read_text().replace('"10 MB"', '"20 MB"'))
    assert build(load_project(root), functions=False).built == (
        "layers/base.zip",
        "layers/top.zip",
    )
    toml = root / "layers" / "top" / "layer.toml"
    toml.write_text(toml.read_text().replace('"10 MB"', '"30 MB"'))
    assert build(load_project(root), functions=False).built == ("layers/top.zip",)


def test_altered_or_missing_zip_is_rebuilt(project: Project) -> None:
    result = build(project, functions=False)
    (result.out_dir / "layers" / "top.zip").write_bytes(b"not the zip we built")
    (result.out_dir / "layers" / "base.zip").unlink()
    states = {p.path: p.state for p in plan(project, functions=False)}
    assert states == {"layers/base.zip": "missing", "layers/top.zip": "stale"}
    assert build(project, functions=False).built == ("layers/base.zip", "layers/top.zip")


def test_manifest_records_what_was_built(project: Project) -> None:
    result = build(project, functions=False)
    record = read_manifest(result.out_dir)["layers/top.zip"]
    assert record.distributions == {"pytz": "1.0"}
    assert record.layers == ("base",)
    assert record.target == "python3.9-x86_64"
    assert record.budget == 10_000_000
    assert (result.out_dir / record.path).stat().st_size == record.zipped_bytes


def test_interrupted_build_leaves_no_fresh_looking_artifact(project: Project) -> None:
    build(project, functions=False)
    toml = project.root / "layers" / "top" / "layer.toml"
    toml.write_text(toml.read_text().replace('"10 MB"', '"11 MB"'))
    changed = load_project(project.root)
    # Ctrl-C while the target interpreter compiles top's tree: in the middle of a step
    python = FakePython(fail=fail_on("layer-top-", KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt, match=r"interrupted while building layer top \(bytecode"):
        build(changed, functions=False, tools=fake_tools(python=python))
    out = B.output_dir(changed, T)
    assert "layers/top.zip" not in read_manifest(out)  # never fresh-looking
    assert list((out / B.WORK).iterdir()) == []  # staging removed
    assert not list(out.rglob("*.tmp"))
    states = {p.path: p.state for p in plan(changed, functions=False)}
    assert states["layers/top.zip"] == "stale" or states["layers/top.zip"] == "missing"
    assert states["layers/base.zip"] == "fresh"


def test_second_concurrent_build_is_refused_with_a_message(project: Project) -> None:
    out = B.output_dir(project, T)
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with B.build_lock(out):
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(10)
        with pytest.raises(BuildLockedError, match=r"another layerkit build is running .*pid \d+"):
            build(project, functions=False)
    finally:
        release.set()
        thread.join()
    assert build(project, functions=False).built  # the lock is free again


def test_clean_one_layer_then_all(project: Project) -> None:
    result = build(project, functions=False)
    removed = B.clean(project, "top")
    assert removed == (result.out_dir / "layers" / "top.zip",)
    assert set(read_manifest(result.out_dir)) == {"layers/base.zip"}
    B.clean(project)
    assert not (result.out_dir / "layers").exists()


def test_installer_script_entries_leave_record() -> None:
    from layerkit.build.install import drop_script_entries

    record = "bin/jp.py,sha256=abc,1703\njmespath/__init__.py,sha256=def,10\n"
    assert drop_script_entries(record) == "jmespath/__init__.py,sha256=def,10\n"


def test_a_slim_rule_that_breaks_an_import_fails_before_anything_is_zipped(
    project: Project,
) -> None:
    from layerkit.errors import BuildError

    toml = project.root / "layers" / "top" / "layer.toml"
    toml.write_text(toml.read_text() + '[slim]\nremove = ["pytz/core.py"]\n')
    with pytest.raises(BuildError, match=r"importing 'pytz' .* failed"):
        build(load_project(project.root), functions=False)
    out = B.output_dir(project, T)
    assert not (out / "layers" / "top.zip").exists()
    assert "layers/top.zip" not in read_manifest(out)
    assert (out / "layers" / "base.zip").exists()  # built before, and still fresh


def test_an_optional_top_level_module_is_noted_and_the_build_goes_on(project: Project) -> None:
    # a wheel whose top_level.txt names a plugin that needs an extra nobody installed
    installer = FakeInstaller(
        extra={
            "pytz-1.0.dist-info/top_level.txt": "pytz\npytz_plugin\n",
            "pytz-1.0.dist-info/METADATA": (
                "Name: pytz\nVersion: 1.0\nRequires-Dist: fancy-extra; extra == 'fancy'\n"
            ),
            "pytz_plugin.py": "import fancy_extra\n",
        }
    )
    events: list[B.BuildEvent] = []
    result = build(project, functions=False, progress=events.append, tools=fake_tools(installer))
    assert "layers/top.zip" in result.built
    check = [e for e in events if e.artifact == "layer top" and e.step == "import-check"][-1]
    assert "1 top-level module imports" in check.detail
    assert "note: pytz_plugin (from pytz) is left out" in check.detail
    record = read_manifest(B.output_dir(project, T))["layers/top.zip"]
    assert record.bytecode["optional_modules"] == [["pytz_plugin", "pytz", "fancy_extra"]]


def test_one_layer_builds_what_it_requires_and_optionally_what_requires_it(
    project: Project,
) -> None:
    assert build(project, layers=["top"], functions=False).built == (
        "layers/base.zip",
        "layers/top.zip",
    )
    B.clean(project)
    assert build(project, layers=["base"], functions=False, dependents=False).built == (
        "layers/base.zip",
    )
    assert build(project, layers=["base"], functions=False).built == ("layers/top.zip",)


def test_function_packages_rebuild_for_their_own_changes_not_a_layers(project: Project) -> None:
    first = build(project)
    assert "functions/fn.zip" in first.built
    toml = project.root / "layers" / "base" / "layer.toml"
    toml.write_text(toml.read_text().replace('"10 MB"', '"20 MB"'))
    assert build(load_project(project.root)).built == ("layers/base.zip", "layers/top.zip")
    app = project.root / "functions" / "fn" / "app.py"
    app.write_text(app.read_text() + "# changed\n")
    assert build(load_project(project.root)).built == ("functions/fn.zip",)


def test_function_importing_an_unattached_layers_module_fails_naming_it(project: Project) -> None:
    from layerkit.errors import CheckError

    build(project, functions=False)
    (project.root / "functions" / "fn" / "app.py").write_text("import pytz\nimport nothere\n")
    with pytest.raises(CheckError, match=r"app.py:2: `nothere`"):
        build(load_project(project.root))
    assert not (B.output_dir(project, T) / "functions" / "fn.zip").exists()


def test_clean_waits_for_no_build_of_any_target(project: Project) -> None:
    build(project, functions=False)
    with B.build_lock(project.root / B.DIST), pytest.raises(BuildLockedError):
        B.clean(project)
    assert (B.output_dir(project, T) / "layers" / "base.zip").exists()


def test_an_unknown_target_is_refused_before_any_work(project: Project) -> None:
    from layerkit.errors import SpecError

    with pytest.raises(SpecError, match=r"no layer is built for python3.13-x86_64"):
        build(project, Target("python3.13"))


def test_a_manifest_from_another_version_counts_as_nothing_built(project: Project) -> None:
    result = build(project, functions=False)
    path = result.out_dir / "manifest.json"
    path.write_text(path.read_text().replace('"input_hash"', '"input_digest"'))
    assert {p.state for p in plan(project, functions=False)} == {"missing"}


def test_leftovers_of_a_killed_build_are_swept(project: Project) -> None:
    out = B.output_dir(project, T)
    (out / B.WORK / "layer-base-x").mkdir(parents=True)
    (out / "layers").mkdir(parents=True, exist_ok=True)
    (out / "layers" / ".base.zip.123.tmp").write_bytes(b"half")
    build(project, functions=False)
    assert list((out / B.WORK).iterdir()) == []
    assert not (out / "layers" / ".base.zip.123.tmp").exists()


def test_a_function_on_a_runtime_its_layer_is_not_built_for(
    make_project: Callable[..., Path],
) -> None:
    from layerkit.errors import SpecError
    from tests.conftest import TEMPLATE

    root = make_project(template=TEMPLATE.replace("Runtime: python3.9", "Runtime: python3.12"))
    project = load_project(root)
    with pytest.raises(
        SpecError,
        match=r"Fn runs on python3.12-x86_64 and attaches base, but layers/base/layer.toml does not build it",
    ):
        plan(project, Target("python3.12"))


def test_leftovers_of_any_target_are_swept_under_the_build_lock(project: Project) -> None:
    base = project.root / B.DIST
    other = base / "python3.12-x86_64"
    (other / B.WORK / "layer-base-x" / "tree").mkdir(parents=True)
    (other / ".manifest.json.4242.tmp").write_text("{")
    (base / ".manifest.json.4243.tmp").write_text("{")
    (other / "layers").mkdir()
    (other / "layers" / ".base.zip.4242.tmp").write_bytes(b"half")
    build(project, functions=False)
    assert not (other / B.WORK).exists()
    assert not list(base.rglob("*.tmp"))
    assert B.sweep(base) == (base / B.WORK,)  # only the (empty) staging root of the last build


@pytest.mark.parametrize(
    "damage",
    ["", "{", "null", "[]", '{"artifacts": {"layers/base.zip": {"kind": "layer"}}}'],
    ids=["empty", "truncated", "null", "a list", "no name"],
)
def test_a_build_over_a_damaged_manifest_rebuilds_and_rewrites_it(
    project: Project, damage: str
) -> None:
    first = build(project, functions=False)
    (first.out_dir / "manifest.json").write_text(damage)
    assert {p.state for p in plan(project, functions=False)} == {B.ArtifactState.MISSING}
    again = build(project, functions=False)
    assert again.built == ("layers/base.zip", "layers/top.zip")
    assert read_manifest(again.out_dir) == again.records
    assert {r.sha256 for r in again.records.values()} == {r.sha256 for r in first.records.values()}


def test_each_step_is_timed_and_reported_in_order(project: Project) -> None:
    events: list[B.BuildEvent] = []
    result = build(
        project, layers=["base"], dependents=False, functions=False, progress=events.append
    )
    record = read_manifest(result.out_dir)["layers/base.zip"]
    steps = ["install", "slim", "bytecode", "import-check", "zip"]
    assert [step for step, _ in record.timings] == steps
    assert all(seconds >= 0 for _, seconds in record.timings)
    assert list(step_timings(read_manifest(result.out_dir))["layers/base.zip"]) == steps
    kinds = [(e.kind, e.step, e.done, e.total) for e in events if e.artifact == "layer base"]
    assert kinds[0] == (EventKind.QUEUED, "queued", 0, 5)
    assert kinds[1:-1] == [
        (kind, step, i + (kind == EventKind.FINISHED), 5)
        for i, step in enumerate(steps)
        for kind in (EventKind.STARTED, EventKind.FINISHED)
    ]
    assert kinds[-1] == (EventKind.BUILT, "done", 5, 5)
    assert events[-1].elapsed == record.build_seconds


def test_layers_that_do_not_require_each_other_build_at_the_same_time(
    make_project: Callable[..., Path],
) -> None:
    root = make_project({"base": ([], "six\n"), "top": ([], "pytz\n")})
    project = load_project(root)
    locked(project)
    both_installing = threading.Barrier(2, timeout=20)  # broken if the installs are serial

    def meet(name: str) -> None:
        both_installing.wait()

    result = build(project, functions=False, jobs=2, tools=fake_tools(FakeInstaller(fail=meet)))
    assert result.built == ("layers/base.zip", "layers/top.zip")


def test_a_layer_reads_the_layers_it_requires_only_once_they_are_built(
    project: Project,
) -> None:
    out = B.output_dir(project, T)
    probed: list[bool] = []

    def note_probe(what: str) -> None:
        if what == "probe":
            probed.append("layers/base.zip" in read_manifest(out))

    tools = fake_tools(python=FakePython(fail=note_probe))
    built = build(project, functions=False, jobs=4, tools=tools)
    assert set(built.built) == {"layers/base.zip", "layers/top.zip"}
    # base's import check ran before base was built; top's only once base was
    assert probed == [False, True]


def test_a_failing_layer_stops_the_others_and_keeps_what_finished(
    make_project: Callable[..., Path],
) -> None:
    from layerkit.errors import InstallError

    root = make_project({"base": ([], "six\n"), "top": (["base"], "pytz\n"), "solo": ([], "")})
    project = load_project(root)
    locked(project)
    installer = FakeInstaller(fail=fail_on("six", InstallError("six: no such wheel")))
    with pytest.raises(InstallError, match="six: no such wheel"):
        build(project, functions=False, jobs=2, tools=fake_tools(installer))
    out = B.output_dir(project, T)
    kept = set(read_manifest(out))
    # top may have started beside base, but it never got past waiting for it
    assert kept <= {"layers/solo.zip"}  # solo, beside base, may have finished
    assert list((out / B.WORK).iterdir()) == []
    again = build(project, functions=False)
    assert set(again.built) == {"layers/base.zip", "layers/top.zip", "layers/solo.zip"} - kept


def test_a_build_cache_is_asked_first_and_gets_what_was_built(
    project: Project, tmp_path: Path
) -> None:
    cache = FolderStore(tmp_path / "cache")
    first = build(project, cache=cache)
    assert len(list(cache.root.rglob("*.json"))) == 3  # two layers and the function
    B.clean(project)
    never = FakeInstaller(fail=fail_on("", AssertionError("installed although cached")))
    again = build(project, cache=cache, tools=fake_tools(never))
    assert set(again.cached) == set(first.records)
    assert again.built == ()
    for path, record in again.records.items():
        assert record.sha256 == first.records[path].sha256
        assert [step for step, _ in record.timings] == ["cache"]
    assert {p.state for p in plan(project)} == {B.ArtifactState.FRESH}


def test_a_cached_zip_that_is_not_the_one_recorded_is_rebuilt(
    project: Project, tmp_path: Path
) -> None:
    cache = FolderStore(tmp_path / "cache")
    build(project, functions=False, cache=cache)
    B.clean(project)
    for entry in cache.root.rglob("*.zip"):
        data = entry.read_bytes()
        entry.write_bytes(data[:-1] + b"!")  # same size, other bytes
    installer = FakeInstaller()
    again = build(project, functions=False, cache=cache, tools=fake_tools(installer))
    assert sorted(installer.calls) == ["pytz", "six"]  # side by side: either first
    assert again.cached == ()
    assert all(step != "cache" for r in again.records.values() for step, _ in r.timings)


def test_each_layer_is_import_checked_once(project: Project) -> None:
    toml = project.root / "layers" / "base" / "layer.toml"
    toml.write_text('bytecode = "imported"\n' + toml.read_text())
    python = FakePython()
    result = build(load_project(project.root), functions=False, tools=fake_tools(python=python))
    modes = {p: r.bytecode["mode"] for p, r in result.records.items()}
    assert modes == {"layers/base.zip": "imported", "layers/top.zip": "all"}
    # base: the bytecode step's probe is its import check; top: the import-check step's probe
    assert python.probes == 2
    assert result.records["layers/base.zip"].bytecode["compiled_files"] == 2


def test_cleaning_a_layer_works_over_a_damaged_manifest(project: Project) -> None:
    result = build(project, functions=False)
    (result.out_dir / "manifest.json").write_text("null")
    assert B.clean(project, "top") == (result.out_dir / "layers" / "top.zip",)
    assert (result.out_dir / "manifest.json").read_text() == "null"  # the next build rewrites it


def test_an_interrupt_beside_another_build_keeps_only_whole_artifacts(
    make_project: Callable[..., Path],
) -> None:
    root = make_project({"base": ([], "six\n"), "top": ([], "pytz\n")})
    project = load_project(root)
    locked(project)
    both = threading.Barrier(2, timeout=20)

    def ctrl_c_in_top(name: str) -> None:
        both.wait()  # base is installing too
        if name == "pytz":
            raise KeyboardInterrupt

    tools = fake_tools(FakeInstaller(fail=ctrl_c_in_top))
    with pytest.raises(
        B.BuildInterrupted, match=r"interrupted while building .*layer top \(install, step 1/5\)"
    ):
        build(project, functions=False, jobs=2, tools=tools)
    out = B.output_dir(project, T)
    kept = read_manifest(out)
    assert set(kept) <= {"layers/base.zip"}  # base stopped at its next step, or finished whole
    assert sorted(p.name for p in (out / "layers").glob("*")) == [
        Path(path).name for path in sorted(kept)
    ]
    assert all(state_of(out, r, r.input_hash) == B.ArtifactState.FRESH for r in kept.values())
    assert list((out / B.WORK).iterdir()) == []


def test_a_required_layer_built_beside_is_read_from_its_staged_tree(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAYERKIT_CACHE_DIR", raising=False)
    zips = project.root / ".layerkit" / "cache" / "zips"
    paths: list[list[str]] = []
    python = FakePython()
    real_probe = python.probe

    def probe(path, modules, scripts):  # type: ignore[no-untyped-def]
        paths.append([str(p) for p in path])
        return real_probe(path, modules, scripts)

    python.probe = probe  # type: ignore[method-assign]
    build(project, functions=False, tools=fake_tools(python=python))
    top_path = paths[-1]
    assert "/.work/" in top_path[1]  # base's staged tree, not an unzipped copy
    assert not zips.exists()
    out = B.output_dir(project, T)
    assert list((out / B.WORK).iterdir()) == []  # kept only while the build ran

    toml = project.root / "layers" / "top" / "layer.toml"
    toml.write_text(toml.read_text().replace('"10 MB"', '"11 MB"'))  # base stays fresh
    again = build(load_project(project.root), functions=False, tools=fake_tools(python=python))
    assert again.built == ("layers/top.zip",)
    base_sha = again.records["layers/base.zip"].sha256
    assert paths[-1][1] == str(zips / base_sha / "python")  # base's zip, unzipped once


class _HugeInstaller(FakeInstaller):
    """Installs like FakeInstaller, plus one sparse 300 MB file per package (no disk used)."""

    def install(self, packages, dest, target) -> None:  # type: ignore[no-untyped-def]
        super().install(packages, dest, target)
        for p in packages:
            with (dest / p.name / "huge.so").open("wb") as fh:
                fh.truncate(300_000_000)


def test_a_layer_over_lambdas_limit_stops_before_compile_and_zip(project: Project) -> None:
    from dataclasses import replace

    from layerkit.errors import BuildError

    python = FakePython()
    tools = replace(TOOLS, installer=_HugeInstaller(), python=python)
    with pytest.raises(BuildError) as caught:
        build(project, functions=False, tools=tools)
    message = str(caught.value)
    assert "over Lambda's 262,144,000-byte unzipped limit" in message
    assert "stopped before compiling and zipping" in message
    assert "Biggest: six (300.0 MB)" in message or "Biggest: pytz (300.0 MB)" in message
    out = B.output_dir(project, T)
    assert not (out / "layers" / "base.zip").exists()
    assert not (out / "layers" / "top.zip").exists()


def test_garbage_of_the_same_size_and_mtime_is_named_stale_and_rebuilt_without_force(
    project: Project,
) -> None:
    result = build(project, functions=False)
    zip_path = result.out_dir / "layers" / "top.zip"
    before = zip_path.stat()
    zip_path.write_bytes(b"\0" * before.st_size)  # in place, same size
    os.utime(zip_path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the old mtime put back
    assert {p.path: p.state for p in plan(project, functions=False)}["layers/top.zip"] == "stale"
    events: list[B.BuildEvent] = []
    again = build(project, functions=False, progress=events.append)
    assert again.built == ("layers/top.zip",)
    named = [e.detail for e in events if e.artifact == "layer top" and e.step == "stale"]
    assert len(named) == 1
    assert str(zip_path) in named[0]
    assert "sha256" in named[0]
    assert (
        read_manifest(result.out_dir)["layers/top.zip"].sha256
        == hashlib.sha256(zip_path.read_bytes()).hexdigest()
    )


def test_a_touched_zip_is_hashed_once_then_known_by_its_file_facts(project: Project) -> None:
    result = build(project, functions=False)
    zip_path = result.out_dir / "layers" / "top.zip"
    os.utime(zip_path)  # new mtime and ctime, same bytes
    assert build(project, functions=False).built == ()  # hashed: the same bytes, fresh
    record = read_manifest(result.out_dir)["layers/top.zip"]
    assert record.mtime_ns == zip_path.stat().st_mtime_ns  # the new facts were recorded
    assert record.ctime_ns == zip_path.stat().st_ctime_ns


def test_an_interrupted_forced_build_keeps_the_records_of_whole_zips(project: Project) -> None:
    first = build(project, functions=False)
    python = FakePython(fail=fail_on("layer-top-", KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        build(project, functions=False, force=True, tools=fake_tools(python=python))
    kept = read_manifest(first.out_dir)
    assert set(kept) == {"layers/base.zip", "layers/top.zip"}  # neither forgotten
    assert kept["layers/top.zip"] == first.records["layers/top.zip"]
    assert {p.state for p in plan(project, functions=False)} == {"fresh"}


def test_a_layer_over_its_budget_is_refused_off_its_final_name(project: Project) -> None:
    from layerkit import commands
    from layerkit.errors import BuildError

    toml = project.root / "layers" / "top" / "layer.toml"
    toml.write_text(toml.read_text().replace('"10 MB"', "10"))  # 10 bytes
    tight = load_project(project.root)
    with pytest.raises(BuildError, match=r"layer top was built but refused: .* over the budget"):
        build(tight, functions=False)
    out = B.output_dir(tight, T)
    assert not (out / "layers" / "top.zip").exists()
    assert (out / "layers" / "top.zip.refused").is_file()
    assert "layers/top.zip" not in read_manifest(out)
    rows = {path: state for path, state, _ in commands.status(tight).rows}
    assert str(rows["layers/top.zip"]).startswith("refused: ")
    assert "over the budget of 10 in layers/top/layer.toml" in str(rows["layers/top.zip"])
    # accepted with a reason: built, and no longer refused
    toml.write_text(toml.read_text() + 'over-budget-reason = "reviewed: the data set grew"\n')
    accepted = load_project(project.root)
    assert build(accepted, functions=False).built == ("layers/top.zip",)
    assert (out / "layers" / "top.zip").is_file()
    rows = {path: state for path, state, _ in commands.status(accepted).rows}
    assert not str(rows["layers/top.zip"]).startswith("refused")


def test_status_names_a_damaged_manifest_and_the_fix(project: Project) -> None:
    from layerkit import commands

    out = build(project, functions=False).out_dir
    (out / "manifest.json").write_text("{ not json")
    status = commands.status(project)
    assert status.note is not None
    assert str(out / "manifest.json") in status.note
    assert "`inv build.all`" in status.note
    assert str(out / "manifest.json") in status.render()


def test_a_strip_that_could_not_run_is_said_in_the_output_and_the_manifest(
    project: Project,
) -> None:
    from tests.unit.build.fakes import FakeStrip

    installer = FakeInstaller(extra={"six/_speedups.so": "\x7fELF" + "\0" * 60})
    events: list[B.BuildEvent] = []
    tools = fake_tools(installer, stripper=FakeStrip(installed=False))
    result = build(project, functions=False, tools=tools, progress=events.append)
    slim_lines = [e.detail for e in events if e.artifact == "layer base" and e.step == "slim"]
    assert any("strip: skipped" in line and "were not stripped" in line for line in slim_lines)
    passes = {p["name"]: p for p in result.records["layers/base.zip"].slim}
    assert "1 extension module(s) were not stripped" in passes["strip"]["note"]


def test_validate_and_deploy_name_a_refused_layer_like_build(project: Project) -> None:
    from layerkit.check.layer import built_layer_zips
    from layerkit.errors import BuildError

    toml = project.root / "layers" / "top" / "layer.toml"
    toml.write_text(toml.read_text().replace('"10 MB"', "10"))
    tight = load_project(project.root)
    with pytest.raises(BuildError):
        build(tight, functions=False)
    with pytest.raises(BuildError, match=r"layers/top.zip \(refused: .*over the budget"):
        built_layer_zips(tight, "top", T)
    with pytest.raises(BuildError, match=r"layers/top.zip \(refused: .*over the budget"):
        B.require_fresh(tight)


def test_a_step_cache_that_cannot_be_written_is_a_miss_with_a_note(
    project: Project, tmp_path: Path
) -> None:
    from layerkit.build.memo import StepCache

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    events: list[B.BuildEvent] = []
    tools = fake_tools(memo=StepCache(blocked))
    result = build(project, functions=False, tools=tools, progress=events.append)
    assert result.built == ("layers/base.zip", "layers/top.zip")  # built all the same
    notes = [e.detail for e in events if e.artifact == "step cache"]
    assert len(notes) == 1
    assert "could not be written" in notes[0]
    assert str(blocked) in notes[0]
