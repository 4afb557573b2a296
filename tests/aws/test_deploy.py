"""Deploy against moto: from nothing, unchanged, one layer changed, new function, lock."""

from __future__ import annotations

import subprocess
import sys

import pytest

from layerkit.deploy.planner import (
    CreateFunction,
    MoveAlias,
    PublishLayerVersion,
    UpdateFunctionCode,
    UpdateFunctionConfiguration,
)
from layerkit.deploy.releases import list_releases
from layerkit.deploy.stagelock import acquire, force_unlock, read_lock
from layerkit.deploy.state import read_current
from layerkit.errors import DeployError

from .conftest import STAGE, TODAY, layer_versions, stage_state

pytestmark = pytest.mark.aws


def test_deploy_from_nothing_creates_layers_functions_aliases_and_a_release(
    clients, builder, run_deploy
):
    desired = builder.desired()
    outcome = run_deploy(desired)

    assert layer_versions(clients) == {"core": [1], "ml": [1], "utils": [1]}
    lam = clients.lambda_
    for fn in desired.functions:
        name = STAGE.function_name(fn.name)
        alias = lam.get_alias(FunctionName=name, Name="live")
        live = lam.get_function_configuration(FunctionName=name, Qualifier=alias["FunctionVersion"])
        expected = [
            f"arn:aws:lambda:us-east-1:123456789012:layer:test-{layer}:1" for layer in fn.layers
        ]
        assert [layer["Arn"] for layer in live["Layers"]] == expected  # template order
        assert live["MemorySize"] == 256
        assert live["Environment"]["Variables"] == {"STAGE": "test"}
    (release,) = list_releases(clients.s3, STAGE)
    assert release == outcome.result.release
    assert release.commit == "abc1234"
    assert {f.function for f in release.functions} == {"one", "two"}
    two = release.function("two")
    assert two.layers == tuple(
        f"arn:aws:lambda:us-east-1:123456789012:layer:test-{x}:1" for x in ("core", "ml", "utils")
    )
    assert two.code_sha256 == desired.functions[1].sha256
    # artifacts are content-addressed; the lock is gone
    keys = {o["Key"] for o in clients.s3.list_objects_v2(Bucket=STAGE.bucket)["Contents"]}
    assert {f"artifacts/{a.sha256}.zip" for a in (*desired.layers, *desired.functions)} <= keys
    assert read_lock(clients.s3, STAGE) is None


def test_redeploying_an_unchanged_build_changes_nothing(clients, builder, run_deploy):
    desired = builder.desired()
    run_deploy(desired)
    before = stage_state(clients)
    versions_before = {
        fn: clients.lambda_.list_versions_by_function(FunctionName=STAGE.function_name(fn))
        for fn in ("one", "two")
    }

    outcome = run_deploy(builder.desired())

    assert outcome.steps == ()
    assert outcome.result is None
    assert stage_state(clients) == before
    for fn, listed in versions_before.items():
        now = clients.lambda_.list_versions_by_function(FunctionName=STAGE.function_name(fn))
        assert [v["Version"] for v in now["Versions"]] == [v["Version"] for v in listed["Versions"]]


def test_one_changed_layer_publishes_only_it_and_updates_only_functions_attaching_it(
    clients, builder, run_deploy
):
    run_deploy(builder.desired())
    before = stage_state(clients)

    outcome = run_deploy(builder.desired(layers={"ml": "2"}))

    assert layer_versions(clients) == {"core": [1], "ml": [1, 2], "utils": [1]}
    published = [s for s in outcome.steps if isinstance(s, PublishLayerVersion)]
    assert [s.layer for s in published] == ["ml"]
    after = stage_state(clients)
    one, two = "test-one", "test-two"
    assert after["functions"][one] == before["functions"][one]  # does not attach ml
    assert after["functions"][two]["aliases"]["live"] == "2"
    live = clients.lambda_.get_function_configuration(FunctionName=two, Qualifier="live")
    assert [x["Arn"].rsplit(":", 2)[-2:] for x in live["Layers"]] == [
        ["test-core", "1"],
        ["test-ml", "2"],
        ["test-utils", "1"],
    ]
    assert len(after["releases"]) == 2


def test_a_new_function_is_created_and_a_changed_one_updated(clients, builder, run_deploy):
    run_deploy(builder.desired())
    desired = builder.desired(functions={"one": "2"}, only=("one", "two", "three"))

    outcome = run_deploy(desired)

    kinds = {type(s) for s in outcome.steps}
    assert {CreateFunction, UpdateFunctionCode, MoveAlias} <= kinds
    assert UpdateFunctionConfiguration not in kinds
    lam = clients.lambda_
    assert lam.get_alias(FunctionName="test-one", Name="live")["FunctionVersion"] == "2"
    assert lam.get_alias(FunctionName="test-two", Name="live")["FunctionVersion"] == "1"
    assert lam.get_alias(FunctionName="test-three", Name="live")["FunctionVersion"] == "1"
    release = outcome.result.release
    assert release.function("one").code_sha256 == desired.functions[0].sha256
    assert release.function("two").version == "1"  # unchanged functions are recorded too


