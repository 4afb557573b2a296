"""What a stage runs now, read from Lambda and S3: what the planner compares.

:func:`read_current` asks, for the layers and functions of a deploy: the latest version of each
layer and its code sha256, each function's ``$LATEST`` configuration and the version its stage
alias points to, which content-addressed artifacts the bucket holds already, and what the
newest release record says the aliases point to. It only reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from layerkit.deploy.clients import AWS_ERRORS, Clients, explain_aws_error, if_found, not_found
from layerkit.deploy.models import (
    CurrentFunction,
    CurrentLayer,
    CurrentState,
    DesiredState,
    artifact_key,
    function_state,
    hex_from_b64,
)
from layerkit.errors import DeployError
from layerkit.project.stages import Stage


def _latest_layer(lam: Any, layer_name: str) -> CurrentLayer | None:
    newest: Mapping[str, Any] | None = None
    try:
        for page in lam.get_paginator("list_layer_versions").paginate(LayerName=layer_name):
            for item in page.get("LayerVersions", ()):
                if newest is None or item["Version"] > newest["Version"]:
                    newest = item
    except ClientError as exc:
        if not_found(exc):
            return None
        raise
    if newest is None:
        return None
    version = lam.get_layer_version(LayerName=layer_name, VersionNumber=newest["Version"])
    return CurrentLayer(
        layer_name=layer_name,
        arn=version["LayerVersionArn"],
        version=int(version["Version"]),
        sha256=hex_from_b64(version["Content"]["CodeSha256"]),
    )


def _current_function(lam: Any, function_name: str, alias: str) -> CurrentFunction | None:
    config = if_found(lam.get_function_configuration, FunctionName=function_name)
    if config is None:
        return None
    latest = function_state(config)
    found = if_found(lam.get_alias, FunctionName=function_name, Name=alias)
    alias_version: str | None = found["FunctionVersion"] if found is not None else None
    alias_state = None
    if alias_version is not None:
        alias_state = function_state(
            lam.get_function_configuration(FunctionName=function_name, Qualifier=alias_version)
        )
    return CurrentFunction(function_name, latest, alias_version, alias_state)


def read_current(clients: Clients, stage: Stage, desired: DesiredState) -> CurrentState:
    """Read what ``stage`` runs now, for the layers and functions of ``desired``."""
    try:
        layers = {}
        for layer in desired.layers:
            found = _latest_layer(clients.lambda_, layer.layer_name or stage.layer_name(layer.name))
            if found is not None:
                layers[layer.name] = found
        functions = {}
        for fn in desired.functions:
            name = fn.function_name or stage.function_name(fn.name)
            current = _current_function(clients.lambda_, name, stage.alias)
            if current is not None:
                functions[fn.name] = current
        keys = {artifact_key(a.sha256) for a in (*desired.layers, *desired.functions)}
        present = frozenset(
            k
            for k in sorted(keys)
            if if_found(clients.s3.head_object, Bucket=stage.bucket, Key=k) is not None
        )
        recorded = _recorded(clients.s3, stage) if functions else None
    except AWS_ERRORS as exc:
        raise DeployError(
            f"stage {stage.name!r}: could not read what the stage runs now, so nothing was "
            f"changed: {explain_aws_error(exc, stage)} The reads need lambda:Get*/List* and "
            f"s3:HeadObject on {stage.bucket}."
        ) from exc
    return CurrentState(layers=layers, functions=functions, artifacts=present, recorded=recorded)


def _recorded(s3: Any, stage: Stage) -> dict[str, str] | None:
    """The alias versions the stage's newest release record names ({}: none; None: unreadable)."""
    from layerkit.deploy.releases import list_release_ids, read_release

    ids = list_release_ids(s3, stage)
    if not ids:
        return {}
    try:
        newest = read_release(s3, stage, ids[-1])
    except DeployError:  # a damaged record: the next deploy writes a good one
        return None
    return {fn.function: fn.version for fn in newest.functions}
