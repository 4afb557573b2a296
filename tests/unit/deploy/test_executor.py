"""The executor against in-memory Lambda and S3: steps stream, failures and interrupts undo."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from layerkit.deploy.deployer import deploy
from layerkit.deploy.executor import (
    AwsExecutor,
    DescribeOnlyExecutor,
    StepEvent,
    StepPhase,
    execute,
)
from layerkit.deploy.models import CurrentState, ReleaseKind
from layerkit.deploy.planner import HealthCheck, StepKind, plan
from layerkit.deploy.releases import list_releases
from layerkit.errors import DeployError, DeployInterrupted

from .fakes import client_error, error_payload
from .helpers import STAGE, Clock, desired, fake_clients

TODAY = dt.date(2026, 11, 1)


def never_blocked(runtime: str, today: dt.date):
    from layerkit.check.template import runtime_lifecycle

    return runtime_lifecycle(runtime, today, {})


def run(clients, want, **kwargs):
    kwargs.setdefault("now", Clock())
    return deploy(want, clients, STAGE, owner="t", today=TODAY, lifecycle=never_blocked, **kwargs)


def test_a_deploy_from_nothing_leaves_layers_functions_aliases_and_a_release(tmp_path: Path):
    clients = fake_clients()
    outcome = run(clients, desired(tmp_path))
    lam, s3 = clients.lambda_, clients.s3
    assert sorted(lam.layers) == ["dev-core", "dev-ml", "dev-utils"]
    assert lam.aliases == {("dev-one", "live"): "1", ("dev-two", "live"): "1"}
    (release,) = list_releases(s3, STAGE)
    assert release.kind is ReleaseKind.DEPLOY
    assert release == outcome.result.release
    assert s3.keys("locks/") == []
    assert [s.KIND for s in outcome.steps][-1] is StepKind.RECORD_RELEASE


def test_progress_events_stream_as_each_step_runs(tmp_path: Path):
    clients = fake_clients()
    seen: list[tuple[StepEvent, int]] = []
    run(clients, desired(tmp_path), progress=lambda e: seen.append((e, len(clients.lambda_.calls))))
    total = seen[0][0].total
    assert [e.index for e, _ in seen] == [i for i in range(1, total + 1) for _ in (0, 1)]
    assert [e.phase for e, _ in seen[:2]] == [StepPhase.STARTED, StepPhase.DONE]
    # streamed, not printed at the end: the calls made grow between the events
    calls_seen = [n for _, n in seen]
    assert calls_seen[0] == 0
    assert calls_seen == sorted(calls_seen)
    assert calls_seen[-1] == len(clients.lambda_.calls)
    assert seen[0][0].line().startswith(f"[1/{total}] upload ")


def test_a_dry_run_is_the_same_plan_through_the_describe_only_executor(tmp_path: Path):
    clients = fake_clients()
    run(clients, desired(tmp_path))
    before, objects = clients.lambda_.state(), dict(clients.s3.objects)
    change = desired(tmp_path, layers={"ml": "2"})
    dry = run(clients, change, dry_run=True)
    assert dry.result is None
    assert clients.lambda_.state() == before
    assert clients.s3.objects == objects  # no lock taken either
    executor = DescribeOnlyExecutor()
    execute(dry.steps, executor, STAGE)
    assert executor.described == [s.describe() for s in dry.steps]
    real = run(clients, change)
    assert real.steps == dry.steps


def test_a_failing_step_undoes_everything_before_it(tmp_path: Path):
    clients = fake_clients()
    run(clients, desired(tmp_path))
    before = clients.lambda_.state()
    releases = clients.s3.keys("releases/")
    clients.lambda_.fail["UpdateAlias"] = client_error("ServiceException", "UpdateAlias", 500)
    with pytest.raises(DeployError) as info:
        run(clients, desired(tmp_path, layers={"core": "2"}, functions={"one": "2"}))
    assert clients.lambda_.state()["aliases"] == before["aliases"]
    latest = {n: v["$LATEST"] for n, v in clients.lambda_.state()["functions"].items()}
    assert latest == {n: v["$LATEST"] for n, v in before["functions"].items()}
    assert sorted(clients.lambda_.layers["dev-core"]) == [1]  # the new version was deleted
    assert clients.s3.keys("releases/") == releases
    assert clients.s3.keys("locks/") == []
    assert "failed at step" in str(info.value)
    assert "The stage runs exactly what it ran before this deploy." in str(info.value)


def test_an_interrupt_is_undone_and_says_what_was_being_done(tmp_path: Path):
    clients = fake_clients()
    run(clients, desired(tmp_path))
    before = clients.lambda_.state()
    clients.lambda_.fail["PublishVersion"] = KeyboardInterrupt()
    with pytest.raises(DeployInterrupted) as info:
        run(clients, desired(tmp_path, functions={"one": "2"}))
    message = str(info.value)
    assert info.value.exit_code == 130
    assert "was interrupted at step" in message
    assert "(publish version of dev-one): the deploy was stopped (Ctrl-C / SIGINT)" in message
    assert clients.lambda_.state()["aliases"] == before["aliases"]
    assert clients.s3.keys("locks/") == []


def test_a_failing_health_check_names_function_version_and_lambdas_error(tmp_path: Path):
    clients = fake_clients()
    run(clients, desired(tmp_path))
    clients.lambda_.handlers["dev-two"] = lambda cfg, payload: (
        cfg["Version"] == "1",
        error_payload("Runtime.ImportModuleError", "Unable to import module 'app'"),
    )
    with pytest.raises(DeployError) as info:
        run(clients, desired(tmp_path, layers={"ml": "2"}))
    assert (
        "health check of dev-two:2 failed (Unhandled): Runtime.ImportModuleError: "
        "Unable to import module 'app'"
    ) in str(info.value)
    assert clients.lambda_.aliases[("dev-two", "live")] == "1"


def test_no_health_check_step_without_health_check(tmp_path: Path):
    stage = dataclasses.replace(STAGE, health_check=False)
    steps = plan(desired(tmp_path), CurrentState(), stage)
    assert not [s for s in steps if isinstance(s, HealthCheck)]


def test_the_executor_result_lists_what_changed(tmp_path: Path):
    clients = fake_clients()
    want = desired(tmp_path)
    steps = plan(want, CurrentState(), STAGE)
    executor = AwsExecutor(clients, STAGE, CurrentState(), "c", Clock(), 1)
    result = execute(steps, executor, STAGE)
    assert dict(result.published_versions) == {"dev-one": "1", "dev-two": "1"}
    assert {a[0] for a in result.aliases} == {"dev-one", "dev-two"}
    assert len(result.uploaded) == len({a.sha256 for a in (*want.layers, *want.functions)})


def test_a_blocked_runtime_is_refused_on_the_injected_day(tmp_path: Path):
    from layerkit.check.template import runtime_lifecycle

    table = {"python3.12": {"deprecated": "2026-01-01", "create-block": "2026-06-01"}}
    clients = fake_clients()
    with pytest.raises(
        DeployError, match="AWS has blocked creating functions on it since 2026-06-01"
    ):
        deploy(desired(tmp_path), clients, STAGE, owner="t", now=Clock(),
               today=TODAY, lifecycle=lambda r, d: runtime_lifecycle(r, d, table))  # fmt: skip
    assert clients.lambda_.functions == {}
    early = deploy(desired(tmp_path), clients, STAGE, owner="t", now=Clock(),
                   today=dt.date(2025, 1, 1), lifecycle=lambda r, d: runtime_lifecycle(r, d, table))  # fmt: skip
    assert early.result is not None
