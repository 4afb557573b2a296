"""moto-backed fixtures for deploy tests: a stage, clients made inside the mock, tiny zips.

The scenario used across the deploy tests has three layers (core, ml, utils) and up to three
functions (one: core+utils, two: core+ml+utils, three: core). Zips are a few hundred bytes made
in tmp_path; their content (and so their sha256) is chosen by a version string.

Two things make the local-stage tests cheap without changing what they run (one pytest worker
at a time; under pytest-xdist each worker has its own):

- one moto server per worker (:func:`reused_local_stage_server`): every ``local_stage()`` starts
  with moto's reset and replays its saved state, exactly as with a new server, but skips
  starting a server thread and the half second ``stop()`` waits for it;
- ``python -c`` children forked from a server that has imported layerkit, moto and the test
  modules already (:func:`python_child`, :mod:`tests.aws.forkserver`).
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import subprocess
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import moto.server
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from layerkit.deploy.clients import Clients
from layerkit.deploy.deployer import deploy
from layerkit.deploy.planner import DesiredState, FunctionArtifact, LayerArtifact
from layerkit.project.stages import Stage

from .forkserver import ForkServer

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE_NAME = "layerkit-test-lambda"

LAYERS: dict[str, tuple[str, ...]] = {"core": (), "ml": ("core",), "utils": ()}
FUNCTIONS: dict[str, tuple[str, ...]] = {
    "one": ("core", "utils"),
    "two": ("core", "ml", "utils"),
    "three": ("core",),
}

#: The day every deploy test runs on, and python3.9's lifecycle as data: deprecated, not yet
#: blocked. The tests must not depend on the calendar or on the dates in cfn-lint's table
#: (python3.9's create block moves when AWS extends it; the refusal is tested in the unit tests).
TODAY = dt.date(2026, 11, 1)
LIFECYCLE_TABLE = {
    "python3.9": {
        "deprecated": "2025-12-15",
        "create-block": "2027-02-01",
        "update-block": "2027-03-03",
        "successor": "python3.14",
    }
}


def pinned_lifecycle(runtime: str, today: dt.date) -> Any:
    """Runtime lifecycle from :data:`LIFECYCLE_TABLE` instead of the installed cfn-lint's."""
    from layerkit.check.template import runtime_lifecycle

    return runtime_lifecycle(runtime, today, LIFECYCLE_TABLE)


STAGE = Stage(
    name="test",
    bucket="layerkit-test-artifacts",
    alias="live",
    role=f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}",
    prefix="test-",
    region=REGION,
    health_check=True,
)


