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


# ------------------------------------------------------------------- the same over the local stage
#
# Server mode: the local stage's moto server, its state saved on disk. The stage before the
# deploy is recorded once by another process; every case replays it into a fresh server, injects
# its fault, and the stage it leaves is read back after a second replay.

import dataclasses  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from layerkit.deploy.localstage import local_stage  # noqa: E402
from layerkit.deploy.releases import list_releases  # noqa: E402

from .conftest import REPO_ROOT, TODAY, pinned_lifecycle, python_child  # noqa: E402

LOCAL = dataclasses.replace(STAGE, local=True)

# The child restores Python's SIGINT handler first: a test run started in the background (`nohup
# ... &`, a CI runner) starts every process with SIGINT ignored, and Python then never installs
# its KeyboardInterrupt handler, so the child's own SIGINT would do nothing.
_CHILD = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.aws.conftest import Builder, Clock, TODAY, pinned_lifecycle
from tests.aws.test_faults import LOCAL, change, deploy_before
from layerkit.deploy.deployer import deploy
from layerkit.deploy.executor import StepPhase
from layerkit.deploy.localstage import local_stage
from layerkit.errors import DeployInterrupted

root, state, what, kill_at = Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], int(sys.argv[5])
builder, clock = Builder(root), Clock()

def kill(event):
    if event.index == kill_at and event.phase is StepPhase.STARTED:
        os.kill(os.getpid(), signal.SIGINT if what == "sigint" else signal.SIGKILL)

def run(desired, **kwargs):
    return deploy(desired, run_clients, LOCAL, now=clock, today=TODAY,
                  lifecycle=pinned_lifecycle, owner="child", **kwargs)

with local_stage(LOCAL, state) as opened:
    run_clients = opened.clients
    if what == "before":
        deploy_before(builder, run)
    else:
        try:
            run(change(builder), progress=kill)
        except DeployInterrupted as exc:  # what a command prints before it exits 130
            print(exc)
            sys.exit(exc.exit_code)
