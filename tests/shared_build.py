"""This repository built once per test run for a target (layers, model, function packages).

The functions' sandbox tests and the upgrade test start from the same build: under
pytest-xdist the workers share one copy of the repository in the run's common temporary folder;
the first worker that needs a target builds it while holding a lock, the others then find it
built (a build with nothing to do), so the layers and models are made once per run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import model_training as training
from layerkit.build import pipeline as B
from layerkit.project.spec import Project, load_project
from layerkit.runtime.target import Target, find_interpreter
from tests.conftest import REPO

PY39 = Target("python3.9")
PY312 = Target("python3.12")
#: Every runtime the functions' sandbox tests run on: the template's and the upgrade's.
TARGETS = (PY39, PY312)


@dataclass(frozen=True)
class Built:
    """A copy of this repository built for one target (layers, model, function packages)."""

    project: Project
    result: B.BuildResult
    interpreter: Path
    target: Target = PY39

    @property
    def model_dir(self) -> Path:
        """The Predictions model this target's package carries (committed for python3.9)."""
        return training.model_folder(self.project, self.target, self.result.out_dir)

    def layer_zips(self, function: str) -> list[Path]:
        fn = self.project.function(function)
        return [self.result.out_dir / "layers" / f"{name}.zip" for name in fn.layers]

    def unzipped_layers(self, function: str, dest: Path) -> list[Path]:
        """Each of the function's layers unzipped into its own folder, in attach order."""
        folders = []
        for layer_zip in self.layer_zips(function):
            folder = dest / layer_zip.stem
            with zipfile.ZipFile(layer_zip) as zf:
                zf.extractall(folder)
            folders.append(folder)
        return folders


@contextlib.contextmanager
def _held(path: Path) -> Iterator[None]:
    """Wait for, then hold, an exclusive lock on ``path`` (released when the block ends)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def shared_builds(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Target], Built]:
    """``build(target)``: the run's copy of this repository built for ``target`` (``inv
    build.all``), made by the first worker that asks and found built by the others."""
    shared = os.environ.get("PYTEST_XDIST_WORKER") is not None
    base = tmp_path_factory.getbasetemp().parent if shared else tmp_path_factory.getbasetemp()
    root = base / "functions-built"
    with _held(base / "functions-built.lock"):
        if not (root / "template.yaml").is_file():
            for name in ("layers", "functions", "locks"):
                shutil.copytree(
                    REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__")
                )
            shutil.copy2(REPO / "template.yaml", root / "template.yaml")
    project = load_project(root)
    done: dict[Target, Built] = {}

    def build(target: Target) -> Built:
        if target not in done:
            with _held(base / f"functions-built-{target.key}.lock"):
                result = training.build_with_model(project, target)
            done[target] = Built(project, result, find_interpreter(target, cwd=REPO), target)
        return done[target]

    return build
