"""`inv package` against moto: uploads, the packaged template, and who owns a stage.

The project is this repository's (its template.yaml, layers and functions); the zips are tiny
stand-ins written with a manifest that describes them, as a build would leave them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from layerkit.build.archive import write_zip
from layerkit.build.manifest import ArtifactRecord, artifact_path, read_manifest, write_manifest
from layerkit.deploy.deployer import deploy, desired_state
from layerkit.deploy.ownership import INV_DEPLOY, OWNER_TAG, STACK_TAG
from layerkit.deploy.package import PACKAGED_TEMPLATE, package
from layerkit.errors import DeployError
from layerkit.project.spec import Project, load_project
from layerkit.project.template import load_yaml

from .conftest import REPO_ROOT, STAGE

pytestmark = pytest.mark.aws

STAGE_T = dataclasses.replace(STAGE, name="test")  # template: ${Stage}-x; stage prefix test-


@pytest.fixture
def project() -> Project:
    return load_project(REPO_ROOT)


@pytest.fixture
def dist(project: Project, tmp_path: Path) -> Path:
    """A dist/ with a small zip per artifact and the manifest describing them."""
    out = tmp_path / "dist"
    records = {}
    target = project.deploy_target.key
    items = [("layer", layer.name) for layer in project.layers]
    items += [("function", fn.name) for fn in project.functions]
    for kind, name in items:
        tree = tmp_path / "trees" / name
        sub = tree / "python" / name if kind == "layer" else tree
        sub.mkdir(parents=True)
        (sub / ("__init__.py" if kind == "layer" else "app.py")).write_text(
            f"def lambda_handler(event, context):\n    return {name!r}\n"
        )
        path = artifact_path(kind, name)
        info = write_zip(tree, out / path)
        records[path] = ArtifactRecord(
            kind, name, target, path, info.sha256, info.zipped_bytes, info.unzipped_bytes,
            info.files, "0" * 64,
        )  # fmt: skip
    write_manifest(out, target, records)
    return out


def bucket_keys(clients) -> set[str]:
    listed = clients.s3.list_objects_v2(Bucket=STAGE.bucket, Prefix="artifacts/")
    return {o["Key"] for o in listed.get("Contents", ())}


def test_package_uploads_each_zip_once_and_writes_the_packaged_template(clients, project, dist):
    result = package(project, STAGE_T, clients, dist, commit="abc123")

    assert len(result.uploaded) == 6
    assert bucket_keys(clients) == set(result.uploaded)
    for path, url in result.locations.items():
        key = url.removeprefix(f"s3://{STAGE.bucket}/")
        body = clients.s3.get_object(Bucket=STAGE.bucket, Key=key)["Body"].read()
        assert body == (dist / path).read_bytes()
    assert result.template == dist / PACKAGED_TEMPLATE
    doc = load_yaml(result.template.read_text())
    predictions = doc["Resources"]["Predictions"]["Properties"]
    assert predictions["CodeUri"] == {
        "Bucket": STAGE.bucket,
        "Key": result.locations["functions/predictions.zip"].split("/", 3)[3],
    }
    assert result.function_names == (
        "test-data-validation",
        "test-feature-engineering",
        "test-predictions",
    )
    assert "--template-file" in result.deploy_command("ml-test")

    again = package(project, STAGE_T, clients, dist)
    assert again.uploaded == ()
    assert set(again.reused) == set(result.uploaded)


def desired(project: Project, dist: Path):
    return desired_state(project, read_manifest(dist), dist)


def test_package_reuses_the_artifacts_inv_deploy_uploaded(clients, project, dist):
    for artifact in (*desired(project, dist).layers, *desired(project, dist).functions):
        clients.s3.put_object(
            Bucket=STAGE.bucket,
            Key=f"artifacts/{artifact.sha256}.zip",
            Body=artifact.zip_path.read_bytes(),
        )
    result = package(project, STAGE_T, clients, dist)
    assert result.uploaded == ()
    assert len(result.reused) == 6


def test_package_refuses_a_stage_inv_deploy_owns_before_uploading(clients, project, dist, clock):
    deploy(desired(project, dist), clients, STAGE_T, now=clock, owner="t")
    tags = clients.lambda_.get_function(FunctionName="test-predictions")["Tags"]
    assert tags[OWNER_TAG] == INV_DEPLOY
    for key in bucket_keys(clients):  # so that any upload would show
        clients.s3.delete_object(Bucket=STAGE.bucket, Key=key)

    with pytest.raises(
        DeployError,
        match=r"test-data-validation, test-feature-engineering, test-predictions \(deployed by "
        r"`inv deploy`, tag layerkit:owner=inv-deploy\).*`inv deploy --stage=test`",
    ):
        package(project, STAGE_T, clients, dist)
    assert bucket_keys(clients) == set()
    assert not (dist / PACKAGED_TEMPLATE).exists()


def test_package_refuses_functions_no_stack_manages(clients, project, dist):
    _function(clients, "test-data-validation", {"team": "ml"})
    with pytest.raises(DeployError, match=r"test-data-validation \(not managed by any"):
        package(project, STAGE_T, clients, dist)


def _function(clients, name: str, tags: dict[str, str]) -> None:
    """A function made outside inv deploy, with ``tags``."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "def lambda_handler(event, context):\n    return 1\n")
    clients.lambda_.create_function(
        FunctionName=name,
        Runtime="python3.9",
        Role=STAGE.role,
        Handler="app.lambda_handler",
        Code={"ZipFile": buf.getvalue()},
        Tags=tags,
    )


def test_inv_deploy_refuses_a_stage_a_stack_owns_and_changes_nothing(clients, project, dist, clock):
    # what CloudFormation leaves on a stack's function (AWS sets the aws: tags itself)
    _function(clients, "test-predictions", {STACK_TAG: "ml-test", "lambda:createdBy": "SAM"})
    for dry_run in (True, False):
        with pytest.raises(
            DeployError,
            match=r"test-predictions belongs to the CloudFormation stack ml-test .*"
            r"`inv package --stage=test`, then `sam deploy`",
        ):
            deploy(desired(project, dist), clients, STAGE_T, now=clock, owner="t", dry_run=dry_run)
    assert layer_versions_of(clients, project) == {}
    names = {f["FunctionName"] for f in clients.lambda_.list_functions()["Functions"]}
    assert names == {"test-predictions"}
    assert bucket_keys(clients) == set()  # not even an upload
    # ... while packaging for the stack's stage is what this stage wants
    assert package(project, STAGE_T, clients, dist).function_names[-1] == "test-predictions"


def layer_versions_of(clients, project: Project) -> dict[str, list[int]]:
    found = {}
    for layer in project.layers:
        listed = clients.lambda_.list_layer_versions(LayerName=STAGE_T.layer_name(layer.name))
        if listed["LayerVersions"]:
            found[layer.name] = [v["Version"] for v in listed["LayerVersions"]]
    return found
