"""The model build of this repository (``inv build.model``): retrain Predictions with the layers.

App code, not layerkit: it knows the Predictions and FeatureEngineering functions of this
repository. ``tasks.py`` imports it to add ``build.model`` to layerkit's tasks.

A scikit-learn pickle is only safe to load with the scikit-learn that wrote it, so the model is
trained by the TARGET interpreter (python3.9 for the python3.9 target) with the built layers as
its only site folders: ``python3.9 -I -S`` (no user site, no site-packages, no PYTHON* variables)
plus the layers' ``python/`` folders put on ``sys.path`` explicitly. The training script lives
in the function (``functions/predictions/scripts/train.py``, not shipped) and writes
``model.joblib`` and ``model.json`` (feature names, the library versions it was trained with).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from layerkit import commands
from layerkit.build.pipeline import build
from layerkit.errors import BuildError
from layerkit.project.spec import Project
from layerkit.runtime.sandbox import extract_zip
from layerkit.runtime.target import find_interpreter

PREDICTIONS = "predictions"
FEATURE_ENGINEERING = "feature_engineering"
TRAIN_SCRIPT = Path("scripts") / "train.py"
MODEL_DIR = "model"
MODEL_FILE = "model.joblib"
METADATA_FILE = "model.json"

# Runs the script with an explicit sys.path: argv[1] is a JSON list of folders, argv[2] the script.
_BOOTSTRAP = (
    "import json, runpy, sys\n"
    "sys.path[:0] = json.loads(sys.argv[1])\n"
    "sys.argv = sys.argv[2:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


@dataclass(frozen=True)
class ModelInfo:
    """What ``model.json`` says about a trained model."""

    path: Path
    sklearn_version: str
    python_version: str
    feature_names: tuple[str, ...]
    sha256: str


def layer_python_paths(layer_dirs: Sequence[Path]) -> tuple[Path, ...]:
    """The sys.path entries for unzipped layers given in the order a function attaches them.

    Each entry may be an unzipped layer (holding ``python/``) or its ``python/`` folder. Lambda
    extracts layers into one /opt in order, a later layer overwriting an earlier one, so a later
    layer comes first here. Like Lambda, ``python/lib/pythonX.Y/site-packages`` is searched too.
    """
    paths: list[Path] = []
    for layer_dir in reversed(layer_dirs):
        python = layer_dir / "python" if (layer_dir / "python").is_dir() else layer_dir
        if not python.is_dir():
            raise BuildError(
                f"layer folder {layer_dir} does not exist; build the layers first "
                "(`inv build.all`) and pass their unzipped folders."
            )
        paths.extend(sorted(python.glob("lib/python3.*/site-packages")))
        paths.append(python)
    return tuple(p.resolve() for p in paths)


def train_command(
    script: Path, out: Path, feature_engineering: Path, interpreter: Path, paths: Sequence[Path]
) -> list[str]:
    """The argument list that runs the training script under the target interpreter."""
    return [
        str(interpreter),
        "-I",
        "-S",
        "-c",
        _BOOTSTRAP,
        json.dumps([str(p) for p in paths]),
        str(script),
        "--out",
        str(out),
        "--feature-engineering",
        str(feature_engineering),
    ]


def train_model(project: Project, out: Path, interpreter: Path, layer_dirs: Sequence[Path]) -> Path:
    """Train the Predictions model into the folder ``out``; return the path of model.joblib.

    ``interpreter`` is the target's (``find_interpreter(target)``), ``layer_dirs`` the unzipped
    layers Predictions attaches, in its order. Training uses one BLAS thread, so the same
    libraries give the same bytes. The usual ``out`` is ``functions/predictions/model``.
    """
    fn_dir = project.function(PREDICTIONS).path
    script = fn_dir / TRAIN_SCRIPT
    features = project.function(FEATURE_ENGINEERING).path / "app.py"
    for needed in (script, features):
        if not needed.is_file():
            raise BuildError(f"the model build needs {needed}, which does not exist.")
    command = train_command(
        script, out.resolve(), features, interpreter, layer_python_paths(layer_dirs)
    )
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
    }
    proc = subprocess.run(command, capture_output=True, text=True, cwd=fn_dir, env=env, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise BuildError(
            f"training the Predictions model with {interpreter} failed (exit {proc.returncode}); "
            f"the script is {script}, run with the layers {', '.join(map(str, layer_dirs))}. "
            f"Build the layers first (`inv build.all`) if an import failed. Output:\n{tail}"
        )
    model = out / MODEL_FILE
    if not model.is_file() or not (out / METADATA_FILE).is_file():
        raise BuildError(f"{script} finished but did not write {model} and {METADATA_FILE}.")
    return model


def read_model_info(model_dir: Path) -> ModelInfo | None:
    """What the trained model in ``model_dir`` was built with, or None if there is none."""
    try:
        data = json.loads((model_dir / METADATA_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise BuildError(
            f"{model_dir / METADATA_FILE} is not valid JSON ({exc}); "
            "retrain with `inv build.model`."
        ) from None
    return ModelInfo(
        path=model_dir / MODEL_FILE,
        sklearn_version=str(data.get("sklearn_version", "")),
        python_version=str(data.get("python_version", "")),
        feature_names=tuple(data.get("feature_names", ())),
        sha256=str(data.get("model_sha256", "")),
    )


def layers_sklearn_version(layer_dirs: Sequence[Path]) -> str | None:
    """The scikit-learn version installed in the unzipped layers (from its dist-info), if any."""
    for path in layer_python_paths(layer_dirs):
        for dist_info in sorted(path.glob("scikit_learn-*.dist-info")):
            return dist_info.name.removeprefix("scikit_learn-").removesuffix(".dist-info")
    return None


def model_is_current(model_dir: Path, sklearn_version: str, python_version: str) -> bool:
    """Whether the model in ``model_dir`` was trained with this scikit-learn and Python (X.Y)."""
    info = read_model_info(model_dir)
    return (
        info is not None
        and info.path.is_file()
        and info.sklearn_version == sklearn_version
        and info.python_version == python_version
    )


@dataclass(frozen=True)
class ModelOutput:
    """Where ``build_model`` wrote the model (the shape of a layerkit command's output)."""

    path: Path
    failure: str | None = None

    def render(self) -> str:
        """``wrote <path>``."""
        return f"wrote {self.path}"


def build_model(
    project: commands.ProjectLike,
    *,
    runtime: str | None = None,
    feedback: commands.Feedback = commands.QUIET,
) -> ModelOutput:
    """Build the layers (if stale), unzip Predictions' layers, and retrain its model with them.

    For the template's target the model goes to ``functions/predictions/model`` (what the
    function ships); for another runtime to ``<dist>/<target>/models/predictions``.
    """
    project = commands.open_project(project)
    target = commands.target_for(project, runtime)
    result = build(project, target, functions=False, progress=feedback.progress)
    fn = project.function(PREDICTIONS)
    out = (
        fn.path / MODEL_DIR
        if target == project.deploy_target
        else result.out_dir / "models" / PREDICTIONS
    )
    with tempfile.TemporaryDirectory() as tmp:
        dirs = []
        for name in fn.layers:
            extract_zip(result.out_dir / "layers" / f"{name}.zip", Path(tmp) / name)
            dirs.append(Path(tmp) / name)
        interpreter = find_interpreter(target, cwd=project.root)
        return ModelOutput(train_model(project, out, interpreter, dirs))
