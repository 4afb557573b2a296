"""A stage's AWS clients for one command: the embedded moto server or the real AWS chain.

The local stage (``local = true``) runs an in-process moto server while the ``with`` block lasts
(its state kept under ``.layerkit/local-stage``); any other stage gets clients from the standard
AWS credential chain (:func:`layerkit.deploy.clients.clients_for`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from layerkit.deploy.clients import Clients, clients_for
from layerkit.deploy.localstage import STATE_DIR, local_stage
from layerkit.errors import DeployError
from layerkit.project.stages import Stage


def _ignore(line: str) -> None:
    """Say nothing."""


@dataclass(frozen=True)
class StageSession:
    """A stage and clients for it; for the local stage, while its embedded server runs."""

    stage: Stage
    clients: Clients
    notes: tuple[str, ...] = ()  # what opening it found and did (the local stage's stale lock)
    endpoint: str | None = None  # the local stage's server
    replayed: int = 0  # requests the local stage replayed from its saved state
    #: release id -> why it cannot run again (the local stage: a stored zip it needs is damaged)
    unusable: Mapping[str, str] = field(default_factory=dict)


@contextmanager
def open_session(
    root: Path, stage: Stage, *, state_dir: Path | None = None, writable: bool = True
) -> Iterator[StageSession]:
    """``stage`` of the project at ``root``, open for the ``with`` block.

    A local stage runs its embedded moto server meanwhile, its state in ``state_dir`` (default
    ``<root>/.layerkit/local-stage``); ``writable=False`` (a command that only reads) replays
    that state and writes nothing. A real stage gets clients from the standard AWS chain.
    """
    if not stage.local:
        yield StageSession(stage, clients_for(stage))
        return
    if importlib.util.find_spec("moto") is None:
        raise DeployError(
            f"stage {stage.name!r} is the local stage, an embedded moto server, and moto is not "
            "installed: install it with `python -m pip install 'layerkit[local]'` (moto[server]) "
            "and run the command again."
        )
    folder = state_dir if state_dir is not None else root / STATE_DIR
    with local_stage(stage, folder, writable=writable) as local:
        yield StageSession(
            stage, local.clients, local.notes, local.endpoint, local.replayed, local.unusable
        )


@contextmanager
def announced_session(
    root: Path, stage: Stage, note: Callable[[str], None] = _ignore, *, writable: bool = True
) -> Iterator[StageSession]:
    """:func:`open_session`, with what opening the stage found told to ``note`` first.

    ``note`` is told where the local stage runs, what it replayed, and what opening it found (a
    lock a killed run left, a torn log line dropped, a damaged stored zip, ...). ``writable=False``:
    a command that only reads (the local stage's state is replayed, nothing is written).
    """
    with open_session(root, stage, writable=writable) as session:
        if stage.local:
            mode = "" if writable else "; read-only: nothing is recorded"
            note(
                f"local stage: moto on {session.endpoint}, state in {STATE_DIR} "
                f"({session.replayed} requests replayed{mode}; delete the folder to start "
                "afresh)"
            )
        for line in session.notes:
            note(line)
        yield session
