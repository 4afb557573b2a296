"""The ``local`` stage: the real deploy against an in-process moto server, no credentials needed.

:func:`local_stage` starts ``moto.server.ThreadedMotoServer`` on 127.0.0.1 (a free port),
creates the stage's bucket and execution role in it, and yields :class:`Clients` pointed at it.
The deploy, rollback and release code that runs against it is exactly the code that runs
against AWS; ``Invoke`` runs the deployed code for real (:mod:`layerkit.deploy.localinvoke`).

How the state lives on (``.layerkit/local-stage``, until :func:`reset_local_state`):

- ``artifacts/<sha256>.zip``: every zip uploaded to the stage's ``artifacts/`` keys, stored once
  (content-addressed), outside the request log;
- ``requests.jsonl``: the requests that changed the server's state, one JSON line each (reads
  are left out, and an artifact upload is a reference to its stored zip);
- ``state.json``: the format of the folder.

The next start replays the log into a fresh server (artifact uploads from the store, over one
kept-alive connection), so ``inv rollback --stage=local`` sees what ``inv deploy
--stage=local`` did. Pass ``state_dir=None`` for a throw-away stage that dies with the process.
One process at a time holds a recorded local stage (an OS lock on the folder), so a deploy lock
found in a replayed stage was left by a killed process: it is removed, and the stage's notes
say so and what that deploy left.

What reading the state found is said in the stage's notes: a cut last line of the log (a process
killed while writing it) is dropped and everything before it kept; a stored zip whose bytes do not
hash to its name is named with the releases that need it (it is checked again before it is used).
A read-only command (``writable=False``: releases, ``deploy --dry-run``) replays the state into
its server and writes nothing: no folder, no log line, no lock file.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import tempfile
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerkit.deploy.clients import Clients
from layerkit.deploy.localinvoke import ArtifactStore, intercept_invokes
from layerkit.deploy.localstate import (
    StateDir,
    journal_drift,
    recorder_for,
    replay,
    write_failed,
)
from layerkit.deploy.models import ARTIFACT_PREFIX
from layerkit.deploy.releases import list_releases
from layerkit.deploy.stagelock import force_unlock
from layerkit.errors import DeployError
from layerkit.locking import exclusive
from layerkit.project.stages import Stage
from layerkit.runtime import layercache
from layerkit.runtime.sandbox import remembered_interpreter
from layerkit.runtime.target import Target

STATE_DIR = Path(".layerkit") / "local-stage"
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class LocalStage:
    """A running local stage."""

    endpoint: str
    clients: Clients
    recording: Path | None  # the request log; None: nothing is recorded (read-only, throw-away)
    replayed: int  # requests replayed from the log at start
    notes: tuple[str, ...] = ()  # what the start found and did (a stale lock removed, ...)
    #: release id -> why it cannot run again (a stored zip it needs is damaged)
    unusable: Mapping[str, str] = field(default_factory=dict)


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
def local_stage(
    stage: Stage,
    state_dir: Path | None,
    *,
    cache: Path | None = None,
    interpreter: Callable[[Target], Path] | None = None,
    writable: bool = True,
) -> Iterator[LocalStage]:
    """Run a moto server for ``stage`` (``local = true``) while the ``with`` block lasts.

    With ``state_dir``, the state saved there by earlier runs is replayed first and this run's
    changes are added to it; with None the state dies with the block. One process at a time
    holds a recorded local stage: each runs its own moto, so the stage's S3 deploy lock cannot
    see another process; an OS file lock on the state folder does. ``Invoke`` runs the deployed
    code in the sandbox, its layers extracted once into ``cache`` (default:
    ``$LAYERKIT_CACHE_DIR``, else ``cache`` next to ``state_dir``, i.e. ``.layerkit/cache``);
    ``interpreter`` finds a runtime's interpreter (default: looked up from the current folder
    once, then remembered in the cache).
    ``writable=False`` (a read-only command) replays the saved state and records nothing: the
    folder is not created, locked or changed, and what the block changes dies with it.
    """
    if not stage.local:
        raise DeployError(
            f"stage {stage.name!r} is not a local stage (set `local = true` in stages.toml)."
        )
    cache = cache or layercache.configured_cache_dir()
    with contextlib.ExitStack() as stack:
        if state_dir is None:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="layerkit-")))
            store = ArtifactStore(scratch / "artifacts")
            state = None
            cache = cache or scratch / "cache"
        else:
            if writable:
                stack.enter_context(_exclusive(state_dir))
            state = StateDir(state_dir, writable=writable)
            state.check_format()
            state.remove_partial_zips()
            store = state.store
            cache = cache or Path(state_dir).parent / "cache"
        folder = cache

        def remembered(target: Target) -> Path:
            return remembered_interpreter(target, Path.cwd(), folder)

        yield from _serve(stage, state, store, cache, interpreter or remembered)


@contextmanager
def _exclusive(state_dir: Path) -> Iterator[None]:
    """Hold the local stage's folder for this process, or refuse at once.

    A folder the OS will not write (a read-only checkout, a full disk) is one paragraph naming
    it and the fix; the commands that only read never come here.
    """

    def refuse(holder: str) -> DeployError:
        return DeployError(
            f"the local stage ({state_dir}) is in use by another layerkit process ({holder}: a "
            "deploy, rollback or releases); wait for it to finish and run the command again."
        )

    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(exclusive(state_dir / ".in-use", refuse))
        except OSError as exc:
            raise write_failed(state_dir / ".in-use", exc) from None
        yield


def _store_artifacts(store: ArtifactStore) -> Callable[..., None]:
    """A before-call handler: an upload to ``artifacts/<sha256>.zip`` is kept in ``store``."""

    def handler(params: dict[str, Any], **_: Any) -> None:
        key = str(params.get("Key", ""))
        sha = key[len(ARTIFACT_PREFIX) : -len(".zip")] if key.startswith(ARTIFACT_PREFIX) else ""
        if len(sha) == 64 and key.endswith(".zip") and "Body" in params:
            store.put(sha, params["Body"])

    return handler


@functools.cache
def _data_loader() -> Any:
    """The model loader of every local session: each JSON model is parsed once per process."""
    import botocore.loaders

    return botocore.loaders.create_loader()


def local_session(region: str) -> Any:
    """A boto3 session for a local stage in ``region``, with moto's dummy credentials.

    Sessions share one model loader, so opening the stage again (a test, a long-lived
    process) does not parse the lambda, s3 and iam models (~0.3 s) once more.
    """
    import boto3
    import botocore.session

    # AWS_PROFILE / AWS_DEFAULT_PROFILE are for real stages: the local stage ignores them.
    core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    core.register_component("data_loader", _data_loader())
    return boto3.Session(
        botocore_session=core,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name=region,
    )


def _stale_lock_notes(clients: Clients, stage: Stage, recorded: bool) -> tuple[str, ...]:
    """Remove a deploy lock a killed process left in the replayed state, and say what it left.

    Not ``recorded`` (a read-only command): the lock goes from this run's server only, and the
    note says the next deploy or rollback removes it.
    """
    held = force_unlock(clients.s3, stage)
    if held is None:
        return ()
    notes = [
        f"removed the {held.purpose} lock of {held.owner} (since {held.since}): that process "
        "was killed before it finished, and no other process can hold this local stage."
        if recorded
        else f"found the {held.purpose} lock of {held.owner} (since {held.since}), left by a "
        "process killed before it finished; the next deploy or rollback removes it."
    ]
    releases = list_releases(clients.s3, stage, limit=1)
    if releases:
        moved = []
        for fn in releases[-1].functions:
            alias = clients.lambda_.get_alias(FunctionName=fn.function_name, Name=stage.alias)
            if alias["FunctionVersion"] != fn.version:
                moved.append(f"{fn.function_name}:{stage.alias} is on {alias['FunctionVersion']}")
        if moved:
            notes.append(
                f"The stage differs from its last release {releases[-1].release_id} "
                f"({'; '.join(moved)}, the release says otherwise): run `inv deploy "
                f"--stage={stage.name}` to finish the deploy, or `inv rollback "
                f"--stage={stage.name} --release {releases[-1].release_id}` to go back."
            )
        else:
            notes.append(
                f"Every alias is where release {releases[-1].release_id} put it; anything the "
                f"killed {held.purpose} changed besides is redone by the next deploy."
            )
    return tuple(notes)


def _serve(
    stage: Stage,
    state: StateDir | None,
    store: ArtifactStore,
    cache: Path,
    interpreter: Callable[[Target], Path],
) -> Iterator[LocalStage]:
    from moto.moto_api import recorder
    from moto.server import ThreadedMotoServer

    if not hasattr(recorder, "_record_request"):
        raise DeployError(  # pragma: no cover - guards a moto internals change
            "this moto version's recorder has no _record_request hook, so the local stage "
            "cannot keep state between runs; pin moto to 5.2.x or use a throw-away stage."
        )
    werkzeug = logging.getLogger("werkzeug")
    old_level = werkzeug.level
    werkzeug.setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    previous = recorder.__dict__.get("_record_request")  # another local stage's, or none
    patched = False
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        _post(f"{endpoint}/moto-api/reset")
        _post(f"{endpoint}/moto-api/config", {"lambda": {"use_docker": False}})
        replayed = 0
        if state is not None:
            replayed = replay(state, endpoint)
        if state is not None and state.writable:
            other = recorder._record_request
            recorder._record_request = recorder_for(state, f"{host}:{port}", other)
            patched = True
        session = local_session(stage.region or DEFAULT_REGION)
        clients = Clients(
            lambda_=session.client("lambda", endpoint_url=endpoint),
            s3=session.client("s3", endpoint_url=endpoint),
        )
        inspector = session.client("lambda", endpoint_url=endpoint)
        intercept_invokes(clients.lambda_, inspector, store, cache, interpreter)
        clients.s3.meta.events.register(
            "before-parameter-build.s3.PutObject", _store_artifacts(store)
        )
        _bootstrap(clients, stage, session.client("iam", endpoint_url=endpoint))
        notes = (*state.notes,) if state is not None else ()
        if replayed:
            notes += _stale_lock_notes(clients, stage, patched)
        # a change the log cannot keep is refused with a 400 that carries the paragraph saying
        # why (localstate._keep), so the command's own error names the folder and the fix
        yield LocalStage(
            endpoint,
            clients,
            state.requests if patched else None,
            replayed,
            notes,
            dict(state.unusable) if state is not None else {},
        )
    finally:
        if patched and previous is not None:
            recorder._record_request = previous
        elif patched:
            del recorder._record_request  # the class's method again
        server.stop()
        werkzeug.setLevel(old_level)


def reset_local_state(root: Path) -> bool:
    """Forget the local stage's state (delete ``.layerkit/local-stage``); True if there was one."""
    target = root / STATE_DIR
    if target.exists():
        layercache.remove_tree(target)
        return True
    return False


def saved_state_notes(root: Path, stage: Stage) -> tuple[str, ...]:
    """What the local stage's saved state under ``root`` says, read from its files alone.

    For ``status``: a torn last line of the log, damage, and drift (aliases the log moved away
    from the newest release) — no server is started, nothing is written, no zip is hashed.
    """
    state = StateDir(root / STATE_DIR, writable=False)
    if not state.requests.exists():
        return ()
    try:
        journal = state.read_journal()
    except DeployError as exc:
        return (f"local stage {stage.name}: {exc}",)
    drift = journal_drift(journal.entries, stage)
    return (*state.notes, *((drift.describe(),) if drift else ()))