def tiny_zip(path: Path, files: Mapping[str, str]) -> Path:
    """A small deterministic zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            zf.writestr(info, files[name])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return path


@dataclass
class Builder:
    """Makes DesiredState objects from version strings, like a build would."""

    root: Path

    def desired(
        self,
        layers: Mapping[str, str] | None = None,
        functions: Mapping[str, str] | None = None,
        *,
        only: tuple[str, ...] = ("one", "two"),
        memory: Mapping[str, int] | None = None,
    ) -> DesiredState:
        import hashlib

        layers = {**dict.fromkeys(LAYERS, "1"), **(layers or {})}
        functions = {**dict.fromkeys(FUNCTIONS, "1"), **(functions or {})}
        layer_artifacts = []
        for name in LAYERS:
            path = tiny_zip(
                self.root / f"v{layers[name]}" / "layers" / f"{name}.zip",
                {f"python/{name}/__init__.py": f"VERSION = {layers[name]!r}\n"},
            )
            data = path.read_bytes()
            layer_artifacts.append(
                LayerArtifact(
                    name=name,
                    zip_path=path,
                    sha256=hashlib.sha256(data).hexdigest(),
                    zipped_bytes=len(data),
                    compatible_runtimes=("python3.9",),
                    compatible_architectures=("x86_64",),
                    description=f"{name} layer",
                )
            )
        fn_artifacts = []
        for name in only:
            code = f"def lambda_handler(event, context):\n    return {functions[name]!r}\n"
            path = tiny_zip(
                self.root / f"v{functions[name]}" / "functions" / f"{name}.zip",
                {"app.py": code},
            )
            data = path.read_bytes()
            fn_artifacts.append(
                FunctionArtifact(
                    name=name,
                    logical_id=name.title(),
                    zip_path=path,
                    sha256=hashlib.sha256(data).hexdigest(),
                    handler="app.lambda_handler",
                    runtime="python3.9",
                    architecture="x86_64",
                    memory_size=(memory or {}).get(name, 256),
                    timeout=30,
                    layers=FUNCTIONS[name],
                    environment={"STAGE": "test"},
                    zipped_bytes=len(data),
                )
            )
        return DesiredState(tuple(layer_artifacts), tuple(fn_artifacts), commit="abc1234")


# ------------------------------------------------------------------------- one server per worker


#: The server ``local_stage()`` asks for; others (none today) get a server of their own.
_STANDARD = {"ip_address": "127.0.0.1", "port": 0}


class _ServerPool:
    """Keeps one started moto server between local stages (a second, nested one is real)."""

    def __init__(self, real: type[moto.server.ThreadedMotoServer]) -> None:
        self._real = real
        self._idle: moto.server.ThreadedMotoServer | None = None
        self._lock = threading.Lock()

    def acquire(self, kwargs: dict[str, Any]) -> moto.server.ThreadedMotoServer:
        """The idle server if there is one and ``kwargs`` are the standard ones, else a new one."""
        if kwargs == _STANDARD:
            with self._lock:
                shared, self._idle = self._idle, None
            if shared is not None:
                return shared
        server = self._real(**kwargs, verbose=False)
        server.start()
        return server

    def release(self, server: moto.server.ThreadedMotoServer, kwargs: dict[str, Any]) -> None:
        """Keep ``server`` for the next local stage, or stop it if one is kept already."""
        if kwargs == _STANDARD:
            with self._lock:
                if self._idle is None:
                    self._idle = server
                    return
        server.stop()

    def close(self) -> None:
        """Stop the kept server."""
        with self._lock:
            idle, self._idle = self._idle, None
        if idle is not None:
            idle.stop()


class _PooledServer:
    """What ``local_stage`` gets for ``moto.server.ThreadedMotoServer``: the pool's server."""

    pool: _ServerPool

    def __init__(self, **kwargs: Any) -> None:
        kwargs.pop("verbose", None)
        self._kwargs = kwargs
        self._server: moto.server.ThreadedMotoServer | None = None

    def start(self) -> None:
        self._server = self.pool.acquire(self._kwargs)

    def get_host_and_port(self) -> tuple[str, int]:
        assert self._server is not None, "start() first"
        return self._server.get_host_and_port()

    def stop(self) -> None:
        if self._server is not None:
            self.pool.release(self._server, self._kwargs)
            self._server = None


@pytest.fixture(scope="session", autouse=True)
def reused_local_stage_server() -> Iterator[None]:
    """One moto server per worker for every ``local_stage()`` (it resets moto when it starts)."""
    pool = _ServerPool(moto.server.ThreadedMotoServer)
    pooled = type("ThreadedMotoServer", (_PooledServer,), {"pool": pool})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(moto.server, "ThreadedMotoServer", pooled)
        yield
    pool.close()


# ------------------------------------------------------------------------- forked children

_fork_server: ForkServer | None = None
_fork_lock = threading.Lock()


def python_child(
    argv: list[str], *, cwd: Path | str | None = None
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd)`` for
    ``argv = [sys.executable, "-c", code, *args]``, the child forked from a process that has
    imported layerkit, moto and the test modules already; its environment is this process's."""
    global _fork_server
    with _fork_lock:
        if _fork_server is None:
            _fork_server = ForkServer(
                REPO_ROOT, Path(tempfile.mkdtemp(prefix="layerkit-children-"))
            )
        server = _fork_server
    return server.run(argv, cwd=cwd)


@pytest.fixture(scope="session", autouse=True)
def _stop_the_fork_server() -> Iterator[None]:
    yield
    global _fork_server
    with _fork_lock:
        server, _fork_server = _fork_server, None
    if server is not None:
        server.close()


