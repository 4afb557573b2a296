"""Release records: what a stage runs, one immutable S3 object per deploy or rollback.

A release is written to ``releases/<stage>/<release-id>.json`` in the stage's bucket with a
conditional put (``IfNoneMatch="*"``), so history is never overwritten. The release id is a UTC
timestamp followed by a short content hash (``20261124T042214.123456Z-1a2b3c4d``): ids sort in
time order as plain strings. A record holds, per function, the version the stage alias points
to, the layer version ARNs and code sha256 of that version and its whole configuration (so a
rollback can restore ``$LATEST`` too), plus the time, the git commit and what kind of change
made it (``deploy`` or ``rollback``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from layerkit import __version__
from layerkit.deploy.clients import if_found
from layerkit.deploy.models import FunctionState, ReleaseKind
from layerkit.errors import DeployError
from layerkit.project.stages import Stage

SCHEMA = 1


@dataclass(frozen=True, kw_only=True)
class FunctionRelease(FunctionState):
    """One function as a release recorded it: the alias target and what that version carries.

    The version, code sha256, layer version ARNs (in extraction order) and configuration are
    the :class:`FunctionState` of the version the stage alias points to.
    """

    function: str  # the functions/<name>/ folder
    function_name: str  # the AWS function name

    @classmethod
    def of(cls, function: str, function_name: str, state: FunctionState) -> FunctionRelease:
        """The record of ``state``, the alias target of the function folder ``function``."""
        return cls(
            function=function,
            function_name=function_name,
            **{f.name: getattr(state, f.name) for f in fields(FunctionState)},
        )


@dataclass(frozen=True)
class Release:
    """What a stage runs after one deploy or rollback."""

    release_id: str
    stage: str
    created: str  # ISO 8601, UTC
    commit: str | None
    kind: ReleaseKind
    functions: tuple[FunctionRelease, ...]
    layers: tuple[tuple[str, str], ...] = ()  # (layer, layer version ARN) of the deploy
    rolled_back_to: str | None = None  # for kind == "rollback": the release restored
    layerkit: str = __version__

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ReleaseKind(self.kind))  # "deploy" reads as the enum

    def function(self, name: str) -> FunctionRelease | None:
        """The record of the function folder ``name``, or None."""
        return next((f for f in self.functions if f.function == name), None)

    def to_json(self) -> str:
        """The stored form of this release."""
        return json.dumps({"schema": SCHEMA, **asdict(self)}, indent=2, sort_keys=True) + "\n"


def release_from_json(text: str | bytes, where: str) -> Release:
    """Parse a stored release; ``where`` (the S3 key) names it in errors."""
    try:
        data = json.loads(text)
        if data.pop("schema", None) != SCHEMA:
            raise ValueError(f"unknown schema (this layerkit reads schema {SCHEMA})")
        functions = tuple(
            FunctionRelease(
                **{
                    **f,
                    "layers": tuple(f["layers"]),
                    "environment": tuple((str(k), str(v)) for k, v in f.get("environment", ())),
                }
            )
            for f in data.pop("functions")
        )
        layers = tuple((str(a), str(b)) for a, b in data.pop("layers", ()))
        kind = ReleaseKind(data.pop("kind"))
        return Release(**data, kind=kind, functions=functions, layers=layers)
    except (ValueError, TypeError, KeyError) as exc:
        raise DeployError(
            f"release record {where} cannot be read ({exc}); it was not written by this "
            "layerkit version, or it was edited by hand. Leave it in place (history is "
            "append-only) and name another release with --release."
        ) from exc


def new_release_id(content: str, now: dt.datetime) -> str:
    """A sortable release id: the UTC time, then 8 hex digits of the content's sha256."""
    stamp = now.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{stamp}-{hashlib.sha256(content.encode()).hexdigest()[:8]}"


def new_release(
    stage: Stage,
    kind: ReleaseKind,
    functions: Iterable[FunctionRelease],
    layers: Iterable[tuple[str, str]],
    commit: str | None,
    now: Callable[[], dt.datetime],
    rolled_back_to: str | None = None,
) -> Release:
    """A new record for ``stage``: created ``now()``, its id the time and a content hash."""
    draft = Release(
        release_id="",
        stage=stage.name,
        created=now().astimezone(dt.timezone.utc).isoformat(timespec="seconds"),
        commit=commit,
        kind=kind,
        functions=tuple(functions),
        layers=tuple(layers),
        rolled_back_to=rolled_back_to,
    )
    return replace(draft, release_id=new_release_id(draft.to_json(), now()))


def release_key(stage: Stage, release_id: str) -> str:
    """The S3 key of a release record."""
    return f"{stage.releases_prefix}{release_id}.json"


def write_release(s3: Any, stage: Stage, release: Release) -> str:
    """Store ``release`` as a new object; never replaces one. Returns the key.

    Raises botocore's ClientError (PreconditionFailed) if the key exists already: the caller
    treats that like any other failed deploy step.
    """
    key = release_key(stage, release.release_id)
    s3.put_object(
        Bucket=stage.bucket,
        Key=key,
        Body=release.to_json().encode(),
        ContentType="application/json",
        IfNoneMatch="*",
    )
    return key


def list_release_ids(s3: Any, stage: Stage) -> tuple[str, ...]:
    """Every recorded release id of ``stage``, oldest first."""
    ids: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=stage.bucket, Prefix=stage.releases_prefix):
        for obj in page.get("Contents", ()):
            key: str = obj["Key"]
            if key.endswith(".json"):
                ids.append(key[len(stage.releases_prefix) : -len(".json")])
    return tuple(sorted(ids))


