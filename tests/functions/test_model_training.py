from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from layerkit.errors import BuildError
from layerkit.project.spec import load_project
from model_training import (
    layer_python_paths,
    layers_sklearn_version,
    model_is_current,
    read_model_info,
    train_command,
    train_model,
)
from tests.conftest import REPO


def layer(root: Path, name: str, *dists: str) -> Path:
    python = root / name / "python"
    python.mkdir(parents=True)
    for dist in dists:
        (python / f"{dist}.dist-info").mkdir()
    return root / name


def test_later_layers_come_first_like_files_overwritten_in_opt(tmp_path: Path) -> None:
    core = layer(tmp_path, "core")
    ml = layer(tmp_path, "ml")
    (ml / "python" / "lib" / "python3.9" / "site-packages").mkdir(parents=True)
    bare = tmp_path / "bare"  # a python/ folder passed directly
    bare.mkdir()
    assert layer_python_paths([core, ml, bare]) == (
        bare.resolve(),
        (ml / "python" / "lib" / "python3.9" / "site-packages").resolve(),
        (ml / "python").resolve(),
        (core / "python").resolve(),
    )


def test_a_missing_layer_folder_says_to_build_first(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"inv build\.all"):
        layer_python_paths([tmp_path / "nope"])


def test_the_command_isolates_the_interpreter_and_passes_the_path(tmp_path: Path) -> None:
    command = train_command(
        Path("train.py"), tmp_path, Path("fe.py"), Path("/usr/bin/python3.9"), [Path("/l/python")]
    )
    assert command[:4] == ["/usr/bin/python3.9", "-I", "-S", "-c"]
    assert json.loads(command[5]) == ["/l/python"]
    assert command[6:] == ["train.py", "--out", str(tmp_path), "--feature-engineering", "fe.py"]


def test_model_metadata_decides_whether_the_model_is_current(tmp_path: Path) -> None:
    assert read_model_info(tmp_path) is None
    assert not model_is_current(tmp_path, "1.6.1", "3.9")
    meta = {"sklearn_version": "1.6.1", "python_version": "3.9", "feature_names": ["a"]}
    (tmp_path / "model.json").write_text(json.dumps(meta))
    assert not model_is_current(tmp_path, "1.6.1", "3.9")  # metadata without the model
    (tmp_path / "model.joblib").write_bytes(b"x")
    assert model_is_current(tmp_path, "1.6.1", "3.9")
    assert not model_is_current(tmp_path, "1.7.0", "3.9")
    assert not model_is_current(tmp_path, "1.6.1", "3.12")
    (tmp_path / "model.json").write_text("{")
    with pytest.raises(BuildError, match="not valid JSON"):
        read_model_info(tmp_path)


def test_the_layers_scikit_learn_version_is_read_from_its_dist_info(tmp_path: Path) -> None:
    core = layer(tmp_path, "core", "numpy-2.0.2")
    ml = layer(tmp_path, "ml", "scikit_learn-1.6.1", "joblib-1.5.3")
    assert layers_sklearn_version([core, ml]) == "1.6.1"
    assert layers_sklearn_version([core]) is None


def test_the_committed_model_metadata_is_readable() -> None:
    info = read_model_info(REPO / "functions" / "predictions" / "model")
    assert info is not None
    assert info.python_version == "3.9"
    assert info.path.is_file()


def test_a_failing_training_run_is_a_build_error_with_its_output(tmp_path: Path) -> None:
    # The host interpreter with no layers cannot import pandas: the script fails at import.
    with pytest.raises(BuildError, match=r"(?s)failed \(exit 1\).*ModuleNotFoundError"):
        train_model(load_project(REPO), tmp_path / "model", Path(sys.executable), [tmp_path])
    assert not (tmp_path / "model" / "model.joblib").exists()
