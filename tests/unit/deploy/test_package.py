"""The packaged template, checked offline: cfn-lint, and the SAM transform (aws-sam-translator).

The real template.yaml of this repository is packaged for the staging stage; the SAM transform
must turn every layer and function into AWS::Lambda resources whose code is the S3 object the
upload put there, and cfn-lint must find no error in the file `sam deploy` is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from layerkit.check.findings import Severity
from layerkit.check.template import cfn_lint, config_file
from layerkit.deploy import package as P
from layerkit.deploy.ownership import (
    INV_DEPLOY,
    OWNER_TAG,
    STACK_TAG,
    Claim,
    Owner,
    owner_of,
    refuse_not_stack_owned,
    refuse_stack_owned,
)
from layerkit.errors import DeployError
from layerkit.project.spec import load_project
from layerkit.project.stages import get_stage
from layerkit.project.template import load_yaml

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = {
    "layers/core-data-science.zip": "artifacts/" + "1" * 64 + ".zip",
    "layers/ml-libraries.zip": "artifacts/" + "2" * 64 + ".zip",
    "layers/aws-utilities.zip": "artifacts/" + "3" * 64 + ".zip",
    "functions/data_validation.zip": "artifacts/" + "4" * 64 + ".zip",
    "functions/feature_engineering.zip": "artifacts/" + "5" * 64 + ".zip",
    "functions/predictions.zip": "artifacts/" + "6" * 64 + ".zip",
}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    project = load_project(REPO)
    stage = get_stage(REPO, "staging")
    doc = P.packaged_document(project, stage, ARTIFACTS, commit="abc123")
    path = tmp_path_factory.mktemp("dist") / P.PACKAGED_TEMPLATE
    path.write_text(P.render(doc, stage), encoding="utf-8")
    return path, load_yaml(path.read_text(encoding="utf-8"))


def test_every_zip_is_an_s3_location_in_the_stage_bucket(packaged):
    _, doc = packaged
    uris = {}
    for res in doc["Resources"].values():
        props = res["Properties"]
        uris.setdefault(res["Type"], []).append(props.get("ContentUri", props.get("CodeUri")))
    bucket = "acme-ml-pipeline-layerkit-staging"
    assert sorted(u["Key"] for us in uris.values() for u in us) == sorted(ARTIFACTS.values())
    assert {u["Bucket"] for us in uris.values() for u in us} == {bucket}
    assert doc["Parameters"]["Stage"]["Default"] == "staging"
    assert doc["Metadata"]["layerkit"]["commit"] == "abc123"


def test_the_packaged_template_passes_cfn_lint(packaged):
    path, _ = packaged
    problems = cfn_lint(path, config_file(REPO))  # the rules the repo's template is held to
    assert [p for p in problems if p.severity is Severity.ERROR] == []


def test_the_sam_transform_turns_it_into_lambda_resources_with_that_code(packaged, monkeypatch):
    from samtranslator.translator.transform import transform

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # the pseudo parameters; no AWS call

    class NoIAM:  # the template uses policy templates only: nothing to look up in IAM
        def load(self) -> dict[str, str]:
            return {}

    _, doc = packaged
    cfn = transform(doc, {}, NoIAM())  # type: ignore[arg-type]
    resources = cfn["Resources"]
    functions = {
        r["Properties"]["FunctionName"]["Fn::Sub"]: r["Properties"]["Code"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
    }
    layers = [
        r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::LayerVersion"
    ]
    bucket = "acme-ml-pipeline-layerkit-staging"
    assert functions == {
        "${Stage}-data-validation": {
            "S3Bucket": bucket,
            "S3Key": ARTIFACTS["functions/data_validation.zip"],
        },
        "${Stage}-feature-engineering": {
            "S3Bucket": bucket,
            "S3Key": ARTIFACTS["functions/feature_engineering.zip"],
        },
        "${Stage}-predictions": {
            "S3Bucket": bucket,
            "S3Key": ARTIFACTS["functions/predictions.zip"],
        },
    }
    assert sorted(layer["Content"]["S3Key"] for layer in layers) == sorted(
        v for k, v in ARTIFACTS.items() if k.startswith("layers/")
    )
    assert {layer["Content"]["S3Bucket"] for layer in layers} == {bucket}


def test_function_names_resolve_the_stage_parameter(packaged):
    _, doc = packaged
    assert P.function_names(doc) == (
        "staging-data-validation",
        "staging-feature-engineering",
        "staging-predictions",
    )
    unknown = {
        "Resources": {
            "F": {
                "Type": P.FUNCTION_TYPE,
                "Properties": {"FunctionName": {"Fn::Sub": "${AWS::StackName}-x"}},
            }
        }
    }
    assert P.function_names(unknown) == ()


def test_a_zip_the_build_did_not_produce_is_refused():
    project = load_project(REPO)
    stage = get_stage(REPO, "staging")
    partial = {k: v for k, v in ARTIFACTS.items() if "predictions" not in k}
    with pytest.raises(DeployError, match=r"names functions/predictions.zip, which the build"):
        P.packaged_document(project, stage, partial)


def test_ownership_is_read_from_the_tags_stacks_first():
    assert owner_of("f", {STACK_TAG: "s", OWNER_TAG: INV_DEPLOY}) == Claim(
        "f", Owner.CLOUDFORMATION, "s"
    )
    assert owner_of("f", {OWNER_TAG: INV_DEPLOY}).owner is Owner.INV_DEPLOY
    assert owner_of("f", {"team": "ml"}).owner is Owner.UNMARKED


def test_each_path_refuses_what_the_other_owns():
    stage = get_stage(REPO, "staging")
    stack = Claim("staging-predictions", Owner.CLOUDFORMATION, "ml-staging")
    mine = Claim("staging-predictions", Owner.INV_DEPLOY)
    hand = Claim("staging-other", Owner.UNMARKED)
    refuse_stack_owned([mine, hand], stage)  # inv deploy: its own and unmarked ones are fine
    with pytest.raises(DeployError, match=r"belongs to the CloudFormation stack ml-staging"):
        refuse_stack_owned([stack], stage)
    refuse_not_stack_owned([stack], stage)  # sam deploy updates its own stack
    with pytest.raises(DeployError, match=r"deployed by `inv deploy`.*not managed by any"):
        refuse_not_stack_owned([mine, hand], stage)


SHOP = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: dev
    AllowedValues: [dev, prod]
Globals:
  Function:
    Runtime: python3.9
    Environment:
      Variables:
        STAGE: !Ref Stage
Resources:
  BaseLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      LayerName: !Sub shop-common-${Stage}
      ContentUri: dist/layers/base.zip
      CompatibleRuntimes: [python3.9]
  TopLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: dist/layers/top.zip
      CompatibleRuntimes: [python3.9]
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: dist/functions/fn.zip
      Handler: app.handler
      Layers: [!Ref BaseLayer, !Ref TopLayer]
"""
SHOP_KEYS = {
    "layers/base.zip": "artifacts/" + "1" * 64 + ".zip",
    "layers/top.zip": "artifacts/" + "2" * 64 + ".zip",
    "functions/fn.zip": "artifacts/" + "3" * 64 + ".zip",
}


