"""The AWS clients a deploy uses, made from the standard credential chain.

Deploy code never creates clients itself: it takes a :class:`Clients`, so tests pass clients
made inside moto's mock and the local stage passes clients pointed at its embedded server.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from layerkit.errors import DeployError
from layerkit.project.stages import Stage

#: What a call through :class:`Clients` raises when AWS (or the way to it) fails.
AWS_ERRORS = (ClientError, BotoCoreError, WaiterError)

_NOT_FOUND = ("ResourceNotFoundException", "404", "NoSuchKey", "NotFound")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Clients:
    """A Lambda client and an S3 client for one region and account."""

    lambda_: Any
    s3: Any


def clients_for(stage: Stage) -> Clients:
    """Clients for a non-local ``stage`` from the standard AWS chain.

    AWS_PROFILE, AWS_REGION (or the profile's region) and AWS_ENDPOINT_URL are honoured; the
    stage's ``region`` and ``endpoint``, when set, win. Raises DeployError when no credentials
    or no region can be found, suggesting the local stage.
    """
    import boto3
    import botocore.exceptions

    # botocore reads AWS_DEFAULT_REGION; AWS_REGION (what the AWS CLI v2 and SDKs use) too.
    region = stage.region or os.environ.get("AWS_REGION") or None
    try:
        session = boto3.Session(region_name=region)
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as exc:
        raise DeployError(
            f"stage {stage.name!r}: the AWS configuration could not be read ({exc}); check "
            "AWS_PROFILE and ~/.aws/config, or try the embedded stage with --stage=local."
        ) from exc
    if credentials is None:
        raise DeployError(
            f"stage {stage.name!r} deploys to real AWS, and no AWS credentials were found "
            "(AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, SSO or "
            "an instance role). Configure credentials, or run the whole deploy against the "
            "embedded moto server with --stage=local (no credentials needed)."
        )
    if session.region_name is None:
        raise DeployError(
            f"stage {stage.name!r} has no region: set `region` for it in stages.toml, or "
            "AWS_REGION / the profile's region; or use --stage=local."
        )
    kwargs: dict[str, Any] = {}
    if stage.endpoint:
        kwargs["endpoint_url"] = stage.endpoint
    return Clients(
        lambda_=session.client("lambda", **kwargs),
        s3=session.client("s3", **kwargs),
    )


def explain_aws_error(exc: Exception, stage: Stage) -> str:
    """``exc`` and what to do about it, for the end of an error paragraph."""
    from botocore.exceptions import (
        ConnectionError as BotoConnectionError,
    )
    from botocore.exceptions import (
        NoCredentialsError,
    )

    if isinstance(exc, BotoConnectionError):
        where = stage.endpoint or os.environ.get("AWS_ENDPOINT_URL") or "the AWS endpoint"
        return (
            f"{exc}. The endpoint ({where}) cannot be reached: check `endpoint` of stage "
            f"{stage.name!r} in stages.toml (or AWS_ENDPOINT_URL), the network, proxy or VPN, "
            "and try again; the embedded stage needs none of these (--stage=local)."
        )
    if isinstance(exc, NoCredentialsError):
        return (
            f"{exc}. Configure AWS credentials (AWS_PROFILE, ~/.aws/credentials, SSO), or use "
            "the embedded stage (--stage=local)."
        )
    code = error_code(exc)
    if code in ("AccessDenied", "AccessDeniedException", "UnrecognizedClientException"):
        return (
            f"{exc}. The credentials in use may not do this: check AWS_PROFILE and the IAM "
            f"policy for stage {stage.name!r} (bucket {stage.bucket})."
        )
    return str(exc)


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError (``""`` for anything else)."""
    return (
        str(exc.response.get("Error", {}).get("Code", "")) if isinstance(exc, ClientError) else ""
    )


def not_found(exc: Exception) -> bool:
    """Whether ``exc`` is AWS saying the function, alias, layer, key or object does not exist."""
    return error_code(exc) in _NOT_FOUND


def if_found(call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T | None:
    """``call(*args, **kwargs)``, or None when AWS answers that the thing does not exist."""
    try:
        return call(*args, **kwargs)
    except ClientError as exc:
        if not_found(exc):
            return None
        raise