@pytest.fixture
def builder(tmp_path: Path) -> Builder:
    return Builder(tmp_path / "build")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region, so nothing can reach real AWS."""
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)


def _clients() -> Clients:
    return Clients(
        lambda_=boto3.client("lambda", region_name=REGION),
        s3=boto3.client("s3", region_name=REGION),
    )


@pytest.fixture
def clients(aws_env: None) -> Iterator[Clients]:
    """Clients inside moto's mock, with the stage's bucket and execution role created."""
    with mock_aws(config={"lambda": {"use_docker": False}}):
        made = _clients()
        made.s3.create_bucket(Bucket=STAGE.bucket)
        boto3.client("iam", region_name=REGION).create_role(
            RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
        )
        yield made


class Clock:
    """A deterministic, strictly increasing clock for release ids."""

    def __init__(self) -> None:
        self._ticks = itertools.count()

    def __call__(self) -> dt.datetime:
        return dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.timezone.utc) + dt.timedelta(
            seconds=next(self._ticks)
        )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def run_deploy(clients: Clients, clock: Clock) -> Callable[..., Any]:
    """deploy() against the mock with a fixed clock and no waiter delays."""

    def run(desired: DesiredState, **kwargs: Any) -> Any:
        kwargs.setdefault("now", clock)
        kwargs.setdefault("today", TODAY)
        kwargs.setdefault("lifecycle", pinned_lifecycle)
        kwargs.setdefault("owner", "pytest")
        return deploy(desired, clients, kwargs.pop("stage", STAGE), **kwargs)

    return run


# ------------------------------------------------------------------------- observing AWS state


def layer_versions(clients: Clients) -> dict[str, list[int]]:
    """Every published version number of every scenario layer."""
    found = {}
    for name in LAYERS:
        versions = clients.lambda_.list_layer_versions(LayerName=STAGE.layer_name(name))
        found[name] = sorted(v["Version"] for v in versions["LayerVersions"])
    return found


_VOLATILE = {"LastModified", "RevisionId", "ResponseMetadata", "LastUpdateStatusReasonCode"}


def stage_state(clients: Clients) -> dict[str, Any]:
    """What the stage runs, for before/after comparisons: aliases, $LATEST, layers, releases."""
    lam = clients.lambda_
    functions: dict[str, Any] = {}
    for fn in lam.list_functions()["Functions"]:
        name = fn["FunctionName"]
        latest = lam.get_function_configuration(FunctionName=name)
        aliases = {
            a["Name"]: a["FunctionVersion"] for a in lam.list_aliases(FunctionName=name)["Aliases"]
        }
        functions[name] = {
            "latest": {k: v for k, v in latest.items() if k not in _VOLATILE},
            "aliases": aliases,
        }
    listed = clients.s3.list_objects_v2(Bucket=STAGE.bucket, Prefix="releases/")
    releases = {
        o["Key"]: clients.s3.get_object(Bucket=STAGE.bucket, Key=o["Key"])["Body"].read()
        for o in listed.get("Contents", ())
    }
    locks = clients.s3.list_objects_v2(Bucket=STAGE.bucket, Prefix="locks/").get("KeyCount", 0)
    return {
        "functions": functions,
        "layers": layer_versions(clients),
        "releases": releases,
        "locks": locks,
    }


# ------------------------------------------------------------------------- fault injection


def fail_call(
    clients: Clients, service: str, operation: str, occurrence: int = 1, times: int = 1
) -> list[int]:
    """Make the ``occurrence``-th call of ``service.operation`` (and ``times``-1 more) fail.

    A botocore ``before-call`` handler returns an error response instead of calling moto;
    botocore then raises the typed ClientError, exactly as for a real AWS error. Returns a list
    that records the failed call numbers.
    """
    client = clients.s3 if service == "s3" else clients.lambda_
    seen = itertools.count(1)
    failed: list[int] = []

    def handler(**_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        n = next(seen)
        if occurrence <= n < occurrence + times:
            failed.append(n)
            response = AWSResponse("https://fault.invalid", 500, {}, None)
            return response, {
                "Error": {"Code": "InjectedFault", "Message": f"injected {operation} #{n}"},
                "ResponseMetadata": {"HTTPStatusCode": 500},
            }
        return None

    client.meta.events.register(f"before-call.{service}.{operation}", handler)
    return failed


def record_calls(clients: Clients) -> list[tuple[str, str]]:
    """Record every AWS call made through ``clients`` as (service, operation)."""
    calls: list[tuple[str, str]] = []

    def handler(event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".")
        calls.append((service, operation))

    clients.lambda_.meta.events.register("before-call.lambda", handler)
    clients.s3.meta.events.register("before-call.s3", handler)
    return calls