def test_a_default_outside_allowed_values_is_never_written_and_cfn_lint_passes(
    make_project, tmp_path
):
    from layerkit.project.stages import DEFAULT_LOCAL_STAGE

    project = load_project(make_project(template=SHOP))
    doc = P.packaged_document(project, DEFAULT_LOCAL_STAGE, SHOP_KEYS)
    # "local" is not among Stage's AllowedValues: the Default stays (no E2015)
    assert doc["Parameters"]["Stage"]["Default"] == "dev"
    # the intrinsics stay CloudFormation's
    assert doc["Resources"]["BaseLayer"]["Properties"]["LayerName"] == {
        "Fn::Sub": "shop-common-${Stage}"
    }
    # a function or layer without a name gets the direct deploy's name: both paths agree
    assert doc["Resources"]["Fn"]["Properties"]["FunctionName"] == "local-fn"
    assert doc["Resources"]["TopLayer"]["Properties"]["LayerName"] == "local-top"
    assert P.function_names(doc) == ("local-fn",)
    assert P.layer_names(doc) == ("shop-common-dev", "local-top")
    path = tmp_path / P.PACKAGED_TEMPLATE
    path.write_text(P.render(doc, DEFAULT_LOCAL_STAGE), encoding="utf-8")
    problems = cfn_lint(path, config_file(REPO))  # the runtime lifecycle is said elsewhere
    assert [str(p) for p in problems if p.severity is Severity.ERROR] == []


def test_the_stage_values_become_the_defaults_and_match_the_direct_deploy(make_project):
    from layerkit.project.parameters import for_stage
    from layerkit.project.stages import Stage

    project = load_project(make_project(template=SHOP))
    prod = Stage("prod", "bucket", "live", "arn:aws:iam::444455556666:role/r", prefix="p-")
    doc = P.packaged_document(project, prod, SHOP_KEYS)
    assert doc["Parameters"]["Stage"]["Default"] == "prod"
    view = for_stage(project, prod)
    assert P.function_names(doc) == tuple(view.function_names.values())
    assert P.layer_names(doc) == tuple(view.layer_names.values())
    assert view.environments["Fn"] == {"STAGE": "prod"}


def test_package_leaves_what_only_cloudformation_resolves_to_it(make_project):
    from layerkit.project.stages import DEFAULT_LOCAL_STAGE

    template = SHOP.replace("STAGE: !Ref Stage", "TABLE: !ImportValue shared-table")
    project = load_project(make_project(template=template))
    doc = P.packaged_document(project, DEFAULT_LOCAL_STAGE, SHOP_KEYS)
    env = doc["Globals"]["Function"]["Environment"]["Variables"]
    assert env == {"TABLE": {"Fn::ImportValue": "shared-table"}}


def test_package_output_lists_what_it_packaged(tmp_path):
    from layerkit.commands import PackageOutput
    from layerkit.project.stages import DEFAULT_LOCAL_STAGE

    result = P.PackageResult(
        stage="local",
        template=tmp_path / "dist" / P.PACKAGED_TEMPLATE,
        uploaded=("artifacts/1.zip",),
        reused=(),
        locations={},
        parameters={"Stage": "dev"},
        function_names=("local-fn",),
        layer_names=("shop-common-dev", "local-top"),
        stack_name="shop",
    )
    lines = PackageOutput(tmp_path, DEFAULT_LOCAL_STAGE, result).render().splitlines()
    assert "  functions: local-fn" in lines
    assert "  layers: shop-common-dev, local-top" in lines
    assert "  parameter defaults: Stage=dev" in lines
    assert lines[-1].startswith("deploy it with: sam deploy --template-file ")
    assert "--stack-name shop " in lines[-1]
