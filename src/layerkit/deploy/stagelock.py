"""One deploy (or rollback) per stage at a time: a lock object in the stage's bucket.

``locks/<stage>.lock`` is created with a conditional put (``IfNoneMatch="*"``): S3 creates it
for exactly one of two racing writers and answers the other with 412 PreconditionFailed. It
holds who took it and when. It is removed with a conditional delete (``IfMatch=<etag>``), so a
deploy never removes a lock someone else took after a forced unlock. A lock left by a killed
process is removed with :func:`force_unlock` (``layerkit unlock --stage=X``; ``inv deploy
--stage=X --force-unlock``). On the local stage the next command removes such a lock itself
(only one process can hold a local stage, so a lock found there is always stale).
:func:`held` releases a lock when the work done under it ends, and says so if it cannot.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from layerkit.deploy.clients import AWS_ERRORS, error_code, explain_aws_error
from layerkit.errors import DeployError
from layerkit.project.stages import Stage


@dataclass(frozen=True)
class LockInfo:
    """Who holds a stage's lock, since when, and the lock object's ETag."""

    owner: str
    since: str
    purpose: str
    etag: str


def default_owner() -> str:
    """``user@host pid N``: enough to find the process holding a lock."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no user name (containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def read_lock(s3: Any, stage: Stage) -> LockInfo | None:
    """The current holder of the stage's lock, or None when it is free."""
    try:
        obj = s3.get_object(Bucket=stage.bucket, Key=stage.lock_key)
    except s3.exceptions.NoSuchKey:
        return None
    try:
        data = json.loads(obj["Body"].read())
    except ValueError:
        data = {}
    return LockInfo(
        owner=str(data.get("owner", "unknown")),
        since=str(data.get("since", "unknown")),
        purpose=str(data.get("purpose", "unknown")),
        etag=obj["ETag"],
    )


def acquire(s3: Any, stage: Stage, owner: str, purpose: str, now: dt.datetime) -> LockInfo:
    """Take the stage's lock or raise DeployError naming who holds it and since when."""
    since = now.astimezone(dt.timezone.utc).isoformat(timespec="seconds")
    body = json.dumps({"owner": owner, "since": since, "purpose": purpose}).encode()
    try:
        return _put_lock(s3, stage, owner, since, purpose, body)
    except BotoCoreError as exc:  # unreachable endpoint, no credentials: nothing was changed
        raise DeployError(
            f"stage {stage.name!r}: could not take the {purpose} lock "
            f"s3://{stage.bucket}/{stage.lock_key}, so nothing was changed: "
            f"{explain_aws_error(exc, stage)}"
        ) from exc


def _put_lock(s3: Any, stage: Stage, owner: str, since: str, purpose: str, body: bytes) -> LockInfo:
    try:
        response = s3.put_object(
            Bucket=stage.bucket,
            Key=stage.lock_key,
            Body=body,
            ContentType="application/json",
            IfNoneMatch="*",
        )
    except ClientError as exc:
        if error_code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
            raise DeployError(
                f"stage {stage.name!r}: could not write the deploy lock "
                f"s3://{stage.bucket}/{stage.lock_key} ({exc}). Check that the bucket exists "
                "and that your credentials may write to it."
            ) from exc
        holder = read_lock(s3, stage)
        who = (
            f"{holder.owner} ({holder.purpose}) since {holder.since}"
            if holder
            else "another process (it finished while this message was written)"
        )
        raise DeployError(
            f"stage {stage.name!r} is locked by {who}: two deploys to one stage at once are "
            f"refused. Wait for it to finish; if that process is gone, remove the lock with "
            f"`inv deploy --stage={stage.name} --force-unlock` "
            f"(s3://{stage.bucket}/{stage.lock_key})."
        ) from None
    return LockInfo(owner=owner, since=since, purpose=purpose, etag=response["ETag"])


def release(s3: Any, stage: Stage, lock: LockInfo) -> None:
    """Remove the lock if it is still the one ``lock`` describes (conditional delete)."""
    s3.delete_object(Bucket=stage.bucket, Key=stage.lock_key, IfMatch=lock.etag)


def _release_problem(s3: Any, stage: Stage, lock: LockInfo) -> str | None:
    try:
        release(s3, stage, lock)
    except AWS_ERRORS as exc:
        return (
            f"the deploy lock s3://{stage.bucket}/{stage.lock_key} could not be removed "
            f"({exc}); remove it with `inv deploy --stage={stage.name} --force-unlock`."
        )
    return None


@contextmanager
def held(s3: Any, stage: Stage, lock: LockInfo) -> Iterator[LockInfo]:
    """Release ``lock`` when the ``with`` block ends, whether it succeeds or raises DeployError.

    A lock that cannot be removed is reported in a DeployError: appended to the block's own
    DeployError, or as "the <purpose> succeeded, but ..." after a block that succeeded.
    """
    try:
        yield lock
    except DeployError as exc:
        problem = _release_problem(s3, stage, lock)
        if problem:
            raise DeployError(f"{exc}\nAlso: {problem}") from exc
        raise
    except BaseException:  # interrupted while reading or planning: the lock goes all the same
        _release_problem(s3, stage, lock)
        raise
    problem = _release_problem(s3, stage, lock)
    if problem:
        raise DeployError(f"the {lock.purpose} succeeded, but {problem}")


def force_unlock(s3: Any, stage: Stage) -> LockInfo | None:
    """Remove the stage's lock whoever holds it; returns what was removed (None: no lock)."""
    holder = read_lock(s3, stage)
    if holder is not None:
        s3.delete_object(Bucket=stage.bucket, Key=stage.lock_key)
    return holder
