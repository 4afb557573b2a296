"""upgrade-runtime orchestration with fake steps: rehearsed in a copy, written only on success."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from layerkit.build import lock as locker
from layerkit.build.lock import Lock, LockedPackage, Partition
from layerkit.build.manifest import ArtifactRecord
from layerkit.build.pipeline import BuildResult, output_dir
from layerkit.errors import CheckError
from layerkit.project.spec import Project, load_project
from layerkit.runtime.target import Target
from layerkit.upgrade import UpgradeError, upgrade_runtime, write_back

PY39, PY312 = Target("python3.9"), Target("python3.12")


def _lock_text(project: Project, target: Target, versions: Mapping[str, str]) -> str:
    packages = tuple(
        LockedPackage(name, v, f"https://x/{name}-{v}.whl", "0" * 64, 1, ("layer:base",))  # type: ignore[arg-type]
        for name, v in sorted(versions.items())
    )
    return locker.render_lock(Lock(target, locker.input_hashes(project), packages))


def _record(path: str, size: int) -> ArtifactRecord:
    kind = "layer" if path.startswith("layers/") else "function"
    name = path.split("/")[1].removesuffix(".zip")
    return ArtifactRecord(kind, name, "t", path, "0", size // 3, size, 1, "h")


@dataclass
class FakeSteps:
    """Records what ran; builds write a manifest-free result, the model is a text file."""

    fail_at: str | None = None
    ran: list[str] = field(default_factory=list)

    def _step(self, name: str) -> None:
        self.ran.append(name)
        if self.fail_at == name:
            raise CheckError(f"{name} failed on purpose")

    def build(self, project: Project, target: Target, *, retrain: bool) -> BuildResult:
        self._step(f"build {target.runtime}")
        if retrain:  # what the real build writes into the function folder
            (project.root / "functions" / "fn" / "model.txt").write_text(target.runtime)
        out = output_dir(project, target)
        out.mkdir(parents=True, exist_ok=True)
        (out / "manifest.json").write_text("{}")
        size = 1_000_000 if target == PY39 else 1_500_000
        records = {p: _record(p, size) for p in ("layers/base.zip", "functions/fn.zip")}
        return BuildResult(out, target, (), records, Partition({}, {}))

    def relock(self, project: Project) -> None:
        self._step("relock")
        for target in project.targets:
            versions = {"numpy": "2.2.6", "six": "1.17.0"} if target == PY312 else {}
            locker.lock_path(project.root, target).write_text(_lock_text(project, target, versions))

    def validate(self, project: Project, target: Target) -> None:
        self._step(f"validate {target.runtime}")

    def cold_starts(self, project: Project, target: Target, out_dir: Path) -> Mapping[str, float]:
        self._step(f"invoke {target.runtime}")
        return {"fn": 100.0 if target == PY39 else 80.0}


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Project:
    root = make_project()
    for name in ("base", "top"):
        path = root / "layers" / name / "layer.toml"
        path.write_text(path.read_text().replace('["python3.9"]', '["python3.9", "python3.12"]'))
    proj = load_project(root)
    (root / "locks").mkdir()
    for target, versions in ((PY39, {"numpy": "2.0.2", "six": "1.17.0"}), (PY312, {})):
        locker.lock_path(root, target).write_text(_lock_text(proj, target, versions))
    (root / "functions" / "fn" / "model.txt").write_text("python3.9")
    return proj


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "dist" not in p.relative_to(root).parts
    }


def test_a_dry_run_reports_moves_sizes_and_cold_starts_and_writes_nothing(
    project: Project,
) -> None:
    before = snapshot(project.root)
    steps = FakeSteps()
    report = upgrade_runtime(project, "python3.12", dry_run=True, steps=steps)
    assert snapshot(project.root) == before
    assert steps.ran == [
        "build python3.9",
        "invoke python3.9",
        "relock",
        "build python3.12",
        "validate python3.12",
        "invoke python3.12",
    ]
    assert [m.describe() for m in report.moves] == ["numpy 2.0.2 -> 2.2.6"]
    assert [(s.artifact, s.before, s.after) for s in report.sizes] == [
        ("functions/fn.zip", 1_000_000, 1_500_000),
        ("layers/base.zip", 1_000_000, 1_500_000),
    ]
    assert [(c.function, c.before_ms, c.after_ms) for c in report.cold_starts] == [
        ("fn", 100.0, 80.0)
    ]
    text = "\n".join(report.lines())
    assert "Globals.Function.Runtime: python3.9 -> python3.12" in text
    assert "numpy 2.0.2 -> 2.2.6" in text
    assert "+0.5" in text  # MB
    assert "-20" in text  # ms
    assert "no project file was written" in text
    assert report.written == ()


def test_the_real_upgrade_writes_edits_locks_and_the_retrained_model(project: Project) -> None:
    report = upgrade_runtime(project, "python3.12", dry_run=False, steps=FakeSteps())
    root = project.root
    assert "Runtime: python3.12" in (root / "template.yaml").read_text()
    upgraded = load_project(root)
    assert upgraded.layer("base").runtimes == ("python3.9", "python3.12")  # listed it already
    assert "CompatibleRuntimes: [python3.12]" in (root / "template.yaml").read_text()
    assert upgraded.deploy_target == PY312
    assert (root / "functions" / "fn" / "model.txt").read_text() == "python3.12"
    assert "numpy" in (root / "locks" / "python3.12-x86_64.toml").read_text()
    assert root / "template.yaml" in report.written
    assert (root / "dist" / "manifest.json").is_file()  # the rehearsal's build is dist/


@pytest.mark.parametrize(
    "step", ["relock", "build python3.12", "validate python3.12", "invoke python3.12"]
)
def test_a_failing_step_leaves_every_project_file_as_it_was(project: Project, step: str) -> None:
    before = snapshot(project.root)
    steps = FakeSteps(fail_at=step)
    with pytest.raises(UpgradeError) as caught:
        upgrade_runtime(project, "python3.12", dry_run=False, steps=steps)
    assert steps.ran[-1] == step
    assert f"{step} failed on purpose" in str(caught.value)
    assert "no project file was changed" in str(caught.value)
    assert snapshot(project.root) == before


def test_upgrading_to_the_current_runtime_is_refused(project: Project) -> None:
    with pytest.raises(UpgradeError, match=r"already uses python3\.9"):
        upgrade_runtime(project, "python3.9", dry_run=True, steps=FakeSteps())


def test_a_failed_write_restores_the_files_already_written(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("old a")
    (tmp_path / "b").write_text("a file where a folder is needed")
    with pytest.raises(UpgradeError, match="every file was restored"):
        write_back(tmp_path, {"a.txt": b"new a", "b/c.txt": b"x", "new.txt": b"n"})
    assert (tmp_path / "a.txt").read_text() == "old a"
    assert not (tmp_path / "new.txt").exists()
    assert (tmp_path / "b").read_text() == "a file where a folder is needed"
