"""The runtime's own SDK: the boto3 and botocore Lambda keeps in ``/var/runtime``, as data.

Every Lambda Python runtime carries boto3, botocore and their dependencies (s3transfer, jmespath,
urllib3, python-dateutil, six) in ``/var/runtime``, on ``sys.path`` AFTER ``/opt/python``: a
function that imports boto3 without a layer works, and a layer that carries its own boto3 wins.
:data:`RUNTIME_SDKS` records, per runtime, the versions AWS lists on its "Runtime-included SDK
versions" page, with the date they were read (:data:`SDK_READ_ON`); AWS moves them without
notice, so update the table when the page changes.

:func:`cached_sdk` lays those exact versions out once per target in layerkit's cache
(``<cache>/runtime-sdk/<key>/``, read-only, made in a temporary folder and renamed into place) with
an installer it is given; :func:`layerkit.build.sdk.runtime_sdk_dir` gives it the build's uv
installer (the runtime sits below the build and does not import it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from layerkit.runtime import layercache
from layerkit.runtime.target import RUNTIMES, Target

#: Where the versions come from (the section "Runtime-included SDK versions").
SDK_SOURCE = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html#python-sdk-included"

#: When :data:`RUNTIME_SDKS` was read. The stored copy of AWS's page that layerkit's authors
#: could consult on that day ends before its table, so the versions below are the ones that
#: table listed in the second half of 2025 as remembered, not re-read: check them against the
#: page (or ``boto3.__version__`` printed by a deployed function) and update them here.
SDK_READ_ON = "2026-12-07"


@dataclass(frozen=True)
class RuntimeSdk:
    """The SDK one runtime ships: boto3 and botocore versions (the rest follows from them)."""

    boto3: str
    botocore: str

    @property
    def requirements(self) -> tuple[str, ...]:
        """The requirement lines that install it: exact pins (dependencies resolved per target)."""
        return (f"boto3=={self.boto3}", f"botocore=={self.botocore}")


#: The SDK each Lambda Python runtime ships in /var/runtime (see :data:`SDK_READ_ON`).
RUNTIME_SDKS: dict[str, RuntimeSdk] = {
    "python3.9": RuntimeSdk("1.40.4", "1.40.4"),
    "python3.10": RuntimeSdk("1.40.4", "1.40.4"),
    "python3.11": RuntimeSdk("1.40.4", "1.40.4"),
    "python3.12": RuntimeSdk("1.40.4", "1.40.4"),
    "python3.13": RuntimeSdk("1.40.4", "1.40.4"),
    "python3.14": RuntimeSdk("1.40.4", "1.40.4"),
}

#: The top-level modules /var/runtime provides: boto3, botocore and their dependencies.
SDK_MODULES: frozenset[str] = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six"}
)

#: ``install(requirements, target, dest)``: installs the requirement lines into ``dest``.
Installer = Callable[[Sequence[str], Target, Path], None]


def runtime_sdk(target: Target) -> RuntimeSdk:
    """The SDK ``target``'s runtime ships (every runtime of :data:`RUNTIMES` has one)."""
    return RUNTIME_SDKS[target.runtime]


def sdk_key(target: Target) -> str:
    """The cache key of ``target``'s SDK folder: target and versions (a new version, a new one)."""
    sdk = runtime_sdk(target)
    text = f"{target.key}|{target.python_full_version}|{' '.join(sdk.requirements)}"
    return f"{target.key}-boto3-{sdk.boto3}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def cached_sdk(target: Target, cache: Path, install: Installer) -> Path:
    """``target``'s SDK folder in ``cache``, installed by ``install`` the first time only.

    The folder is made in a temporary folder and renamed into place when complete (concurrent
    runs are safe; an interrupted install leaves nothing under the final name), then made
    read-only like ``/var/runtime``.
    """
    requirements = runtime_sdk(target).requirements
    return layercache.cached_tree(
        Path(cache) / "runtime-sdk", sdk_key(target), lambda tmp: install(requirements, target, tmp)
    )


assert set(RUNTIME_SDKS) == set(RUNTIMES), "every runtime needs its SDK versions"
