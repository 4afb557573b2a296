"""Invoke a function as a stage runs it: ``FUNCTION[:ALIAS|:VERSION]`` on the stage's Lambda.

:func:`invoke_on_stage` names the function by its folder (``predictions``) or template logical
id, qualified by an alias or a version number; without one it invokes the stage's alias (what
traffic runs). On the local stage the call runs the deployed code for real
(:mod:`layerkit.deploy.localinvoke`); on AWS it is AWS's ``Invoke``. The answer carries the
payload, Lambda's error (``errorType: errorMessage``) and the log tail with the REPORT line.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from layerkit.deploy.clients import AWS_ERRORS, Clients, explain_aws_error
from layerkit.deploy.executor import invoke_error
from layerkit.errors import DeployError
from layerkit.project.spec import Project
from layerkit.project.stages import Stage


@dataclass(frozen=True)
class StageInvokeResult:
    """What one invoke on a stage returned."""

    function_name: str
    qualifier: str
    version: str  # the version that ran (X-Amz-Executed-Version)
    ok: bool
    payload: Any  # the parsed JSON payload (text when it is not JSON)
    error: str | None  # "ErrorType: message" when the function failed
    logs: str  # the log tail, the REPORT line last


def function_spec(
    spec: str,
    stage: Stage,
    project: Project | None = None,
    names: Mapping[str, str] | None = None,
) -> tuple[str, str, str]:
    """``FUNCTION[:ALIAS|:VERSION]`` as (folder name, AWS function name, qualifier).

    With ``project``, FUNCTION may also be a template logical id; the default qualifier is the
    stage's alias. ``names`` maps a folder name to its name on the stage (the template's
    FunctionName, resolved); a folder it does not list gets the stage's prefix.
    """
    name, _, qualifier = spec.partition(":")
    if not name or (qualifier == "" and spec.endswith(":")):
        raise DeployError(
            f"{spec!r} names no function: write FUNCTION, FUNCTION:ALIAS or FUNCTION:VERSION "
            "(for example predictions:live or predictions:3)."
        )
    if project is not None:
        name = project.function(name).name
    aws_name = (names or {}).get(name) or stage.function_name(name)
    return name, aws_name, qualifier or stage.alias


def invoke_on_stage(
    clients: Clients,
    stage: Stage,
    spec: str,
    event: Any,
    project: Project | None = None,
    *,
    names: Mapping[str, str] | None = None,
) -> StageInvokeResult:
    """Invoke ``spec`` (``FUNCTION[:ALIAS|:VERSION]``) on ``stage`` with the JSON ``event``.

    ``names``: see :func:`function_spec`.
    """
    _, function_name, qualifier = function_spec(spec, stage, project, names)
    try:
        payload = json.dumps(event).encode()
    except (TypeError, ValueError) as exc:
        raise DeployError(f"the event is not JSON-serialisable ({exc}); fix the event.") from None
    try:
        response = clients.lambda_.invoke(
            FunctionName=function_name, Qualifier=qualifier, Payload=payload, LogType="Tail"
        )
    except AWS_ERRORS as exc:
        raise DeployError(
            f"stage {stage.name!r}: could not invoke {function_name}:{qualifier}: "
            f"{explain_aws_error(exc, stage)}"
        ) from exc
    raw = response["Payload"].read()
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = raw.decode("utf-8", "replace")
    failed = bool(response.get("FunctionError"))
    logs = base64.b64decode(response.get("LogResult") or b"").decode("utf-8", "replace")
    return StageInvokeResult(
        function_name=function_name,
        qualifier=qualifier,
        version=str(response.get("ExecutedVersion", qualifier)),
        ok=not failed,
        payload=body,
        error=invoke_error(raw) if failed else None,
        logs=logs,
    )
