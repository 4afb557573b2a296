"""Invoke on the local stage runs the deployed code: the stored zips in layerkit's sandbox.

moto without Docker answers every ``Invoke`` with a canned success, so a health check against it
could never fail. The local stage therefore answers ``Invoke`` itself: :func:`intercept_invokes`
registers a botocore ``before-send`` handler on the local stage's Lambda client, and
:func:`invoke_deployed` runs the version asked for — its code zip and its layer versions, taken
from the local stage's content-addressed store by their sha256, in the order the version lists
them — in :mod:`layerkit.runtime.sandbox` with the target runtime's interpreter and the
version's Handler, MemorySize, Timeout and environment. The answer has Lambda's shape:
``FunctionError: Unhandled`` and ``{"errorType", "errorMessage", ...}`` for a handler that
fails, the REPORT line in the ``Tail`` log. Everything above the client (the deploy's health
check, rollback, ``invoke`` on a stage) cannot tell it from AWS.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from layerkit.build.sdk import runtime_sdk_dir
from layerkit.deploy.models import hex_from_b64
from layerkit.digest import sha256_file
from layerkit.errors import DeployError
from layerkit.runtime.host import foreign_interpreter_variable, host_support
from layerkit.runtime.sandbox import (
    FunctionZip,
    InvokeResult,
    PayloadTooLargeError,
    invoke_zips,
)
from layerkit.runtime.target import Target, find_interpreter

#: Lambda returns at most the last 4 KB of the log with ``LogType=Tail``.
LOG_TAIL_BYTES = 4096


class ArtifactStore:
    """Zips stored once, named by their sha256: ``<root>/<sha256>.zip``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._verified: set[str] = set()  # hashed and whole since this process stored or read it
        #: the sha256 a damaged zip's bytes have -> the name it is stored under (a server that
        #: was given the damaged bytes reports the first)
        self.damaged: dict[str, str] = {}

    def path(self, sha256: str) -> Path:
        """Where the zip with this (hex) sha256 is kept."""
        return self.root / f"{sha256}.zip"

    def has(self, sha256: str) -> bool:
        """Whether the zip is stored."""
        return self.path(sha256).is_file()

    def verify(self, sha256: str) -> bool:
        """Whether the stored zip's bytes hash to its name (hashed once per process)."""
        if sha256 in self._verified:
            return True
        try:
            actual = sha256_file(self.path(sha256))
        except OSError:
            return False
        if actual != sha256:
            self.damaged[actual] = sha256
            return False
        self._verified.add(sha256)
        return True

    def put(self, sha256: str, body: Any) -> Path:
        """Store ``body`` (bytes or a readable file, rewound afterwards) as ``sha256``.

        Written to a temporary file, ``fsync``'d and renamed, so a killed run never leaves half
        a zip under a sha256 name, and the log never names a zip the disk has not kept; a body
        whose hash differs is refused. A stored zip whose bytes are damaged is replaced. A write
        the OS refuses (a full disk) removes the temporary file and raises one paragraph naming
        the folder and the fix.
        """
        target = self.path(sha256)
        if target.is_file() and self.verify(sha256):
            return target
        if isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        else:
            start = body.tell()
            data = body.read()
            body.seek(start)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise DeployError(
                f"the upload to artifacts/{sha256}.zip holds other bytes than its name says; "
                "only layerkit's content-addressed uploads belong under artifacts/."
            )
        tmp = target.with_name(f".{target.name}.{id(data)}.tmp")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            _write_synced(tmp, data)
            tmp.replace(target)
            _sync_folder(self.root)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise store_write_failed(self.root, target, exc) from None
        self._verified.add(sha256)
        return target


def _write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file and ``fsync`` it (the edge a full disk fails at)."""
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _sync_folder(folder: Path) -> None:
    """``fsync`` a folder, so a rename in it lasts (where the OS allows opening one)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - a platform without folder fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - a file system that cannot sync folders
        pass
    finally:
        os.close(fd)


def write_fix(folder: Path, exc: OSError) -> str:
    """What to do about a write the OS refused in ``folder`` (a full disk, a read-only one)."""
    if exc.errno == errno.ENOSPC:
        return f"free space on the disk that holds {folder} (`df -h {folder}` shows it)"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"make {folder} writable (or run the command from a writable checkout)"
    return f"fix what stops writes to {folder}"


