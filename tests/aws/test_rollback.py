"""Rollback to recorded releases: aliases and $LATEST back, history kept, repeated rollbacks."""

from __future__ import annotations

import pytest

from layerkit.deploy.releases import list_release_ids, list_releases
from layerkit.deploy.rollback import rollback
from layerkit.deploy.stagelock import acquire
from layerkit.errors import DeployError

from .conftest import STAGE, stage_state

pytestmark = pytest.mark.aws


@pytest.fixture
def three_releases(clients, builder, run_deploy):
    """Releases 1, 2 (core changed), 3 (one's code changed); the stage state after each."""
    states = []
    for desired in (
        builder.desired(),
        builder.desired(layers={"core": "2"}),
        builder.desired(layers={"core": "2"}, functions={"one": "2"}),
    ):
        run_deploy(desired)
        states.append(stage_state(clients)["functions"])
    return list_release_ids(clients.s3, STAGE), states


def test_rollback_without_id_goes_to_the_previous_release(clients, clock, three_releases):
    ids, states = three_releases

    outcome = rollback(clients, STAGE, owner="pytest", now=clock)

    assert outcome.target.release_id == ids[1]
    assert stage_state(clients)["functions"] == states[1]  # aliases AND $LATEST
    live = clients.lambda_.get_function_configuration(FunctionName="test-one", Qualifier="live")
    assert live["Version"] == "2"
    history = list_releases(clients.s3, STAGE)
    assert [r.release_id for r in history[:3]] == list(ids)  # never rewritten
    assert history[-1].kind == "rollback"
    assert history[-1].rolled_back_to == ids[1]


def test_repeated_rollbacks_walk_back_instead_of_toggling(clients, clock, three_releases):
    ids, states = three_releases
    rollback(clients, STAGE, owner="pytest", now=clock)
    outcome = rollback(clients, STAGE, owner="pytest", now=clock)
    assert outcome.target.release_id == ids[0]
    assert stage_state(clients)["functions"] == states[0]
    with pytest.raises(DeployError, match="oldest deploy"):
        rollback(clients, STAGE, owner="pytest", now=clock)


def test_rollback_to_a_named_release_then_deploy_again(
    clients, clock, builder, run_deploy, three_releases
):
    ids, states = three_releases
    rollback(clients, STAGE, ids[0], owner="pytest", now=clock)
    assert stage_state(clients)["functions"] == states[0]

    # $LATEST was restored too, so the next deploy of the newest build plans real changes
    outcome = run_deploy(builder.desired(layers={"core": "2"}, functions={"one": "2"}))
    assert outcome.steps
    live = clients.lambda_.get_function_configuration(FunctionName="test-one", Qualifier="live")
    assert live["Layers"][0]["Arn"].endswith("layer:test-core:2")


def test_rollback_to_an_unknown_release_names_the_known_ones(clients, three_releases):
    ids, _ = three_releases
    before = stage_state(clients)
    with pytest.raises(DeployError, match=ids[-1]):
        rollback(clients, STAGE, "19990101T000000.000000Z-deadbeef", owner="pytest")
    assert stage_state(clients) == before


def test_rollback_refused_while_a_deploy_holds_the_lock(clients, clock, three_releases):
    acquire(clients.s3, STAGE, "bob@laptop pid 7", "deploy", clock())
    before = stage_state(clients)
    with pytest.raises(DeployError, match="locked by bob@laptop pid 7"):
        rollback(clients, STAGE, owner="pytest", now=clock)
    assert stage_state(clients) == before


def test_rolling_back_to_the_release_already_running_changes_nothing(
    clients, clock, three_releases
):
    ids, states = three_releases
    rollback(clients, STAGE, ids[0], owner="pytest", now=clock)
    history = list_release_ids(clients.s3, STAGE)

    again = rollback(clients, STAGE, ids[0], owner="pytest", now=clock)

    assert again.release is None  # nothing to do, nothing recorded
    assert list_release_ids(clients.s3, STAGE) == history
    assert stage_state(clients)["functions"] == states[0]
    # but once an alias has drifted, the same rollback puts it back
    clients.lambda_.update_alias(FunctionName="test-one", Name="live", FunctionVersion="2")
    fixed = rollback(clients, STAGE, ids[0], owner="pytest", now=clock)
    assert fixed.release is not None
    assert stage_state(clients)["functions"] == states[0]
