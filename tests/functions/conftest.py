"""Fixtures for running the three functions for real: python3.9, the built layers, the sandbox."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from layerkit.build import pipeline as B
from layerkit.project.spec import Project, load_project
from layerkit.runtime.sandbox import InvokeResult, invoke, prepare
from layerkit.runtime.target import Target, find_interpreter
from tests.conftest import REPO

PY39 = Target("python3.9")


@dataclass(frozen=True)
class Built:
    """A copy of this repository built for python3.9 (layers and function packages)."""

    project: Project
    result: B.BuildResult
    interpreter: Path

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


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("functions-built")
    for name in ("layers", "functions", "locks"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "template.yaml", root / "template.yaml")
    project = load_project(root)
    return Built(project, B.build(project, PY39), find_interpreter(PY39, cwd=REPO))


@pytest.fixture
def run_function(
    built: Built, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., InvokeResult]:
    """Invoke a built function in a fresh sandbox: its layers in order, its zip, python3.9."""

    def run(name: str, event: Any, env: dict[str, str] | None = None) -> InvokeResult:
        fn = built.project.function(name)
        sandbox = prepare(
            tmp_path_factory.mktemp(f"sandbox-{name}"),
            built.layer_zips(name),
            built.result.out_dir / "functions" / f"{name}.zip",
            built.interpreter,
            PY39,
        )
        return invoke(
            sandbox,
            fn.handler,
            event,
            function_name=name,
            memory_mb=fn.memory_size,
            timeout_s=fn.timeout,
            env=env,
        )

    return run
