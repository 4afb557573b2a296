"""A template mixing targets: a layer version per (layer, target), both deploy paths alike.

The shop project (tests/projects/shop/): CommonLayer is attached by functions on python3.12
x86_64 (the main target, dist/), python3.12 arm64 and python3.13; ReportsLayer only on
python3.13.
"""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from layerkit.build.manifest import ArtifactKind, ArtifactRecord, read_manifest, write_manifest
from layerkit.build.plan import output_dir
from layerkit.deploy import package as P
from layerkit.deploy.deployer import desired_state, not_run_here
from layerkit.deploy.models import DEFAULT_HEALTH_EVENT, CurrentState
from layerkit.deploy.planner import HealthCheck, PublishLayerVersion, plan
from layerkit.deploy.variants import layer_variants, target_suffix
from layerkit.errors import DeployError
from layerkit.project.parameters import for_stage
from layerkit.project.spec import Project, load_project
from layerkit.project.stages import DEFAULT_LOCAL_STAGE, Stage
from layerkit.runtime import host
from layerkit.runtime.target import Target

SHOP = Path(__file__).resolve().parents[2] / "projects" / "shop"
X86 = Target("python3.12", "x86_64")
ARM = Target("python3.12", "arm64")
PY313 = Target("python3.13", "x86_64")
STAGE = Stage(
    "dev",
    bucket="shop-dev-artifacts",
    alias="live",
    role="arn:aws:iam::123456789012:role/shop-dev-lambda",
    prefix="dev-",
    region="us-east-1",
    parameters=(("Stage", "dev"),),
)


@pytest.fixture(scope="module")
def shop() -> Project:
    return load_project(SHOP)


def built(project: Project, root: Path) -> Project:
    """``project`` as if built: a zip and a manifest for every artifact in its target's folder."""
    project = replace(project, root=root)
    wanted: dict[Target, list[str]] = {}
    for v in layer_variants(project):
        wanted.setdefault(v.target, []).append(f"layers/{v.layer}.zip")
    for fn in project.functions:
        wanted.setdefault(fn.target, []).append(f"functions/{fn.name}.zip")
    for target, paths in wanted.items():
        out = output_dir(project, target)
        records = {}
        for rel in paths:
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(path, "w") as zf:
                zf.writestr("x.py", f"{target.key} {rel}")
            data = path.read_bytes()
            kind = ArtifactKind.LAYER if rel.startswith("layers/") else ArtifactKind.FUNCTION
            records[rel] = ArtifactRecord(
                kind, Path(rel).stem, target.key, rel, hashlib.sha256(data).hexdigest(),
                len(data), len(data), 1, "input",
            )  # fmt: skip
        write_manifest(out, target.key, records)
    return project


def test_a_layer_gets_a_variant_per_target_of_the_functions_attaching_it(shop):
    found = [(v.key, v.target, v.main, v.resource_id) for v in layer_variants(shop)]
    assert found == [
        ("common", X86, True, "CommonLayer"),
        ("common-python312-arm64", ARM, False, "CommonLayerPython312Arm64"),
        ("common-python313-x86_64", PY313, False, "CommonLayerPython313X86"),
        ("reports", PY313, True, "ReportsLayer"),  # one target: its own name, no suffix
    ]
    assert target_suffix(ARM) == "python312-arm64"  # Lambda layer names take no dot


def test_the_direct_deploy_takes_each_zip_from_its_targets_build(shop, tmp_path):
    project = built(shop, tmp_path)
    main = output_dir(project, X86)
    view = for_stage(project, STAGE, region="us-east-1")
    manifest = read_manifest(main)
    state = desired_state(project, manifest, main, view=view)
    layers = {a.name: a for a in state.layers}
    assert layers["common"].zip_path == tmp_path / "dist" / "layers" / "common.zip"
    arm = layers["common-python312-arm64"]
    assert arm.zip_path == tmp_path / "dist" / "python3.12-arm64" / "layers" / "common.zip"
    assert arm.layer_name == "shop-common-dev-python312-arm64"  # LayerName, !Sub resolved
    assert (arm.compatible_runtimes, arm.compatible_architectures) == (("python3.12",), ("arm64",))
    assert layers["reports"].layer_name == "shop-reports-dev"
    assert layers["reports"].compatible_runtimes == ("python3.13",)  # the template's list
    functions = {f.logical_id: f for f in state.functions}
    payments = functions["PaymentsApiFunction"]
    assert payments.zip_path.parent.parent.name == "python3.12-arm64"
    assert payments.layers == ("common-python312-arm64",)
    assert payments.function_name == "shop-payments-api-dev"
    assert functions["ReportsFunction"].layers == ("common-python313-x86_64", "reports")
    assert functions["OrdersApiFunction"].layers == ("common",)
    # the planner publishes each variant under its own name
    steps = plan(state, CurrentState(), STAGE)
    published = {s.layer_name for s in steps if isinstance(s, PublishLayerVersion)}
    assert {"shop-common-dev", "shop-common-dev-python312-arm64"} <= published


