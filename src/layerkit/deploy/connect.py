"""A stage's AWS clients for one command: the embedded moto server or the real AWS chain.

The local stage (``local = true``) runs an in-process moto server while the ``with`` block lasts
(its state kept under ``.layerkit/local-stage``); any other stage gets clients from the standard
AWS credential chain (:func:`layerkit.deploy.clients.clients_for`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from layerkit.deploy.clients import Clients, clients_for
from layerkit.deploy.localstage import STATE_DIR, local_stage
from layerkit.errors import DeployError
from layerkit.project.stages import Stage


def _ignore(line: str) -> None:
    """Say nothing."""


@contextmanager
def stage_clients(
    root: Path, stage: Stage, note: Callable[[str], None] = _ignore
) -> Iterator[Clients]:
    """Clients for ``stage`` of the project at ``root`` while the ``with`` block lasts.

    ``note`` is told where the local stage runs and what it replayed.
    """
    if not stage.local:
        yield clients_for(stage)
        return
    if importlib.util.find_spec("moto") is None:
        raise DeployError(
            f"stage {stage.name!r} is the local stage, an embedded moto server, and moto is not "
            "installed: install it with `python -m pip install 'layerkit[local]'` (moto[server]) "
            "and run the command again."
        )
    with local_stage(stage, root / STATE_DIR) as local:
        note(
            f"local stage: moto on {local.endpoint}, state in {STATE_DIR} "
            f"({local.replayed} requests replayed; delete the folder to start afresh)"
        )
        for line in local.notes:  # what opening it found: a lock a killed run left, ...
            note(line)
        yield local.clients
