"""A project's own build steps, run for every target between its layers and its functions.

A project whose functions carry something built with its layers (this repository trains the
Predictions model with the target's scikit-learn) declares it once, in ``pyproject.toml``::

    [tool.layerkit]
    build-steps = ["model_training:model_step"]

Each entry names a callable, ``module:function``, imported with the project folder first on
``sys.path``. For every target a build makes, the layers are built first, then each step is
called with a :class:`StepContext`, then the function packages: ``layerkit build all`` and
``inv build.all`` (and validate, upgrade-runtime) run the same steps, whatever the front door.
A step writes what it makes into the function folder (the template's target) or the target's
overlay (:mod:`layerkit.build.targets`), which the function packages then carry.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from layerkit.build.pipeline import BuildResult, build
from layerkit.build.runner import Progress, no_progress
from layerkit.errors import SpecError
from layerkit.project.spec import Project
from layerkit.runtime.target import Target


@dataclass(frozen=True)
class StepContext:
    """What a build step is given: the project, the target and the target's built layers."""

    project: Project
    target: Target
    layers: BuildResult  # out_dir and records of the target's layers, just built
    progress: Progress = no_progress
    force: bool = False  # the build was asked to rebuild everything
    retrain: bool = False  # redo what the step makes even when current (upgrade-runtime asks)


BuildStep = Callable[[StepContext], None]
Builder = Callable[..., BuildResult]


def load_steps(project: Project) -> tuple[tuple[str, BuildStep], ...]:
    """The project's build steps, ``(entry, callable)``, imported from the project folder."""
    steps = []
    for entry in project.config.build_steps:
        module_name, _, attr = entry.partition(":")
        where = f"{project.root / 'pyproject.toml'} [tool.layerkit] build-steps"
        added = str(project.root) not in sys.path
        if added:
            sys.path.insert(0, str(project.root))
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise SpecError(
                f"{where}: {entry!r} names module {module_name}, which cannot be imported from "
                f"{project.root} ({exc}); fix the entry or the module."
            ) from None
        finally:
            if added:
                sys.path.remove(str(project.root))
        step = getattr(module, attr, None)
        if not callable(step):
            raise SpecError(
                f"{where}: {entry!r}: {module_name} has no function {attr}; name a function "
                "taking one StepContext (layerkit.build.hooks)."
            )
        steps.append((entry, step))
    return tuple(steps)


def project_builder(project: Project) -> Builder:
    """What builds a target of ``project``: the pipeline, with its build steps if it has any.

    The builder takes :func:`layerkit.build.pipeline.build`'s options, and ``retrain``: the
    steps redo their work even when it is current (``upgrade-runtime`` asks for it).
    """
    steps = load_steps(project)

    def build_with_steps(
        project: Project, target: Target | None = None, *, retrain: bool = False, **options: Any
    ) -> BuildResult:
        """The target's layers, then every build step, then its function packages."""
        target = target or project.deploy_target
        if not steps:
            return build(project, target, **options)
        if options.get("layers") is not None or options.get("functions") is False:
            return build(project, target, **options)  # one layer, or only layers: no step
        layers = build(project, target, functions=False, **options)
        context = StepContext(
            project,
            target,
            layers,
            options.get("progress") or no_progress,
            bool(options.get("force")),
            retrain,
        )
        for _, step in steps:
            step(context)
        # then only the functions (``layers=[]``): the layers are built, even with ``force``
        functions = build(project, target, layers=[], **options)
        return dataclasses.replace(
            functions,
            built=layers.built + functions.built,
            cached=layers.cached + functions.cached,
        )

    return build_with_steps