def test_a_targets_build_that_is_missing_is_named(shop, tmp_path):
    project = built(shop, tmp_path)
    shutil.rmtree(tmp_path / "dist" / "python3.12-arm64")
    main = output_dir(project, X86)
    with pytest.raises(DeployError, match=r"python3\.12-arm64/manifest\.json has no layers/common"):
        desired_state(project, read_manifest(main), main)


def test_the_packaged_template_declares_the_same_variants(shop):
    keys = {}
    for v in layer_variants(shop):
        keys[P.dist_path(shop, v.target, f"layers/{v.layer}.zip")] = f"artifacts/{v.key}.zip"
    for fn in shop.functions:
        keys[P.dist_path(shop, fn.target, f"functions/{fn.name}.zip")] = f"artifacts/{fn.name}.zip"
    assert "python3.12-arm64/layers/common.zip" in keys
    doc = P.packaged_document(shop, STAGE, keys, values={"Stage": "dev"})
    res = doc["Resources"]
    order = list(res)
    assert order.index("CommonLayerPython312Arm64") == order.index("CommonLayer") + 1
    arm = res["CommonLayerPython312Arm64"]["Properties"]
    assert arm["ContentUri"] == {
        "Bucket": "shop-dev-artifacts",
        "Key": "artifacts/common-python312-arm64.zip",
    }
    assert arm["LayerName"] == {"Fn::Sub": "shop-common-${Stage}-python312-arm64"}
    assert arm["CompatibleArchitectures"] == ["arm64"]
    assert res["CommonLayer"]["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert res["PaymentsApiFunction"]["Properties"]["Layers"] == [
        {"Ref": "CommonLayerPython312Arm64"}
    ]
    assert res["OrdersApiFunction"]["Properties"]["Layers"] == [{"Ref": "CommonLayer"}]
    # the names both paths give agree
    assert P.layer_names(doc) == (
        "shop-common-dev",
        "shop-common-dev-python312-arm64",
        "shop-common-dev-python313-x86_64",
        "shop-reports-dev",
    )


def test_globals_layers_move_into_each_function_when_a_layer_has_variants(tmp_path):
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root)
    template = root / "template.yaml"
    text = template.read_text()
    text = text.replace(
        "    Tracing: Active\n", "    Tracing: Active\n    Layers:\n      - !Ref CommonLayer\n"
    )
    text = text.replace("      Layers:\n        - !Ref CommonLayer\n        - !Ref ReportsLayer\n",
                        "      Layers:\n        - !Ref ReportsLayer\n")  # fmt: skip
    text = text.replace("      Layers:\n        - !Ref CommonLayer\n", "")
    template.write_text(text)
    project = load_project(root)
    keys = {}
    for v in layer_variants(project):
        keys[P.dist_path(project, v.target, f"layers/{v.layer}.zip")] = "artifacts/l.zip"
    for fn in project.functions:
        keys[P.dist_path(project, fn.target, f"functions/{fn.name}.zip")] = "artifacts/f.zip"
    doc = P.packaged_document(project, STAGE, keys, values={"Stage": "dev"})
    assert "Layers" not in doc["Globals"]["Function"]
    res = doc["Resources"]
    assert res["PaymentsApiFunction"]["Properties"]["Layers"] == [
        {"Ref": "CommonLayerPython312Arm64"}
    ]
    assert res["ReportsFunction"]["Properties"]["Layers"] == [
        {"Ref": "CommonLayerPython313X86"},  # Globals' layers come first, as SAM merges them
        {"Ref": "ReportsLayer"},
    ]


def test_a_local_health_check_this_host_cannot_run_is_reported_with_the_static_checks(
    shop, tmp_path, monkeypatch
):
    project = built(shop, tmp_path)
    main = output_dir(project, X86)
    manifest = read_manifest(main)
    state = desired_state(project, manifest, main)

    def support(target, **_):
        execution = host.Execution.NATIVE if target.architecture == "x86_64" else None
        if execution:
            return host.HostSupport(target, "x86_64", execution)
        return host.HostSupport(target, "x86_64", host.Execution.STATIC_ONLY, None, "no qemu")

    monkeypatch.setattr(host, "host_support", support)
    marked = not_run_here(state)
    not_run = {f.logical_id: f.not_run for f in marked.functions}
    assert not_run["OrdersApiFunction"] == ""
    assert not_run["PaymentsApiFunction"].startswith(
        "this x86_64 host cannot run aarch64 code (no qemu); checked statically: "
    )
    assert "Handler app.lambda_handler does NOT resolve" in not_run["PaymentsApiFunction"]
    checks = [
        s for s in plan(marked, CurrentState(), DEFAULT_LOCAL_STAGE) if isinstance(s, HealthCheck)
    ]
    [skipped] = [s for s in checks if s.not_run]
    assert skipped.payload == DEFAULT_HEALTH_EVENT
    assert "NOT RUN: this x86_64 host cannot run aarch64 code" in skipped.describe()
