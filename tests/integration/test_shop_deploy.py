"""The shop project (tests/projects/shop/) end to end, through the `layerkit` command alone.

A copy is locked, built for its three targets and validated on all of them; the notifier (boto3
from the Lambda runtime, publishing to SNS on a moto server) and the orders API are invoked with
events from the project's events/ folder; the arm64 payments function is refused in one
paragraph on a host that cannot run it. Then the local stage: a deploy with the stage's
parameters from stages.toml (names from FunctionName/LayerName, `!Sub` resolved with the
stage), a redeploy after a code change, a rollback and the releases; last, `package` for
another stage, with cfn-lint and (when aws-sam-cli is there) `sam validate --lint` on the
packaged template. One test: each step needs the one before it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from layerkit.runtime.host import host_support
from layerkit.runtime.target import Target

pytestmark = [pytest.mark.integration, pytest.mark.aws, pytest.mark.slow]

SHOP = Path(__file__).resolve().parents[1] / "projects" / "shop"
SAM = os.environ.get("LAYERKIT_SAM") or shutil.which("sam")
ARM64 = Target("python3.12", "arm64")

# what the test adds to the stages.toml `layerkit init` writes: the local stage's parameter
# values, and a second local stage to package for (the local stage runs the direct deploy)
STAGES = """
[stages.local.parameters]
Stage = "dev"

[stages.sandbox]
local = true
region = "us-east-1"
bucket = "shop-sandbox-artifacts"
prefix = "sandbox-"
alias = "live"
role = "arn:aws:iam::123456789012:role/shop-sandbox-lambda"

[stages.sandbox.parameters]
Stage = "staging"
"""


def layerkit(root: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """``python -m layerkit --project-dir ROOT ARGS``; its exit status is checked (``ok``)."""
    done = subprocess.run(
        [sys.executable, "-m", "layerkit", "--project-dir", str(root), *args],
        capture_output=True,  # stdout piped, as in CI logs
        text=True,
        timeout=900,
        check=False,
    )
    said = f"layerkit {' '.join(args)}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert (done.returncode == 0) == ok, said
    # the `layerkit` front door names its own verbs, never the invoke tasks
    assert "`inv " not in done.stdout + done.stderr, said
    return done


def body(done: subprocess.CompletedProcess[str]) -> object:
    """The JSON body of the API response an invoke printed (the log lines around it aside)."""
    response, _ = json.JSONDecoder().raw_decode(done.stdout[done.stdout.index("{") :])
    return json.loads(response["body"])


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture
def sns_topic(tmp_path: Path):  # type: ignore[no-untyped-def]
    """An --env-vars file pointing the notifier at a moto server holding its topic."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        sns = boto3.client(
            "sns",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        # the name the template's TOPIC_ARN resolves to on the local stage (Stage=dev)
        sns.create_topic(Name="shop-orders-dev")
        env_vars = tmp_path / "env.json"
        env_vars.write_text(json.dumps({"NotifierFunction": {"AWS_ENDPOINT_URL": url}}))
        yield env_vars
    finally:
        server.stop()


