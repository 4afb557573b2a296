"""Rollback against in-memory Lambda and S3."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from layerkit.deploy.deployer import deploy
from layerkit.deploy.models import ReleaseKind
from layerkit.deploy.releases import list_releases
from layerkit.deploy.rollback import rollback
from layerkit.deploy.stagelock import acquire
from layerkit.errors import DeployError

from .fakes import error_payload
from .helpers import STAGE, Clock, desired, fake_clients


def lifecycle(runtime: str, today: dt.date):
    from layerkit.check.template import runtime_lifecycle

    return runtime_lifecycle(runtime, today, {})


def two_releases(tmp_path: Path, clock: Clock):
    clients = fake_clients()
    for version in ("1", "2"):
        deploy(desired(tmp_path, functions={"one": version}), clients, STAGE, owner="t",
               now=clock, today=dt.date(2026, 11, 1), lifecycle=lifecycle)  # fmt: skip
    return clients


def test_rollback_moves_aliases_and_latest_back_and_records_it(tmp_path: Path):
    clock = Clock()
    clients = two_releases(tmp_path, clock)
    first = list_releases(clients.s3, STAGE)[0]
    outcome = rollback(clients, STAGE, owner="t", now=clock)
    lam = clients.lambda_
    assert outcome.target == first
    assert lam.aliases[("dev-one", "live")] == "1"
    assert (
        lam.functions["dev-one"]["$LATEST"]["CodeSha256"]
        == lam.functions["dev-one"]["1"]["CodeSha256"]
    )
    assert outcome.release.kind is ReleaseKind.ROLLBACK
    assert outcome.release.rolled_back_to == first.release_id
    assert clients.s3.keys("locks/") == []
    again = rollback(clients, STAGE, first.release_id, owner="t", now=clock)
    assert again.release is None  # already running it: nothing recorded


def test_a_rollback_whose_versions_fail_their_check_changes_nothing(tmp_path: Path):
    clock = Clock()
    clients = two_releases(tmp_path, clock)
    lam = clients.lambda_
    lam.handlers["dev-one"] = lambda cfg, p: (False, error_payload("KeyError", "'model'"))
    before, releases = lam.state(), clients.s3.keys("releases/")
    with pytest.raises(
        DeployError, match=r"refused, nothing was changed: health check of dev-one:1"
    ):
        rollback(clients, STAGE, owner="t", now=clock)
    assert lam.state() == before
    assert clients.s3.keys("releases/") == releases
    assert clients.s3.keys("locks/") == []


def test_rollback_refused_while_the_stage_is_locked(tmp_path: Path):
    clock = Clock()
    clients = two_releases(tmp_path, clock)
    acquire(clients.s3, STAGE, "someone else", "deploy", clock())
    with pytest.raises(DeployError, match="locked by someone else"):
        rollback(clients, STAGE, owner="t", now=clock)
    assert clients.lambda_.aliases[("dev-one", "live")] == "2"


def test_a_local_rollback_reports_the_health_checks_this_host_cannot_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import dataclasses

    from layerkit.runtime import host

    def support(target, **_):
        if target.architecture == "x86_64":
            return host.HostSupport(target, "x86_64", host.Execution.NATIVE)
        return host.HostSupport(target, "x86_64", host.Execution.STATIC_ONLY, None, "no qemu")

    monkeypatch.setattr(host, "host_support", support)
    local = dataclasses.replace(STAGE, local=True)
    clock, clients = Clock(), fake_clients()
    for version in ("1", "2"):
        state = desired(tmp_path, functions={"one": version})
        arm = tuple(
            dataclasses.replace(f, architecture="arm64") if f.name == "two" else f
            for f in state.functions
        )
        deploy(dataclasses.replace(state, functions=arm), clients, local, owner="t",
               now=clock, today=dt.date(2026, 11, 1), lifecycle=lifecycle)  # fmt: skip
    invoked = []
    clients.lambda_.handlers["dev-two"] = lambda cfg, p: invoked.append(p) or (True, b"{}")
    outcome = rollback(clients, local, owner="t", now=clock)
    assert invoked == []  # aarch64 code is never run on this x86_64 host
    assert outcome.notes == (
        "health check of dev-two:1 not run: this x86_64 host cannot run aarch64 code (no "
        "qemu); the deploy that published it checked its Handler and ELF files statically",
    )
    assert clients.lambda_.aliases[("dev-one", "live")] == "1"
