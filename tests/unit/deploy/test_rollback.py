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