def test_the_shop_project_from_lock_to_package(tmp_path: Path, sns_topic: Path) -> None:
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root)

    # lock, build every target, validate every target
    layerkit(root, "lock")
    layerkit(root, "build", "all")
    valid = layerkit(root, "validate", "all")
    assert "validation passed on python3.12-x86_64, python3.12-arm64, python3.13-x86_64" in (
        valid.stdout
    )
    assert "target python3.12-arm64:" in valid.stdout
    assert "PaymentsApiFunction" in valid.stdout  # the arm64 function's sizes are checked

    # invoke: events from the project's events/ folder, as `sam init` keeps them
    notified = layerkit(
        root, "invoke", "NotifierFunction", "--event", "notify-post.json", "--env-vars",
        str(sns_topic),
    )  # fmt: skip
    assert body(notified) == {
        "notified": "01J9ZQ4V6X"
    }  # it published to the topic with the runtime's boto3: no layer carries it
    orders = layerkit(root, "invoke", "OrdersApiFunction", "--event", "orders-post.json")
    assert body(orders)["stage"] == "dev"  # Globals' STAGE: !Ref Stage, the parameter's default

    if not host_support(ARM64).runs_code:
        refused = layerkit(
            root, "invoke", "PaymentsApiFunction", "--event", "payments-post.json", ok=False
        )
        assert refused.returncode == 1
        [paragraph] = error_lines(refused)  # one paragraph: what cannot run, what was checked
        assert "cannot invoke PaymentsApiFunction here" in paragraph
        assert "aarch64" in paragraph
        assert "Handler app.lambda_handler names a module and callable in its zip" in paragraph

    # the local stage, with the parameter values the stages file gives it
    layerkit(root, "init")
    with (root / "stages.toml").open("a", encoding="utf-8") as stages:
        stages.write(STAGES)
    deployed = layerkit(root, "deploy", "--stage", "local")
    out = deployed.stdout
    # FunctionName and LayerName of the template, `!Sub` resolved with Stage=dev
    assert "shop-orders-api-dev:live -> 1  layers: " in out
    assert ":layer:shop-common-dev:1" in out
    assert "shop-payments-api-dev:live -> 1" in out
    # the layer both targets attach: one version per target, the suffix naming it
    assert ":layer:shop-common-dev-python312-arm64:1" in out
    assert ":layer:shop-common-dev-python313-x86_64:1" in out
    assert ":layer:shop-reports-dev:1" in out
    # without a FunctionName: the stage's prefix and the function's name
    assert "local-notifier:live -> 1  layers: none" in out
    if not host_support(ARM64).runs_code:  # reported, never skipped silently
        assert (
            "health check of the new version of shop-payments-api-dev NOT RUN: this x86_64 "
            "host cannot run aarch64 code"
        ) in out  # its step, as it happens
        assert "checked statically: its zip and its layers' zips exist" in out
        assert "health check not run on this host (checked statically only): " in out
        on_stage = layerkit(
            root, "invoke", "--stage", "local", "PaymentsApiFunction", "--event",
            "payments-post.json", ok=False,
        )  # fmt: skip
        [paragraph] = error_lines(on_stage)
        assert "cannot run shop-payments-api-dev:1 on the local stage" in paragraph
        assert "retries" not in paragraph  # refused once, not retried

    # a code change: the deploy refuses the stale build, naming the zip, then redeploys
    app = root / "src" / "orders" / "api" / "app.py"
    app.write_text(app.read_text().replace('"items":', '"version": 2,\n        "items":'))
    stale = layerkit(root, "deploy", "--stage", "local", ok=False)
    assert "functions/OrdersApiFunction.zip (stale)" in stale.stderr
    assert "`layerkit build all`" in stale.stderr
    layerkit(root, "build", "all")
    redeployed = layerkit(root, "deploy", "--stage", "local")
    assert "shop-orders-api-dev:live -> 2" in redeployed.stdout
    assert "shop-payments-api-dev:live -> 1" in redeployed.stdout  # unchanged: not republished
    live = layerkit(
        root, "invoke", "--stage", "local", "OrdersApiFunction", "--event", "orders-post.json"
    )
    assert body(live)["version"] == 2

    # rollback to the first release, and the releases that recorded it
    rolled = layerkit(root, "rollback", "--stage", "local")
    assert "alias shop-orders-api-dev:live back on version 1 (was 2)" in rolled.stdout
    if not host_support(ARM64).runs_code:
        assert "health check of shop-payments-api-dev:1 not run" in rolled.stdout
    listed = layerkit(root, "releases", "--stage", "local").stdout.splitlines()
    releases = [line for line in listed if line[:1].isdigit()]  # one line per release
    assert [line.split()[1] for line in releases] == ["deploy", "deploy", "rollback"]
    assert "shop-orders-api-dev:1" in releases[-1]
    before = layerkit(
        root, "invoke", "--stage", "local", "OrdersApiFunction", "--event", "orders-post.json"
    )
    assert "version" not in body(before)

    # package for the other stage: the same names, resolved by CloudFormation
    packaged = layerkit(root, "package", "--stage", "sandbox").stdout
    assert "functions: shop-orders-api-staging, shop-payments-api-staging, " in packaged
    assert "shop-common-staging-python312-arm64" in packaged
    assert "parameter defaults: Stage=staging" in packaged
    template = root / "dist" / "template.packaged.yaml"
    doc = yaml.safe_load(template.read_text(encoding="utf-8"))
    resources = doc["Resources"]
    arm = resources["CommonLayerPython312Arm64"]["Properties"]
    assert arm["LayerName"] == {"Fn::Sub": "shop-common-${Stage}-python312-arm64"}
    assert arm["CompatibleArchitectures"] == ["arm64"]
    assert resources["PaymentsApiFunction"]["Properties"]["Layers"] == [
        {"Ref": "CommonLayerPython312Arm64"}
    ]
    assert resources["ReportsFunction"]["Properties"]["Layers"] == [
        {"Ref": "CommonLayerPython313X86"},
        {"Ref": "ReportsLayer"},
    ]
    import cfnlint.api

    text = template.read_text(encoding="utf-8")
    problems = [m for m in cfnlint.api.lint_all(text) if m.rule.id[0] in "EW"]
    assert problems == []
    if SAM is not None:
        done = subprocess.run(
            [SAM, "validate", "--lint", "--template-file", str(template)],
            cwd=root,
            env={**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
