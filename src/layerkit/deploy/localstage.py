"""The ``local`` stage: the real deploy against an in-process moto server, no credentials needed.

:func:`local_stage` starts ``moto.server.ThreadedMotoServer`` on 127.0.0.1 (a free port),
creates the stage's bucket and execution role in it, and yields :class:`Clients` pointed at it.
The deploy, rollback and release code that runs against it is exactly the code that runs
against AWS.

How long the state lives: moto keeps everything in memory, so on its own the state would die
with the process and ``inv rollback --stage=local`` could never see what ``inv deploy
--stage=local`` did. layerkit therefore keeps the local stage's state on disk with moto's own
recorder: every request the server receives is appended to
``.layerkit/local-stage/moto-recording.jsonl`` (zips included, base64-encoded), and the next
start replays that file into a fresh server before anything else happens. The state lives until
that folder is deleted (:func:`reset_local_state`); pass ``state_dir=None`` for a throw-away
stage that dies with the process. Replay time grows with the history (about half a second per
few hundred requests); large real layers make the file large (a 60 MB zip adds ~80 MB). Two
processes must not use the same local stage at once: they would append to one recording.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerkit.deploy.clients import Clients
from layerkit.errors import DeployError
from layerkit.locking import exclusive
from layerkit.project.stages import Stage

STATE_DIR = Path(".layerkit") / "local-stage"
RECORDING = "moto-recording.jsonl"
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class LocalStage:
    """A running local stage."""

    endpoint: str
    clients: Clients
    recording: Path | None  # None: state dies with the process
    replayed: int  # requests replayed from the recording at start


def _post(url: str, payload: object | None = None) -> None:
    data = json.dumps(payload).encode() if payload is not None else b""
    request = urllib.request.Request(url, data=data, method="POST")
    with urllib.request.urlopen(request, timeout=30):
        pass


def _bootstrap(clients: Clients, stage: Stage, iam: Any) -> None:
    """Create the stage's bucket and execution role unless the replayed state has them."""
    s3 = clients.s3
    if stage.bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", ())}:
        region = s3.meta.region_name
        extra = (
            {}
            if region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        s3.create_bucket(Bucket=stage.bucket, **extra)
    role_name = stage.role.rsplit("/", 1)[-1]
    if role_name not in {r["RoleName"] for r in iam.list_roles().get("Roles", ())}:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))


@contextmanager
def local_stage(stage: Stage, state_dir: Path | None) -> Iterator[LocalStage]:
    """Run a moto server for ``stage`` (``local = true``) while the ``with`` block lasts.

    With ``state_dir``, the state recorded there by earlier runs is replayed first and this
    run's requests are appended to it; with None the state dies with the block. One process at a
    time holds a recorded local stage: each runs its own moto, so the stage's S3 deploy lock
    cannot see another process; an OS file lock on the state folder does.
    """
    if not stage.local:
        raise DeployError(
            f"stage {stage.name!r} is not a local stage (set `local = true` in stages.toml)."
        )
    with contextlib.ExitStack() as stack:
        if state_dir is not None:
            stack.enter_context(_exclusive(state_dir))
        yield from _serve(stage, state_dir)


def _exclusive(state_dir: Path) -> AbstractContextManager[None]:
    """Hold the local stage's folder for this process, or refuse at once."""

    def refuse(holder: str) -> DeployError:
        return DeployError(
            f"the local stage ({state_dir}) is in use by another layerkit process ({holder}: a "
            "deploy, rollback or releases); wait for it to finish and run the command again."
        )

    return exclusive(state_dir / ".in-use", refuse)


def _serve(stage: Stage, state_dir: Path | None) -> Iterator[LocalStage]:
    import boto3
    import botocore.session
    from moto.moto_api import recorder
    from moto.server import ThreadedMotoServer

    if state_dir is not None and not hasattr(recorder, "_location"):
        raise DeployError(  # pragma: no cover - guards a moto internals change
            "this moto version's recorder cannot be pointed at a file, so the local stage "
            "cannot keep state between runs; pin moto to 5.2.x or use a throw-away stage."
        )
    werkzeug = logging.getLogger("werkzeug")
    old_level = werkzeug.level
    werkzeug.setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    old_location = getattr(recorder, "_location", None)
    recording = state_dir / RECORDING if state_dir is not None else None
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        _post(f"{endpoint}/moto-api/reset")
        _post(f"{endpoint}/moto-api/config", {"lambda": {"use_docker": False}})
        replayed = 0
        if recording is not None:
            recording.parent.mkdir(parents=True, exist_ok=True)
            recorder._location = str(recording)  # moto has no public setter for the file
            if recording.is_file():
                try:
                    with recording.open(encoding="utf-8") as lines:
                        replayed = sum(1 for _ in lines)
                    recorder.replay_recording(target_host=endpoint)
                except (OSError, ValueError, KeyError) as exc:
                    raise DeployError(
                        f"the local stage's saved state {recording} cannot be replayed ({exc}); "
                        f"delete {recording.parent} to start the local stage afresh."
                    ) from exc
            recorder.start_recording()
        # AWS_PROFILE / AWS_DEFAULT_PROFILE are for real stages: the local stage ignores them.
        core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
        session = boto3.Session(
            botocore_session=core,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=stage.region or DEFAULT_REGION,
        )
        clients = Clients(
            lambda_=session.client("lambda", endpoint_url=endpoint),
            s3=session.client("s3", endpoint_url=endpoint),
        )
        _bootstrap(clients, stage, session.client("iam", endpoint_url=endpoint))
        yield LocalStage(endpoint, clients, recording, replayed)
    finally:
        if recording is not None:
            recorder.stop_recording()
        if old_location is not None:
            recorder._location = old_location
        server.stop()
        werkzeug.setLevel(old_level)


def reset_local_state(root: Path) -> bool:
    """Forget the local stage's state (delete ``.layerkit/local-stage``); True if there was one."""
    target = root / STATE_DIR
    if target.exists():
        shutil.rmtree(target)
        return True
    return False