"""


def _child(root: Path, state: Path, what: str, kill_at: int = 0) -> subprocess.CompletedProcess:
    return python_child(  # subprocess.run(..., capture_output=True, text=True), forked
        [sys.executable, "-c", _CHILD, str(REPO_ROOT), str(root), str(state), what, str(kill_at)],
        cwd=REPO_ROOT,
    )  # fmt: skip


@pytest.fixture(scope="module")
def recorded_before(tmp_path_factory) -> Path:
    """The saved local stage after ``deploy_before``, recorded by another process."""
    root = tmp_path_factory.mktemp("local-before")
    child = _child(root / "build", root / "state", "before")
    assert child.returncode == 0, child.stderr
    return root


@pytest.fixture
def local_copy(recorded_before, tmp_path, monkeypatch) -> tuple[Builder, Path]:
    for key in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    shutil.copytree(recorded_before / "state", tmp_path / "state")
    return Builder(recorded_before / "build"), tmp_path / "state"


def deploy_with(clients, desired, **kwargs):
    from layerkit.deploy.deployer import deploy

    kwargs.setdefault("now", Clock())
    return deploy(desired, clients, LOCAL, today=TODAY, lifecycle=pinned_lifecycle,
                  owner="pytest", **kwargs)  # fmt: skip


def test_the_local_stage_makes_the_same_calls(local_copy):
    builder, state = local_copy
    with local_stage(LOCAL, state) as opened:
        calls = record_calls(opened.clients)
        deploy_with(opened.clients, change(builder), now=_later_clock())
    seen: Counter[tuple[str, str]] = Counter()
    numbered = []
    for call in calls:
        seen[call] += 1
        numbered.append((*call, seen[call]))
    assert numbered == TRACE


def _later_clock() -> Clock:
    clock = Clock()
    for _ in range(100):  # after the releases the recording process made
        clock()
    return clock


@pytest.mark.parametrize(
    ("service", "operation", "occurrence"),
    TRACE,
    ids=[f"{i:02d}-{s}.{o}#{n}" for i, (s, o, n) in enumerate(TRACE, 1)],
)
def test_a_failure_at_any_call_leaves_the_local_stage_as_before(
    local_copy, service, operation, occurrence
):
    builder, state = local_copy
    with local_stage(LOCAL, state) as opened:
        before = stage_state(opened.clients)
        failed = fail_call(opened.clients, service, operation, occurrence)
        with pytest.raises(DeployError) as info:
            deploy_with(opened.clients, change(builder), now=_later_clock())
    assert failed == [occurrence], "the fault was not injected: the deploy's calls changed"
    with local_stage(LOCAL, state) as reopened:  # a fresh server: the state comes from disk
        after = stage_state(reopened.clients)
        notes = reopened.notes
    if (service, operation) == ("s3", "DeleteObject"):
        assert "the deploy succeeded" in str(info.value)
        assert len(after["releases"]) == len(before["releases"]) + 1
        assert after["locks"] == 0  # the next command removed the lock the deploy left
        assert "removed the deploy lock of pytest" in " ".join(notes)
        return
    assert after == before


@pytest.mark.parametrize("function", ["one", "two", "three"])
def test_a_failing_health_check_of_any_function_leaves_the_local_stage_as_before(
    local_copy, tmp_path, function
):
    import hashlib

    builder, state = local_copy
    desired = change(builder)
    broken = tmp_path / f"{function}-broken.zip"
    from .conftest import tiny_zip

    tiny_zip(broken, {"app.py": "raise ImportError('no module named model')\n"})
    data = broken.read_bytes()
    desired = dataclasses.replace(desired, functions=tuple(
        dataclasses.replace(fn, zip_path=broken, sha256=hashlib.sha256(data).hexdigest(),
                            zipped_bytes=len(data)) if fn.name == function else fn
        for fn in desired.functions
    ))  # fmt: skip
    with local_stage(LOCAL, state) as opened:
        before = stage_state(opened.clients)
        with pytest.raises(DeployError) as info:
            deploy_with(opened.clients, desired, now=_later_clock())
        after = stage_state(opened.clients)
    message = str(info.value)
    assert f"health check of {LOCAL.function_name(function)}:" in message
    assert (
        "Runtime.ImportModuleError: Unable to import module 'app': no module named model" in message
    )
    assert after == before


STEPS = len(OUTCOME.steps)


@pytest.mark.parametrize("kill_at", range(1, STEPS + 1))
def test_a_deploy_killed_at_any_step_is_named_and_finished_by_the_next_command(local_copy, kill_at):
    builder, state = local_copy
    with local_stage(LOCAL, state) as opened:
        releases_before = list_releases(opened.clients.s3, LOCAL)
    child = _child(builder.root, state, "change", kill_at)
    assert child.returncode == -signal.SIGKILL, child.stderr
    with local_stage(LOCAL, state) as opened:  # the next command
        notes = " ".join(opened.notes)
        assert "removed the deploy lock of child" in notes
        assert "was killed before it finished" in notes
        kept = list_releases(opened.clients.s3, LOCAL)
        assert kept[: len(releases_before)] == releases_before  # no release record lost
        assert len(kept) == len(releases_before)  # killed before its own record
        finished = deploy_with(opened.clients, change(builder), now=_later_clock())
        assert finished.result is not None
        after = stage_state(opened.clients)
        live = list_releases(opened.clients.s3, LOCAL)[-1]
    assert after["locks"] == 0
    for fn in live.functions:  # every alias on what the finished deploy recorded
        assert after["functions"][fn.function_name]["aliases"]["live"] == fn.version
    assert {f.function for f in live.functions} == {"one", "two", "three"}
    assert os.path.isdir(state)


@pytest.mark.parametrize("at", [1, STEPS // 2, STEPS])
def test_sigint_during_a_deploy_undoes_it_and_says_what_was_being_done(local_copy, at):
    builder, state = local_copy
    with local_stage(LOCAL, state) as opened:
        before = stage_state(opened.clients)
    child = _child(builder.root, state, "sigint", at)
    assert child.returncode == 130, child.stderr
    step = OUTCOME.steps[at - 1]
    assert (
        f"was interrupted at step {at}/{STEPS} ({' '.join(step.describe().split())}): "
        "the deploy was stopped (Ctrl-C / SIGINT)" in child.stdout
    )
    with local_stage(LOCAL, state) as reopened:
        assert reopened.notes == ()  # the lock went with the undo
        assert stage_state(reopened.clients) == before