def store_write_failed(folder: Path, target: Path, exc: OSError) -> DeployError:
    """One paragraph for a zip the local stage's store could not keep."""
    fix = write_fix(folder, exc)
    return DeployError(
        f"the local stage could not store {target.name} in {folder} "
        f"({exc.strerror or exc}); nothing half-written was left there. "
        f"{fix[0].upper()}{fix[1:]}, then deploy again."
    )


def stored_zip(store: ArtifactStore, sha: str, what: str) -> Path:
    """The stored zip ``sha`` for ``what``, its bytes verified; DeployError naming it if not."""
    if not store.has(sha) and sha in store.damaged:  # the server hashed the damaged bytes
        sha = store.damaged[sha]
    if not store.has(sha):
        raise DeployError(
            f"the local stage has no stored zip for {what} (sha256 {sha[:12]}…, expected at "
            f"{store.path(sha)}); it was deployed by another tool or the store was deleted. "
            "Deploy again (`inv deploy --stage=local`)."
        )
    if not store.verify(sha):
        raise DeployError(
            f"the local stage's stored zip for {what} ({store.path(sha)}) is damaged: its bytes "
            f"do not hash to sha256 {sha[:12]}…. Put the right zip back under that name (the "
            "build of that commit makes the same bytes), or delete the local stage's folder "
            "and deploy again."
        )
    return store.path(sha)


@dataclass(frozen=True)
class DeployedVersion:
    """What one function version runs, as the local stage stores it."""

    function_name: str
    version: str
    handler: str
    target: Target
    memory_size: int
    timeout: int
    environment: dict[str, str]
    code: Path
    layers: tuple[Path, ...]
    ephemeral_storage_mb: int = 512  # EphemeralStorage.Size: the size of /tmp


def _stored(store: ArtifactStore, sha_b64: str, what: str) -> Path:
    return stored_zip(store, hex_from_b64(sha_b64), what)


def deployed_version(
    lam: Any, store: ArtifactStore, function_name: str, qualifier: str | None
) -> DeployedVersion:
    """Read a version's configuration from the local Lambda and find its zips in ``store``."""
    kwargs = {"Qualifier": qualifier} if qualifier else {}
    config = lam.get_function_configuration(FunctionName=function_name, **kwargs)
    version = str(config.get("Version", "$LATEST"))
    where = f"{function_name}:{version}"
    layers = []
    for layer in config.get("Layers") or ():
        name, number = layer["Arn"].rsplit(":", 1)  # moto 5.2 fails GetLayerVersionByArn
        found = lam.get_layer_version(LayerName=name, VersionNumber=int(number))
        layers.append(_stored(store, found["Content"]["CodeSha256"], f"layer {layer['Arn']}"))
    return DeployedVersion(
        function_name=function_name,
        version=version,
        handler=config["Handler"],
        target=Target(config["Runtime"], (config.get("Architectures") or ["x86_64"])[0]),
        memory_size=int(config.get("MemorySize", 128)),
        timeout=int(config.get("Timeout", 3)),
        environment=dict((config.get("Environment") or {}).get("Variables") or {}),
        code=_stored(store, config["CodeSha256"], f"the code of {where}"),
        layers=tuple(layers),
        ephemeral_storage_mb=int((config.get("EphemeralStorage") or {}).get("Size") or 512),
    )


class HostCannotRunError(DeployError):
    """The local stage cannot run a version: this host cannot run its machine code (arm64)."""


def invoke_deployed(
    lam: Any,
    store: ArtifactStore,
    function_name: str,
    qualifier: str | None,
    event: Any,
    *,
    cache: Path,
    interpreter: Callable[[Target], Path] = find_interpreter,
    region: str = "us-east-1",
) -> tuple[DeployedVersion, InvokeResult]:
    """Run ``function_name`` at ``qualifier`` (alias, version, or None: ``$LATEST``) for real.

    The version's zips come from ``store``; extracted layers are shared, read-only, through
    ``cache`` (:mod:`layerkit.runtime.layercache`). ``lam`` is a Lambda client of the local stage
    that does not itself intercept invokes.
    """
    deployed = deployed_version(lam, store, function_name, qualifier)
    support = host_support(deployed.target)
    if not support.runs_code:
        raise HostCannotRunError(
            f"cannot run {function_name}:{deployed.version} on the local stage: it runs on "
            f"{deployed.target.description}, and {support.cannot_run}. Its deploy checked its "
            "Handler and ELF files statically; invoke it on a stage in AWS, or enable qemu-user "
            f"and name an {deployed.target.machine} python{deployed.target.python_version_text} in "
            f"{foreign_interpreter_variable(deployed.target)}."
        )
    env = {**deployed.environment, "AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    function = FunctionZip(
        deployed.code,
        deployed.handler,
        deployed.target,
        deployed.memory_size,
        deployed.timeout,
        ephemeral_storage_mb=deployed.ephemeral_storage_mb,
    )
    result = invoke_zips(
        deployed.layers,
        function,
        event,
        interpreter(deployed.target),
        cache,
        function_name=function_name,
        env=env,
        version=deployed.version,
        runtime_sdk=runtime_sdk_dir(deployed.target, cache),
    )
    return deployed, result


