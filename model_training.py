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

import dataclasses
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerkit import commands
from layerkit.build.hooks import StepContext
from layerkit.build.manifest import ArtifactRecord, artifact_path
from layerkit.build.pipeline import BuildEvent, BuildResult, build
from layerkit.build.targets import buildable_functions, overlay_dir
from layerkit.errors import BuildError
from layerkit.project.spec import Project
from layerkit.runtime.host import foreign_interpreter_variable, host_support
from layerkit.runtime.sandbox import extract_zip
from layerkit.runtime.target import Target, find_interpreter

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


#: OpenBLAS's kernel every CPU of an architecture runs (x86_64: SSE3; aarch64: ARMv8).
BASELINE_KERNEL = {"x86_64": "Prescott", "aarch64": "ARMV8"}


def train_model(project: Project, out: Path, interpreter: Path, layer_dirs: Sequence[Path]) -> Path:
    """Train the Predictions model into the folder ``out``; return the path of model.joblib.

    ``interpreter`` is the target's (``find_interpreter(target)``), ``layer_dirs`` the unzipped
    layers Predictions attaches, in its order. Training uses one BLAS thread and OpenBLAS's
    baseline kernel, so the same libraries give the same bytes on every machine. The usual
    ``out`` is ``functions/predictions/model``.
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
        # OpenBLAS picks its kernels by CPU (Haswell, Zen, SkylakeX ...) and each rounds the
        # last bits differently: the baseline kernel every CPU of this kind has gives the same
        # bytes on any machine
        "OPENBLAS_CORETYPE": BASELINE_KERNEL.get(platform.machine(), ""),
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
    target: Target
    failure: str | None = None

    def render(self) -> str:
        """``wrote <path>``, and where the model goes."""
        return f"wrote {self.path} (`inv build.all` puts it into the {self.target.key} package)"


def build_model(
    project: commands.ProjectLike,
    *,
    runtime: str | None = None,
    arch: str | None = None,
    feedback: commands.Feedback = commands.QUIET,
) -> ModelOutput:
    """Build the layers (if stale) and retrain the Predictions model with them.

    For the template's target the model goes to ``functions/predictions/model`` (what the
    function ships); for another target into that target's build overlay (see
    :func:`model_folder`).
    """
    project = commands.open_project(project)
    target = commands.target_for(project, runtime, arch)
    result = build(project, target, functions=False, progress=feedback.progress)
    return ModelOutput(train_for_target(project, target, result.out_dir), target)


# ---------------------------------------------------------------- the model of every target


def model_folder(project: Project, target: Target, out_dir: Path) -> Path:
    """Where ``target``'s Predictions model lives.

    The template's target: ``functions/predictions/model`` (committed, what is deployed). Any
    other target: its build's overlay (``dist/<target>/overlay/predictions/model``), which
    replaces the committed model in that target's package.
    """
    fn = project.function(PREDICTIONS)
    if target == project.deploy_target:
        return fn.path / MODEL_DIR
    return overlay_dir(out_dir, fn.name) / MODEL_DIR


def layers_sklearn(project: Project, records: Mapping[str, ArtifactRecord]) -> str | None:
    """The scikit-learn version the layers Predictions attaches carry (from the manifest)."""
    attached = set(project.function(PREDICTIONS).layers)
    for rec in records.values():
        if rec.kind == "layer" and rec.name in attached and "scikit-learn" in rec.distributions:
            return rec.distributions["scikit-learn"]
    return None


def train_for_target(project: Project, target: Target, out_dir: Path) -> Path:
    """Train ``target``'s model with the layers built in ``out_dir``; return model.joblib.

    The target's own interpreter trains it; a target this host cannot run (arm64 on x86_64
    without qemu-user) is refused, since training executes the layers' code.
    """
    support = host_support(target, native_interpreter=None)
    if not support.runs_code:
        raise BuildError(
            f"the Predictions model for {target.key} must be trained by {target.runtime} on "
            f"{target.machine} with that target's layers, and {support.notice()}. Build this "
            "target on a machine of its architecture (or with qemu-user and "
            f"{foreign_interpreter_variable(target)} set), or leave predictions off it."
        )
    fn = project.function(PREDICTIONS)
    interpreter = support.interpreter or find_interpreter(target, cwd=project.root)
    with tempfile.TemporaryDirectory(prefix="layerkit-train-") as tmp:
        dirs = []
        for name in fn.layers:
            extract_zip(out_dir / artifact_path("layer", name), Path(tmp) / name)
            dirs.append(Path(tmp) / name)
        return train_model(project, model_folder(project, target, out_dir), interpreter, dirs)


def model_step(context: StepContext) -> None:
    """The build step of ``[tool.layerkit] build-steps``: the target's model, with its layers.

    For a target other than the template's, the model is trained with the target's built layers
    when it is missing or was trained with another scikit-learn or Python; the template's own
    model is the committed one (``inv build.model`` retrains it). Both front doors, ``layerkit
    build all`` and ``inv build.all``, run it between the layers and the function packages.
    """
    train_if_stale(
        context.project,
        context.target,
        context.layers,
        context.progress,
        retrain=context.retrain,
    )


def train_if_stale(
    project: Project,
    target: Target,
    layers: BuildResult,
    progress: Any = None,
    *,
    retrain: bool = False,
) -> None:
    """Train ``target``'s model with its built ``layers`` when stale (or ``retrain``)."""
    if not any(fn.name == PREDICTIONS for fn in buildable_functions(project, target)):
        return
    folder = model_folder(project, target, layers.out_dir)
    sklearn = layers_sklearn(project, layers.records)
    stale = sklearn is None or not model_is_current(folder, sklearn, target.python_version_text)
    if retrain or (stale and target != project.deploy_target):
        if progress is not None:
            progress(BuildEvent("model predictions", "train", f"{target.key} -> {folder}"))
        train_for_target(project, target, layers.out_dir)


def build_with_model(
    project: Project,
    target: Target | None = None,
    *,
    retrain: bool = False,
    **options: Any,
) -> BuildResult:
    """Build every layer, the model and every function of ``target`` (``build.all``).

    The layers first; then, for a target other than the template's, the model is trained with
    them when it is missing or was trained with another scikit-learn or Python (``retrain``
    trains it in any case, also the template's committed one); then the function packages,
    which carry it. ``options`` go to :func:`layerkit.build.pipeline.build`.
    """
    target = target or project.deploy_target
    layers = build(project, target, functions=False, **options)
    train_if_stale(project, target, layers, options.get("progress"), retrain=retrain)
    # then only the functions (``layers=[]``): the layers are built, even with ``force``
    functions = build(project, target, layers=[], **options)
    return dataclasses.replace(
        functions,
        built=layers.built + functions.built,
        cached=layers.cached + functions.cached,
    )