def test_configuration_change_alone_publishes_a_new_version(clients, builder, run_deploy):
    run_deploy(builder.desired())
    run_deploy(builder.desired(memory={"two": 512}))
    live = clients.lambda_.get_function_configuration(FunctionName="test-two", Qualifier="live")
    assert live["MemorySize"] == 512
    assert live["Version"] == "2"


def test_current_state_reads_layer_sha_as_hex(clients, builder, run_deploy):
    desired = builder.desired()
    run_deploy(desired)
    current = read_current(clients, STAGE, desired)
    assert {name: layer.sha256 for name, layer in current.layers.items()} == {
        layer.name: layer.sha256 for layer in desired.layers
    }


def test_a_second_deploy_to_a_locked_stage_is_refused(clients, builder, run_deploy, clock):
    run_deploy(builder.desired())
    acquire(clients.s3, STAGE, "alice@ci pid 42", "deploy", clock())
    before = stage_state(clients)

    with pytest.raises(DeployError, match=r"locked by alice@ci pid 42 \(deploy\) since 2026-11-01"):
        run_deploy(builder.desired(layers={"core": "2"}))

    assert stage_state(clients) == before  # nothing changed, the other holder's lock kept
    assert read_lock(clients.s3, STAGE).owner == "alice@ci pid 42"
    assert force_unlock(clients.s3, STAGE).owner == "alice@ci pid 42"
    run_deploy(builder.desired(layers={"core": "2"}))
    assert layer_versions(clients)["core"] == [1, 2]


def test_dry_run_plans_without_changing_anything(clients, builder, run_deploy):
    run_deploy(builder.desired())
    before = stage_state(clients)
    outcome = run_deploy(builder.desired(layers={"utils": "2"}), dry_run=True)
    assert outcome.result is None
    assert [s.layer for s in outcome.steps if isinstance(s, PublishLayerVersion)] == ["utils"]
    assert stage_state(clients) == before


def test_failed_health_check_keeps_the_alias(clients, builder, run_deploy, monkeypatch):
    run_deploy(builder.desired())
    before = stage_state(clients)

    def failing_invoke(**kwargs):
        import io

        return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(b"boom")}

    monkeypatch.setattr(clients.lambda_, "invoke", failing_invoke)
    with pytest.raises(DeployError, match="health check of test-one:2 failed") as info:
        run_deploy(builder.desired(functions={"one": "2"}))
    assert "runs exactly what it ran before" in str(info.value)
    assert stage_state(clients) == before


_OPEN_LOCAL_STAGE = """
import sys
from pathlib import Path
from layerkit.deploy.localstage import local_stage
from layerkit.project.stages import get_stage
with local_stage(get_stage(Path(sys.argv[1]), "local"), Path(sys.argv[2])):
    pass
"""


def test_local_stage_keeps_its_state_between_runs(tmp_path, builder, monkeypatch, clock):
    from layerkit.deploy.deployer import deploy, rollback
    from layerkit.deploy.localstage import local_stage
    from layerkit.project.stages import get_stage

    from .conftest import REPO_ROOT

    for key in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)  # the local stage needs no credentials
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # and ignores this
    stage = get_stage(REPO_ROOT, "local")
    state = tmp_path / "local-state"
    local = dict(stage=stage, state_dir=state)
    with local_stage(**local) as run:
        first = deploy(builder.desired(), run.clients, stage, owner="t", now=clock, today=TODAY)
        # a second process cannot open the same local stage meanwhile (its own moto could not
        # see this one's deploy lock)
        child = subprocess.run(
            [sys.executable, "-c", _OPEN_LOCAL_STAGE, str(REPO_ROOT), str(state)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert child.returncode != 0
        assert "in use by another layerkit process" in child.stderr
    with local_stage(**local) as run:  # a new server: the state comes from the recording
        assert run.replayed > 0
        again = deploy(builder.desired(), run.clients, stage, owner="t", now=clock, today=TODAY)
        assert again.steps == ()
        deploy(
            builder.desired(functions={"one": "2"}), run.clients, stage, owner="t", now=clock,
            today=TODAY,
        )  # fmt: skip
    with local_stage(**local) as run:
        outcome = rollback(run.clients, stage, owner="t", now=clock)
        alias = run.clients.lambda_.get_alias(FunctionName="local-one", Name="live")
    assert outcome.target.release_id == first.result.release.release_id
    assert alias["FunctionVersion"] == "1"
    with local_stage(stage, None) as run:  # a throw-away local stage starts empty
        assert run.clients.lambda_.list_functions()["Functions"] == []