class _RawBody(BytesIO):
    def stream(self, **_: Any) -> Any:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


def _invocation_target(url: str) -> tuple[str, str | None]:
    """(function name, qualifier) of an Invoke request's URL."""
    parts = urlsplit(url)
    name = unquote(parts.path.split("/functions/", 1)[1].rsplit("/invocations", 1)[0])
    qualifier = (parse_qs(parts.query).get("Qualifier") or [None])[0]
    qualified = name.count(":") == (7 if name.startswith("arn:") else 1)
    if qualifier is None and qualified:  # "name:version" or a qualified ARN
        name, qualifier = name.rsplit(":", 1)
    return name, qualifier


def _response(url: str, deployed: DeployedVersion, result: InvokeResult) -> Any:
    from botocore.awsrequest import AWSResponse

    payload = json.dumps(result.response).encode()
    log = f"{result.logs}{result.report_line()}\n".encode()[-LOG_TAIL_BYTES:]
    headers = {
        "Content-Type": "application/json",
        "Content-Length": str(len(payload)),
        "X-Amz-Executed-Version": deployed.version,
        "X-Amz-Log-Result": base64.b64encode(log).decode("ascii"),
    }
    if not result.ok:
        headers["X-Amz-Function-Error"] = "Unhandled"
    return AWSResponse(url, 200, headers, _RawBody(payload))


def _error_response(url: str, status: int, code: str, message: str) -> Any:
    from botocore.awsrequest import AWSResponse

    body = json.dumps({"Type": "User", "message": message}).encode()
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code}
    return AWSResponse(url, status, headers, _RawBody(body))


def intercept_invokes(
    lam: Any,
    inspector: Any,
    store: ArtifactStore,
    cache: Path,
    interpreter: Callable[[Target], Path] = find_interpreter,
) -> None:
    """Make ``lam``'s ``Invoke`` run the deployed code (see :func:`invoke_deployed`).

    ``inspector`` is a second client of the same endpoint, used to read configurations (so a
    test's handlers on ``lam`` count only the calls the caller made).
    """
    region = lam.meta.region_name or "us-east-1"

    def handler(request: Any, **_: Any) -> Any:
        name, qualifier = _invocation_target(request.url)
        body = request.body or b"{}"
        raw = body if isinstance(body, bytes) else body.read()
        try:
            event = json.loads(raw or b"{}")
        except ValueError:
            return _error_response(
                request.url, 400, "InvalidRequestContentException", "Could not parse payload"
            )
        try:
            deployed, result = invoke_deployed(
                inspector,
                store,
                name,
                qualifier,
                event,
                cache=cache,
                interpreter=interpreter,
                region=region,
            )
        except PayloadTooLargeError as exc:  # Lambda refuses it before running anything
            return _error_response(request.url, 413, exc.error_type, str(exc))
        except HostCannotRunError as exc:  # a client error: retrying cannot help
            return _error_response(request.url, 400, "HostCannotRunException", str(exc))
        except DeployError as exc:
            return _error_response(request.url, 502, "ResourceNotReadyException", str(exc))
        except Exception as exc:  # a ClientError from the inspector: pass AWS's answer on
            response = getattr(exc, "response", None)
            if not isinstance(response, dict):
                raise
            status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 404))
            error = response.get("Error", {})
            return _error_response(
                request.url, status, str(error.get("Code")), str(error.get("Message"))
            )
        return _response(request.url, deployed, result)

    lam.meta.events.register("before-send.lambda.Invoke", handler)
