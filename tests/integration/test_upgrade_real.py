"""The real `inv upgrade-runtime python3.12` in a copy of this repository, then `inv validate`.

Everything is real: uv re-locks both targets, the layers, the model (retrained by python3.12)
and the function packages are built, validated and invoked in the sandbox, and only then are
template.yaml, the locks and the model written. The copy then validates as a python3.12 project.

The copy starts with the run's shared build of both targets in its dist/ (as a project that was
built before it is upgraded): the python3.9 "before" build finds its layers fresh, and the
python3.12 rehearsal starts from that build, rebuilding what the re-lock and the retrained model
change.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from layerkit.project.spec import load_project
from layerkit.runtime.target import Target
from tests.conftest import REPO
from tests.shared_build import PY39, PY312, shared_builds

pytestmark = [pytest.mark.integration, pytest.mark.slow]
COPIED = (
    "layers",
    "functions",
    "locks",
    "template.yaml",
    "tasks.py",
    "pyproject.toml",
    "model_training.py",
)


def inv(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("upgrade") / "repo"
    root.mkdir()
    for name in (*COPIED, ".python-version", "stages.toml"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.is_file():
            shutil.copy2(source, root / name)
    builds = shared_builds(tmp_path_factory)
    built = builds(PY39).project.dist_dir
    builds(PY312)
    shutil.copytree(built, root / built.name)
    proc = inv(root, "upgrade-runtime", "python3.12")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return root, proc.stdout


def test_the_upgrade_rewrites_the_template_and_keeps_its_comments(
    upgraded: tuple[Path, str],
) -> None:
    root, _ = upgraded
    text = (root / "template.yaml").read_text()
    before = (REPO / "template.yaml").read_text()
    assert text == before.replace("python3.9", "python3.12")
    assert load_project(root).deploy_target == Target("python3.12")


def test_it_prints_the_version_moves_sizes_and_cold_starts(upgraded: tuple[Path, str]) -> None:
    _, out = upgraded
    assert "upgrade python3.9-x86_64 -> python3.12-x86_64" in out
    assert "scikit-learn 1.6.1 -> " in out
    assert "boto3 1.42" in out
    assert "layers/core-data-science.zip" in out
    assert "cold start (handler init in the sandbox, ms" in out
    for name in ("data_validation", "feature_engineering", "predictions"):
        assert any(line.startswith(name) for line in out.splitlines()), name


def test_the_model_is_retrained_by_python312(upgraded: tuple[Path, str]) -> None:
    root, _ = upgraded
    model = json.loads((root / "functions" / "predictions" / "model" / "model.json").read_text())
    committed = json.loads(
        (REPO / "functions" / "predictions" / "model" / "model.json").read_text()
    )
    assert model["python_version"] == "3.12"
    assert model["sklearn_version"] != committed["sklearn_version"]


def test_inv_validate_passes_on_the_upgraded_copy(upgraded: tuple[Path, str]) -> None:
    root, _ = upgraded
    proc = inv(root, "validate")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "validation passed" in proc.stdout
    assert "python3.12-x86_64" in proc.stdout
