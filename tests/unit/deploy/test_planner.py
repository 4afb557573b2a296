"""The deploy plan is a pure function of (desired, current, stage): tested with no AWS at all."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import zipfile
from pathlib import Path

import pytest

from layerkit.check.template import runtime_lifecycle
from layerkit.deploy.deployer import desired_state
from layerkit.deploy.planner import (
    STEP_TYPES,
    CreateAlias,
    CreateFunction,
    CurrentFunction,
    CurrentLayer,
    CurrentState,
    DesiredState,
    FunctionArtifact,
    FunctionState,
    HealthCheck,
    LayerArtifact,
    LayerRef,
    MoveAlias,
    PublishLayerVersion,
    PublishVersion,
    RecordRelease,
    UpdateFunctionCode,
    UpdateFunctionConfiguration,
    UploadArtifact,
    artifact_key,
    b64_from_hex,
    hex_from_b64,
    operations,
    plan,
    runtime_problems,
)
from layerkit.errors import DeployError
from layerkit.project.spec import load_project
from layerkit.project.stages import Stage
from tests.conftest import imported_modules

REPO = Path(__file__).resolve().parents[3]
STAGE = Stage(
    name="dev", bucket="b", alias="live", role="arn:aws:iam::111122223333:role/r", prefix="dev-"
)
USES = {"one": ("core", "utils"), "two": ("core", "ml", "utils")}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def desired(layer_v: dict[str, str] | None = None, fn_v: dict[str, str] | None = None):
    layer_v = {"core": "1", "ml": "1", "utils": "1", **(layer_v or {})}
    fn_v = {"one": "1", "two": "1", **(fn_v or {})}
    layers = tuple(
        LayerArtifact(n, Path(f"{n}.zip"), sha(n + v), 10, ("python3.9",), ("x86_64",), n)
        for n, v in layer_v.items()
    )
    functions = tuple(
        FunctionArtifact(
            name=n,
            logical_id=n.title(),
            zip_path=Path(f"{n}.zip"),
            sha256=sha(n + v),
            handler="app.handler",
            runtime="python3.9",
            architecture="x86_64",
            memory_size=256,
            timeout=30,
            layers=USES[n],
            environment={"A": "1"},
        )
        for n, v in fn_v.items()
    )
    return DesiredState(layers, functions, "c0ffee")


def deployed(d: DesiredState, *, alias: bool = True) -> CurrentState:
    """The state a successful deploy of ``d`` leaves (layer version 1 each, function version 1)."""
    arn = {x.name: f"arn:aws:lambda:r:1:layer:dev-{x.name}:1" for x in d.layers}
    layers = {x.name: CurrentLayer(f"dev-{x.name}", arn[x.name], 1, x.sha256) for x in d.layers}
    functions = {}
    for fn in d.functions:
        state = FunctionState(
            code_sha256=fn.sha256,
            handler=fn.handler,
            runtime=fn.runtime,
            architecture=fn.architecture,
            memory_size=fn.memory_size,
            timeout=fn.timeout,
            role=STAGE.role,
            environment=tuple(sorted(fn.environment.items())),
            layers=tuple(arn[x] for x in fn.layers),
        )
        live = dataclasses.replace(state, version="1") if alias else None
        functions[fn.name] = CurrentFunction(f"dev-{fn.name}", state, "1" if alias else None, live)
    keys = frozenset(artifact_key(a.sha256) for a in (*d.layers, *d.functions))
    return CurrentState(layers, functions, keys)


def kinds(steps) -> list[str]:
    return [type(s).__name__ for s in steps]


def test_from_nothing_uploads_publishes_creates_checks_then_moves_aliases_and_records():
    steps = plan(desired(), CurrentState(), STAGE)
    assert kinds(steps) == [
        *["UploadArtifact", "PublishLayerVersion"] * 3,
        *["UploadArtifact", "CreateFunction", "PublishVersion", "HealthCheck"] * 2,
        "CreateAlias",
        "CreateAlias",
        "RecordRelease",
    ]
    create_two = next(s for s in steps if isinstance(s, CreateFunction) and s.function == "two")
    assert create_two.function_name == "dev-two"
    assert create_two.config.layers == tuple(LayerRef(x, None) for x in ("core", "ml", "utils"))
    assert create_two.config.role == STAGE.role


def test_an_unchanged_build_plans_nothing():
    d = desired()
    assert plan(d, deployed(d), STAGE) == ()


def test_one_changed_layer_touches_only_it_and_the_functions_attaching_it():
    before = deployed(desired())
    steps = plan(desired(layer_v={"ml": "2"}), before, STAGE)
    assert kinds(steps) == [
        "UploadArtifact",
        "PublishLayerVersion",
        "UpdateFunctionConfiguration",
        "PublishVersion",
        "HealthCheck",
        "MoveAlias",
        "RecordRelease",
    ]
    update = steps[2]
    assert isinstance(update, UpdateFunctionConfiguration)
    assert update.function == "two"
    assert update.config.layers == (
        LayerRef("core", "arn:aws:lambda:r:1:layer:dev-core:1"),
        LayerRef("ml", None),  # the version this deploy publishes, in template order
        LayerRef("utils", "arn:aws:lambda:r:1:layer:dev-utils:1"),
    )
    assert steps[5] == MoveAlias("two", "dev-two", "live", from_version="1")


def test_code_change_updates_code_only_and_uploads_once():
    before = deployed(desired())
    steps = plan(desired(fn_v={"one": "2"}), before, STAGE)
    assert kinds(steps) == [
        "UploadArtifact",
        "UpdateFunctionCode",
        "PublishVersion",
        "HealthCheck",
        "MoveAlias",
        "RecordRelease",
    ]


def test_artifacts_already_in_the_bucket_are_not_uploaded_again():
    d = desired(layer_v={"core": "2"})
    before = deployed(desired())
    present = dataclasses.replace(before, artifacts=before.artifacts | {artifact_key(sha("core2"))})
    assert not any(isinstance(s, UploadArtifact) for s in plan(d, present, STAGE))


def test_a_missing_alias_is_created_without_touching_latest():
    d = desired()
    steps = plan(d, deployed(d, alias=False), STAGE)
    assert kinds(steps) == [
        *["PublishVersion", "HealthCheck"] * 2,
        "CreateAlias",
        "CreateAlias",
        "RecordRelease",
    ]


def test_latest_already_right_but_alias_behind_publishes_and_moves():
    d = desired(fn_v={"one": "2"})
    current = deployed(d)
    old = dataclasses.replace(current.functions["one"].alias_state, code_sha256=sha("one1"))
    current.functions["one"] = dataclasses.replace(current.functions["one"], alias_state=old)
    assert kinds(plan(d, current, STAGE)) == [
        "PublishVersion",
        "HealthCheck",
        "MoveAlias",
        "RecordRelease",
    ]


def test_health_check_can_be_switched_off():
    stage = dataclasses.replace(STAGE, health_check=False)
    assert not any(isinstance(s, HealthCheck) for s in plan(desired(), CurrentState(), stage))


def test_plan_is_pure():
    d, current = desired(layer_v={"core": "3"}), deployed(desired())
    snapshot = (dataclasses.astuple(d), dict(current.functions), dict(current.layers))
    assert plan(d, current, STAGE) == plan(d, current, STAGE)
    assert (dataclasses.astuple(d), dict(current.functions), dict(current.layers)) == snapshot


def test_a_function_attaching_an_unknown_layer_is_refused():
    d = desired()
    broken = dataclasses.replace(d, layers=d.layers[:1])
    with pytest.raises(DeployError, match="attaches layer"):
        plan(broken, CurrentState(), STAGE)


def test_operations_cover_every_step_plus_reads_and_the_lock():
    steps = plan(desired(), CurrentState(), STAGE)
    ops = operations(steps)
    assert ops[0] == ("s3", "PutObject")  # the lock first
    assert ops[-1] == ("s3", "DeleteObject")  # and released last
    for step_type in STEP_TYPES:
        if step_type in {type(s) for s in steps}:
            assert set(step_type.OPERATIONS) <= set(ops)
    assert ("lambda", "UpdateAlias") not in ops  # nothing to move in a first deploy


def test_every_step_describes_itself_on_one_line():
    steps = plan(desired(layer_v={"ml": "2"}, fn_v={"one": "2"}), deployed(desired()), STAGE)
    steps += plan(desired(), CurrentState(), STAGE)
    types = {type(s) for s in steps}
    assert types == set(STEP_TYPES)
    for step in steps:
        assert "\n" not in step.describe()


def test_sha_conversions_round_trip():
    digest = sha("x")
    assert hex_from_b64(b64_from_hex(digest)) == digest
    assert b64_from_hex(digest).endswith("=")


TABLE = {
    "python3.9": {
        "deprecated": "2025-12-15",
        "create-block": "2026-06-01",
        "update-block": "2026-07-01",
        "successor": "python3.14",
    }
}


def lifecycle(runtime, today):
    return runtime_lifecycle(runtime, today, TABLE)


def test_runtime_blocked_for_create_but_not_yet_for_update():
    steps = plan(desired(), CurrentState(), STAGE) + plan(
        desired(fn_v={"one": "2"}), deployed(desired()), STAGE
    )
    found = runtime_problems(steps, dt.date(2026, 6, 15), lifecycle)
    # one notice for the runtime (said once), blocked because one of its steps is a create
    assert [blocked for _, blocked in found] == [True]
    message = found[0][0]
    assert "has blocked creating functions on it since 2026-06-01" in message
    assert "python3.14" in message


def test_runtime_findings_none_before_deprecation_and_for_layer_only_plans():
    steps = plan(desired(), CurrentState(), STAGE)
    assert runtime_problems(steps, dt.date(2025, 1, 1), lifecycle) == ()
    layer_only = (s for s in steps if isinstance(s, (PublishLayerVersion, RecordRelease)))
    assert runtime_problems(tuple(layer_only), dt.date(2027, 1, 1), lifecycle) == ()


# ---------------------------------------------------------------- desired_state (manifest glue)


def _dist(tmp_path: Path) -> tuple[Path, dict]:
    project = load_project(REPO)
    dist = tmp_path / "dist"
    records = {}
    names = [("layers", tl.layer) for tl in project.template.layers]
    names += [("functions", f.name) for f in project.functions]
    for folder, name in names:
        path = dist / folder / f"{name}.zip"
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("x.py", name)
        data = path.read_bytes()
        records[f"{folder}/{name}.zip"] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "zipped_bytes": len(data),
            "target": "python3.9-x86_64",
        }
    return dist, {"target": "python3.9-x86_64", "artifacts": records}


def test_desired_state_follows_the_template(tmp_path):
    project = load_project(REPO)
    dist, manifest = _dist(tmp_path)
    state = desired_state(project, manifest, dist, commit="abc")
    assert [x.name for x in state.layers] == [x.name for x in project.layers]
    predictions = next(f for f in state.functions if f.name == "predictions")
    assert predictions.layers == ("core-data-science", "ml-libraries", "aws-utilities")
    assert predictions.runtime == "python3.9"
    assert predictions.memory_size == project.function("predictions").memory_size
    assert predictions.environment == {"LOG_LEVEL": "INFO"}  # Globals.Function.Environment
    # records by path (what manifest.read_manifest returns) work the same
    assert desired_state(project, manifest["artifacts"], dist, commit="abc") == state


def test_desired_state_refuses_a_zip_changed_after_the_build(tmp_path):
    project = load_project(REPO)
    dist, manifest = _dist(tmp_path)
    (dist / "layers" / "ml-libraries.zip").write_bytes(b"tampered")
    with pytest.raises(DeployError, match=r"ml-libraries\.zip does not match .*inv build\.all"):
        desired_state(project, manifest, dist)


def test_desired_state_refuses_missing_artifacts_and_other_targets(tmp_path):
    project = load_project(REPO)
    dist, manifest = _dist(tmp_path)
    (dist / "functions" / "predictions.zip").unlink()
    with pytest.raises(DeployError, match=r"predictions\.zip is missing"):
        desired_state(project, manifest, dist)
    del manifest["artifacts"]["functions/predictions.zip"]
    with pytest.raises(DeployError, match=r"has no functions/predictions\.zip"):
        desired_state(project, manifest, dist)
    with pytest.raises(DeployError, match=r"built for python3\.12-x86_64"):
        desired_state(project, {**manifest, "target": "python3.12-x86_64"}, dist)


def test_step_types_are_frozen_data():
    step = PublishVersion("one", "dev-one", sha("x"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.function = "two"  # type: ignore[misc]
    assert CreateAlias("one", "dev-one", "live") == CreateAlias("one", "dev-one", "live")
    assert UpdateFunctionCode("a", "b", "k", "s", "x86_64") != UpdateFunctionCode(
        "a", "b", "k", "s", "arm64"
    )


def test_aliases_ahead_of_the_newest_record_plan_the_record_alone():
    d = desired()
    current = deployed(d)
    assert plan(d, dataclasses.replace(current, recorded={"one": "1", "two": "1"}), STAGE) == ()
    behind = dataclasses.replace(current, recorded={"one": "1"})  # killed before its record
    assert kinds(plan(d, behind, STAGE)) == ["RecordRelease"]
    assert kinds(plan(d, dataclasses.replace(current, recorded={}), STAGE)) == ["RecordRelease"]


def test_the_planner_imports_neither_boto3_nor_cfn_lint():
    found = imported_modules("layerkit.deploy.planner")
    assert not {m for m in found if m.split(".")[0] in ("boto3", "botocore", "cfnlint", "moto")}
    assert not {m for m in found if m.startswith("layerkit.check")}
    assert "layerkit.deploy.models" in found
    for module in ("layerkit.deploy.releases", "layerkit.deploy.state"):
        assert "layerkit.deploy.planner" not in imported_modules(module)


def test_desired_state_leaves_out_what_a_false_condition_leaves_out(tmp_path):
    from dataclasses import replace

    from layerkit.project.parameters import for_stage
    from layerkit.project.stages import DEFAULT_LOCAL_STAGE

    project = load_project(REPO)
    dist, manifest = _dist(tmp_path)
    view = for_stage(project, DEFAULT_LOCAL_STAGE)
    predictions = project.function("predictions").logical_id
    state = desired_state(
        project, manifest, dist, view=replace(view, excluded={predictions: "IsProd"})
    )
    assert "predictions" not in {f.name for f in state.functions}
    assert {f.name for f in state.functions} == {"data_validation", "feature_engineering"}
    assert [x.name for x in state.layers] == [x.name for x in project.layers]

    ml = next(tl.logical_id for tl in project.template.layers if tl.layer == "ml-libraries")
    with pytest.raises(DeployError) as info:
        desired_state(project, manifest, dist, view=replace(view, excluded={ml: "IsProd"}))
    message = str(info.value)
    attaching = project.function("feature_engineering").logical_id
    assert f"{attaching} attaches {ml}, whose Condition IsProd is false on stage local" in message
    assert f"give {attaching} the same Condition" in message
