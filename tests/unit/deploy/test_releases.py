"""Drift: aliases that are not where the stage's newest release put them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from layerkit.deploy.deployer import deploy
from layerkit.deploy.releases import DriftedFunction, drift_of, list_releases, read_drift
from layerkit.deploy.rollback import rollback
from layerkit.errors import DeployError

from .helpers import STAGE, Clock, desired, fake_clients
from .test_rollback import lifecycle, two_releases


def test_no_drift_when_every_alias_is_where_the_release_put_it(tmp_path: Path):
    clients = two_releases(tmp_path, Clock())
    releases = list_releases(clients.s3, STAGE)
    assert read_drift(clients.lambda_, STAGE, releases) is None
    assert read_drift(clients.lambda_, STAGE, ()) is None


def test_drift_names_each_moved_alias_and_both_ways_out(tmp_path: Path):
    clients = two_releases(tmp_path, Clock())
    releases = list_releases(clients.s3, STAGE)
    clients.lambda_.aliases[("dev-one", "live")] = "1"  # a rollback killed after one move
    drift = read_drift(clients.lambda_, STAGE, releases)
    assert drift is not None
    assert drift.functions == (DriftedFunction("dev-one", "1", "2"),)
    text = drift.describe()
    assert f"differs from its last release {releases[-1].release_id}" in text
    assert "dev-one is on 1, the release says 2" in text
    assert "`inv deploy --stage=dev`" in text
    assert f"`inv rollback --stage=dev` to go back to release {releases[-1].release_id}" in text


def test_drift_of_is_pure_and_counts_a_missing_alias(tmp_path: Path):
    clients = two_releases(tmp_path, Clock())
    live = list_releases(clients.s3, STAGE)[-1]
    drift = drift_of(STAGE, live, {"dev-one": None, "dev-two": "1"})
    assert drift is not None
    assert drift.functions == (DriftedFunction("dev-one", None, "2"),)
    assert "no version (no alias)" in drift.describe()
    extra = drift_of(STAGE, live, {"dev-one": "2", "dev-two": "1", "dev-three": "4"})
    assert extra is not None
    assert extra.functions == (DriftedFunction("dev-three", "4", None),)
    assert "no release names it" in extra.describe()


def test_rollback_after_drift_goes_back_to_the_live_release(tmp_path: Path):
    clock = Clock()
    clients = fake_clients()
    deploy(desired(tmp_path, functions={"one": "1"}), clients, STAGE, owner="t", now=clock,
           today=dt.date(2026, 11, 1), lifecycle=lifecycle)  # fmt: skip
    only = list_releases(clients.s3, STAGE)[-1]
    with pytest.raises(DeployError, match="nothing to roll back to"):
        rollback(clients, STAGE, owner="t", now=clock)
    clients.lambda_.aliases[("dev-one", "live")] = "7"  # a deploy killed between alias moves
    outcome = rollback(clients, STAGE, owner="t", now=clock)
    assert outcome.target.release_id == only.release_id
    assert clients.lambda_.aliases[("dev-one", "live")] == "1"
    assert read_drift(clients.lambda_, STAGE, list_releases(clients.s3, STAGE)) is None


def test_a_refused_rollback_and_a_no_op_deploy_write_nothing(tmp_path: Path):
    clock = Clock()
    clients = fake_clients()
    build = desired(tmp_path, functions={"one": "1"})
    deploy(build, clients, STAGE, owner="t", now=clock, today=dt.date(2026, 11, 1),
           lifecycle=lifecycle)  # fmt: skip
    clients.s3.calls.clear()
    with pytest.raises(DeployError, match="nothing to roll back to"):
        rollback(clients, STAGE, owner="t", now=clock)
    first = list_releases(clients.s3, STAGE)[0]
    assert rollback(clients, STAGE, first.release_id, owner="t", now=clock).release is None
    outcome = deploy(build, clients, STAGE, owner="t", now=clock, today=dt.date(2026, 11, 1),
                     lifecycle=lifecycle)  # fmt: skip
    assert outcome.steps == ()
    assert [c for c in clients.s3.calls if c.startswith("s3.PutObject")] == []  # no lock taken
