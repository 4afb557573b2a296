"""Fault matrix: a failure injected at every AWS call a deploy makes leaves the stage as it was.

The list of calls is not typed by hand: at collection time the scenario deploy runs once
against moto with a recorder on every client, and each recorded call (service, operation, the
n-th of its kind) becomes one test case. A deploy that gains or loses a call changes the matrix
with it; ``test_the_matrix_covers_every_operation_the_plan_declares`` checks the recorded calls
against the operations the plan's steps declare.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import pytest
from moto import mock_aws

from layerkit.deploy.deployer import DeployOutcome
from layerkit.deploy.planner import operations
from layerkit.errors import DeployError

from .conftest import (
    STAGE,
    Builder,
    Clock,
    fail_call,
    layer_versions,
    record_calls,
    stage_state,
)

pytestmark = pytest.mark.aws


def deploy_before(builder: Builder, run) -> None:
    """The stage before the deploy under test: functions one and two, every layer at 1."""
    run(builder.desired())


def change(builder: Builder):
    """The deploy under test: core changes (publish; one and two reconfigured), one's code
    changes, three is new (create + create alias)."""
    return builder.desired(
        layers={"core": "2"}, functions={"one": "2", "three": "3"}, only=("one", "two", "three")
    )


def _trace() -> tuple[list[tuple[str, str, int]], DeployOutcome]:
    import boto3

    from layerkit.deploy.clients import Clients
    from layerkit.deploy.deployer import deploy

    from .conftest import REGION, ROLE_NAME, TODAY, pinned_lifecycle

    with tempfile.TemporaryDirectory() as tmp, mock_aws(config={"lambda": {"use_docker": False}}):
        kw = {"region_name": REGION, "aws_access_key_id": "testing", "aws_secret_access_key": "x"}
        clients = Clients(boto3.client("lambda", **kw), boto3.client("s3", **kw))
        clients.s3.create_bucket(Bucket=STAGE.bucket)
        boto3.client("iam", **kw).create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument="{}")
        builder, clock = Builder(Path(tmp)), Clock()

        def run(desired, **kwargs):
            return deploy(
                desired, clients, STAGE, now=clock, today=TODAY, lifecycle=pinned_lifecycle,
                owner="pytest", **kwargs,
            )  # fmt: skip

        deploy_before(builder, run)
        calls = record_calls(clients)
        outcome = run(change(builder))
    seen: Counter[tuple[str, str]] = Counter()
    numbered = []
    for call in calls:
        seen[call] += 1
        numbered.append((*call, seen[call]))
    return numbered, outcome


TRACE, OUTCOME = _trace()


def test_the_matrix_covers_every_operation_the_plan_declares():
    recorded = {(service, op) for service, op, _ in TRACE}
    assert recorded == set(operations(OUTCOME.steps))
    # the scenario exercises every kind of step there is
    from layerkit.deploy.planner import STEP_TYPES

    assert {type(s) for s in OUTCOME.steps} == set(STEP_TYPES)


@pytest.mark.parametrize(
    ("service", "operation", "occurrence"),
    TRACE,
    ids=[f"{i:02d}-{s}.{o}#{n}" for i, (s, o, n) in enumerate(TRACE, 1)],
)
def test_a_failure_at_any_call_leaves_the_stage_as_before(
    clients, builder, run_deploy, service, operation, occurrence
):
    deploy_before(builder, run_deploy)
    before = stage_state(clients)
    failed = fail_call(clients, service, operation, occurrence)

    is_lock_release = (service, operation) == ("s3", "DeleteObject")
    with pytest.raises(DeployError) as info:
        run_deploy(change(builder))

    assert failed == [occurrence], "the fault was not injected: the deploy's calls changed"
    after = stage_state(clients)
    if is_lock_release:
        # everything is deployed and recorded; only the lock is left, and the message says so
        assert "the deploy succeeded" in str(info.value)
        assert "--force-unlock" in str(info.value)
        assert len(after["releases"]) == len(before["releases"]) + 1
        assert after["locks"] == 1
        return
    assert after == before
    assert layer_versions(clients) == before["layers"]


def test_every_undo_is_attempted_even_when_one_fails(clients, builder, run_deploy):
    deploy_before(builder, run_deploy)
    before = stage_state(clients)
    # the release record fails (the last step), and then deleting the new core version fails
    puts = sum(1 for s, o, _ in TRACE if (s, o) == ("s3", "PutObject"))
    fail_call(clients, "s3", "PutObject", occurrence=puts)
    fail_call(clients, "lambda", "DeleteLayerVersion", occurrence=1)

    with pytest.raises(DeployError) as info:
        run_deploy(change(builder))

    message = str(info.value)
    assert "failed at step 18/18 (record release of stage test)" in message
    assert "NOT restored: delete layer version" in message
    assert "restored: alias test-one:live back on version 1" in message
    assert "deleted function test-three" in message
    after = stage_state(clients)
    # every other undo ran and worked, although one of them failed
    assert after["functions"] == before["functions"]
    assert after["releases"] == before["releases"]
    assert layer_versions(clients)["core"] == [1, 2]  # the one undo that could not be done


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_an_interrupt_mid_deploy_is_undone_and_releases_the_lock(
    clients, builder, run_deploy, error
):
    deploy_before(builder, run_deploy)
    before = stage_state(clients)

    def interrupt(**_):
        raise error("Ctrl-C" if error is KeyboardInterrupt else "a bug")

    clients.lambda_.meta.events.register("before-call.lambda.PublishVersion", interrupt)
    with pytest.raises(DeployError) as info:
        run_deploy(change(builder))

    reason = "interrupted" if error is KeyboardInterrupt else "RuntimeError"
    assert f"was {reason} at step" in str(info.value)
    assert "The stage runs exactly what it ran before this deploy." in str(info.value)
    assert stage_state(clients) == before  # lock released, aliases and $LATEST as before
