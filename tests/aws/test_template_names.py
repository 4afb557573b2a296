"""The direct deploy names functions and layers as the template does, per stage; the health
check event a function's Metadata names is what deploy AND rollback send (moto)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from layerkit.deploy.clients import Clients
from layerkit.deploy.deployer import desired_state
from layerkit.deploy.rollback import rollback
from layerkit.project.parameters import for_stage
from layerkit.project.spec import load_project
from tests.conftest import TEMPLATE, write_project

from .conftest import STAGE, tiny_zip

pytestmark = pytest.mark.aws

NAMED = (
    TEMPLATE.replace(
        "Resources:",
        """Parameters:
  Stage: {Type: String, Default: dev, AllowedValues: [dev, test, prod]}
Resources:""",
    )
    .replace(
        "  Fn:\n    Type: AWS::Serverless::Function\n",
        """  Fn:
    Type: AWS::Serverless::Function
    Metadata:
      layerkit:
        health-check: {ping: health}
""",
    )
    .replace(
        "      Handler: app.handler\n",
        """      Handler: app.handler
      FunctionName: !Sub shop-fn-${Stage}
      Environment:
        Variables:
          STAGE: !Ref Stage
          SELF: !GetAtt Fn.Arn
""",
    )
    .replace(
        "      ContentUri: dist/layers/base.zip\n",
        "      ContentUri: dist/layers/base.zip\n      LayerName: !Sub shop-base-${Stage}\n",
    )
)


def build(root: Path, version: str) -> dict[str, Any]:
    """Tiny zips for base, top and fn in dist/, and their manifest records."""
    files = {
        "layers/base.zip": {"python/base/__init__.py": "X = 1\n"},
        "layers/top.zip": {"python/top/__init__.py": "Y = 1\n"},
        "functions/fn.zip": {"app.py": f"def handler(event, context):\n    return {version!r}\n"},
    }
    records = {}
    for rel, content in files.items():
        data = tiny_zip(root / "dist" / rel, content).read_bytes()
        records[rel] = {"sha256": hashlib.sha256(data).hexdigest(), "zipped_bytes": len(data)}
    return records


def invoked_payloads(clients: Clients) -> list[tuple[str, bytes]]:
    """Record (FunctionName, Payload) of every Invoke made through ``clients``."""
    seen: list[tuple[str, bytes]] = []

    def handler(params: dict[str, Any], **_: Any) -> None:
        seen.append((params["FunctionName"], params.get("Payload", b"")))

    clients.lambda_.meta.events.register("before-parameter-build.lambda.Invoke", handler)
    return seen


def test_names_environment_and_health_checks_come_from_the_template(
    clients: Clients, run_deploy: Callable[..., Any], clock: Any, tmp_path: Path
) -> None:
    root = write_project(
        tmp_path / "proj",
        {"base": ([], "six\n"), "top": (["base"], "pytz\n")},
        template=NAMED,
    )
    project = load_project(root)
    view = for_stage(project, STAGE)
    payloads = invoked_payloads(clients)

    run_deploy(desired_state(project, build(root, "1"), root / "dist", view=view))
    names = {f["FunctionName"] for f in clients.lambda_.list_functions()["Functions"]}
    assert names == {"shop-fn-test"}  # FunctionName, resolved for the stage
    layers = {x["LayerName"] for x in clients.lambda_.list_layers()["Layers"]}
    assert layers == {"shop-base-test", "test-top"}  # LayerName; absent: prefix + folder
    config = clients.lambda_.get_function_configuration(FunctionName="shop-fn-test")
    assert config["Environment"]["Variables"] == {
        "STAGE": "test",
        "SELF": "arn:aws:lambda:us-east-1:123456789012:function:shop-fn-test",
    }
    assert payloads == [("shop-fn-test:1", b'{"ping": "health"}')]

    # unchanged: the stage is read under the template's names, so nothing is planned
    again = run_deploy(desired_state(project, build(root, "1"), root / "dist", view=view))
    assert again.steps == ()

    run_deploy(desired_state(project, build(root, "2"), root / "dist", view=view))
    payloads.clear()
    from layerkit.commands import _health_events

    outcome = rollback(
        clients, STAGE, owner="pytest", now=clock, health_events=_health_events(project)
    )
    assert [f.function_name for f in outcome.target.functions] == ["shop-fn-test"]
    # the rollback's health check sends the event the function's Metadata names
    assert payloads == [("shop-fn-test:1", b'{"ping": "health"}')]
    live = clients.lambda_.get_alias(FunctionName="shop-fn-test", Name=STAGE.alias)
    assert live["FunctionVersion"] == "1"
    assert json.loads(payloads[0][1]) == {"ping": "health"}
