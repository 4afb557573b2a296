"""Invoke tasks of this repository (`inv --list`): layerkit's, plus the Predictions model build.

Every layerkit task comes from `layerkit.tasks` (the same functions as the `layerkit` command).
This project adds its own application step: the Predictions model (`model_training.py`), a
build step of `[tool.layerkit]` in pyproject.toml: every build of a target (`inv build.all`,
`layerkit build all`, validate, upgrade-runtime) builds its layers, then trains that target's
model with them (python3.12's model for the python3.12 packages), then the function packages.
`build.model` retrains a target's model on demand.
"""

from __future__ import annotations

from typing import Any

from invoke import Context, Exit, task

import model_training
from layerkit.tasks import FEEDBACK, collection, layerkit_task, project_dir


@layerkit_task(name="model", help={"runtime": "train for this runtime instead of the template's"})
def model(c: Context, runtime: str | None = None) -> Any:
    """Retrain the Predictions model under the target runtime with the built layers."""
    return model_training.build_model(project_dir(c), runtime=runtime, feedback=FEEDBACK)


# The model step itself is declared in pyproject.toml ([tool.layerkit] build-steps), so
# `inv build.all` and `layerkit build all` run the same steps for every target.
ns = collection()
ns.collections["build"].add_task(model)
model.qualified_name = "build.model"


@task(help={"machine": "where the sizes were measured (default: this machine's cores, arch)"})
def readme(c: Context, machine: str | None = None) -> None:
    """Rewrite the README's generated figures: locks, dist/report.json, the bench's JSON."""
    from layerkit.report.readme import main

    root = project_dir(c)
    argv = [str(root / "README.md"), "--report", str(root / "dist" / "report.json")]
    argv += ["--bench", str(root / "dist" / "benchmark-compare-pip-target.json")]
    if main(argv + (["--machine", machine] if machine else [])):
        raise Exit(code=1)


ns.add_task(readme)