def read_release(s3: Any, stage: Stage, release_id: str) -> Release:
    """Read one release record; DeployError naming the known ids if it does not exist."""
    key = release_key(stage, release_id)
    try:
        body = s3.get_object(Bucket=stage.bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        known = list_release_ids(s3, stage)
        raise DeployError(
            f"stage {stage.name!r} has no release {release_id!r} (s3://{stage.bucket}/{key}); "
            f"recorded releases: {', '.join(known[-10:]) or 'none'}. `inv releases "
            f"--stage={stage.name}` lists them."
        ) from None
    return release_from_json(body, f"s3://{stage.bucket}/{key}")


def list_releases(s3: Any, stage: Stage, limit: int | None = None) -> tuple[Release, ...]:
    """The recorded releases of ``stage``, oldest first (the newest ``limit`` if given)."""
    ids = list_release_ids(s3, stage)
    if limit is not None:
        ids = ids[-limit:] if limit > 0 else ()
    return tuple(read_release(s3, stage, rid) for rid in ids)


def effective_release(releases: Mapping[str, Release], release_id: str) -> str:
    """The deploy release that ``release_id`` stands for (a rollback stands for its target)."""
    seen: set[str] = set()
    current = release_id
    while releases[current].kind == ReleaseKind.ROLLBACK and releases[current].rolled_back_to:
        if current in seen:
            break
        seen.add(current)
        target = releases[current].rolled_back_to
        if target not in releases:
            break
        current = target
    return current


def previous_release_id(releases: tuple[Release, ...]) -> str:
    """The release ``inv rollback`` without --release goes back to.

    That is the deploy before the one the stage runs now; a rollback record stands for the
    release it restored, so repeated rollbacks walk further back instead of toggling.
    """
    if not releases:
        raise DeployError("nothing to roll back to: the stage has no recorded release yet.")
    by_id = {r.release_id: r for r in releases}
    live = effective_release(by_id, releases[-1].release_id)
    older = [r for r in releases if r.release_id < live and r.kind == ReleaseKind.DEPLOY]
    if not older:
        newer = [
            r.release_id for r in releases if r.release_id > live and r.kind == ReleaseKind.DEPLOY
        ]
        if not newer:
            raise DeployError(
                f"nothing to roll back to: release {live} is the stage's only deploy, so there "
                "is nothing older. To change what the stage runs, deploy another build "
                "(`inv deploy`)."
            )
        raise DeployError(
            f"nothing older to roll back to: release {live} is the stage's oldest deploy. To "
            f"go forward again, name a newer one with --release (e.g. {newer[-1]}; "
            "`inv releases` lists them), or deploy another build (`inv deploy`)."
        )
    return older[-1].release_id


# --------------------------------------------------------------------------- drift


@dataclass(frozen=True)
class DriftedFunction:
    """A function whose stage alias is not where the live release put it."""

    function_name: str
    alias_version: str | None  # None: the alias is missing
    release_version: str | None  # None: no live release names the function


@dataclass(frozen=True)
class Drift:
    """Functions on versions no release names: a deploy or rollback stopped between its moves.

    It lasts until a deploy or a rollback records where the aliases are.
    """

    stage: str
    release_id: str | None  # the live release (what a rollback restores); None: no release yet
    functions: tuple[DriftedFunction, ...]

    def describe(self) -> str:
        """One paragraph: which aliases moved, and the two ways out."""
        moved = "; ".join(
            f"{f.function_name} is on "
            f"{f.alias_version if f.alias_version is not None else 'no version (no alias)'}, "
            + (
                f"the release says {f.release_version}"
                if f.release_version is not None
                else "no release names it"
            )
            for f in self.functions
        )
        if self.release_id is None:
            return (
                f"drift: stage {self.stage} runs functions no release names ({moved}): a deploy "
                f"stopped before it recorded one. Run `inv deploy --stage={self.stage}` to "
                "finish it."
            )
        return (
            f"drift: stage {self.stage} differs from its last release {self.release_id} "
            f"({moved}): a deploy or rollback stopped between its moves. Run `inv deploy "
            f"--stage={self.stage}` to finish the deploy, or `inv rollback --stage="
            f"{self.stage}` to go back to release {self.release_id}."
        )


def drift_of(stage: Stage, live: Release | None, aliases: Mapping[str, str | None]) -> Drift | None:
    """Compare ``aliases`` (function name -> stage alias version, None: no alias) with ``live``.

    Pure. A function ``live`` names whose alias is elsewhere (or gone), and a function with the
    stage alias that ``live`` does not name (when asked about one), is drift; None when
    everything matches.
    """
    named = {f.function_name: f.version for f in live.functions} if live else {}
    drifted = [
        DriftedFunction(name, aliases.get(name), version)
        for name, version in named.items()
        if aliases.get(name) != version
    ]
    drifted += [
        DriftedFunction(name, version, None)
        for name, version in sorted(aliases.items())
        if name not in named and version is not None
    ]
    if not drifted:
        return None
    return Drift(stage.name, live.release_id if live else None, tuple(drifted))


def read_drift(lam: Any, stage: Stage, releases: tuple[Release, ...]) -> Drift | None:
    """Where the stage's aliases are against its newest release (:func:`drift_of`).

    Reads the alias of every function the newest release names (a function no release names,
    say one a killed deploy created, is the next deploy's to record).
    """
    live = releases[-1] if releases else None
    if live is None:
        return None
    aliases: dict[str, str | None] = {}
    for fn in live.functions:
        alias = if_found(lam.get_alias, FunctionName=fn.function_name, Name=stage.alias)
        aliases[fn.function_name] = str(alias["FunctionVersion"]) if alias is not None else None
    return drift_of(stage, live, aliases)
