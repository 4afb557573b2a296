"""Parameters and their per-stage values, samconfig.toml, names, Environment, health checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from layerkit.errors import SpecError
from layerkit.project.intrinsics import Unresolvable
from layerkit.project.parameters import (
    DEFAULT_HEALTH_PAYLOAD,
    for_stage,
    health_events,
    parameter_values,
    parse_overrides,
    read_parameters,
    read_samconfig,
)
from layerkit.project.spec import load_project
from layerkit.project.stages import DEFAULT_LOCAL_STAGE, Stage, get_stage, parse_stages
from layerkit.project.template import load_yaml
from tests.conftest import TEMPLATE

PARAMS = load_yaml(
    """
Parameters:
  Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Owner: {Type: String}
  Size: {Type: Number, Default: 3}
  Zones: {Type: CommaDelimitedList, Default: "a, b"}
  Code: {Type: String, Default: ab1, AllowedPattern: "[a-z]+[0-9]"}
"""
)
STAGED = (
    TEMPLATE.replace(
        "Resources:",
        """Parameters:
  Stage: {Type: String, Default: dev, AllowedValues: [dev, local, prod]}
  LogLevel: {Type: String, Default: INFO}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Mappings:
  Memory: {dev: {Size: 256}, local: {Size: 128}, prod: {Size: 1024}}
Resources:""",
    )
    .replace(
        "      Handler: app.handler\n",
        """      Handler: app.handler
      FunctionName: !Sub shop-fn-${Stage}
      Environment:
        Variables:
          STAGE: !Ref Stage
          LEVEL: !If [IsProd, WARNING, !Ref LogLevel]
          SIZE: !FindInMap [Memory, !Ref Stage, Size]
          SELF: !GetAtt Fn.Arn
          REGION: !Sub "${AWS::Region}/${AWS::AccountId}/${AWS::StackName}"
          GONE: !If [IsProd, x, !Ref AWS::NoValue]
""",
    )
    .replace(
        "      ContentUri: dist/layers/base.zip\n",
        "      ContentUri: dist/layers/base.zip\n      LayerName: !Sub shop-base-${Stage}\n",
    )
)
PROD = Stage(
    name="prod",
    bucket="b",
    alias="live",
    role="arn:aws:iam::444455556666:role/r",
    prefix="prod-",
    region="eu-west-1",
)


def test_parameters_are_read_with_their_types() -> None:
    params = {p.name: p for p in read_parameters(PARAMS, "t.yaml")}
    assert params["Stage"].allowed_values == ("dev", "prod")
    assert params["Size"].default == "3"
    assert params["Zones"].is_list


def test_values_come_from_default_stage_name_and_sources_later_winning() -> None:
    params = read_parameters(PARAMS, "t.yaml")
    values = parameter_values(
        params, "prod", [("samconfig", {"Owner": "sam", "Size": "4"}), ("cli", {"Size": "5"})], "t"
    )
    assert values == {
        "Stage": "prod",  # the stage's name: it is among the AllowedValues
        "Owner": "sam",
        "Size": "5",
        "Zones": ("a", "b"),
        "Code": "ab1",
    }
    # a stage whose name is not allowed keeps the Default (never a value outside AllowedValues)
    assert parameter_values(params, "local", [("s", {"Owner": "x"})], "t")["Stage"] == "dev"


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"Owner": "x", "Stage": "qa"}, "which its AllowedValues do not include (dev, prod)"),
        ({"Owner": "x", "Size": "big"}, "parameter Size is a Number, but its value is 'big'"),
        ({"Owner": "x", "Code": "AB"}, "does not match its AllowedPattern"),
        ({"Owner": "x", "Nope": "1"}, "sets parameter Nope, which t.yaml does not declare"),
        ({}, "parameter Owner has no Default and no value for stage 'dev'"),
    ],
)
def test_bad_values_are_one_paragraph(given: dict[str, str], says: str) -> None:
    params = read_parameters(PARAMS, "t.yaml")
    with pytest.raises(SpecError) as caught:
        parameter_values(params, "dev", [("stages.toml [stages.dev.parameters]", given)], "t.yaml")
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_parse_overrides_takes_sams_forms() -> None:
    assert parse_overrides('A=1 B="two words" ParameterKey=C,ParameterValue=x=y', "cli") == {
        "A": "1",
        "B": "two words",
        "C": "x=y",
    }
    assert parse_overrides(["A=1", "B=2"], "cli") == {"A": "1", "B": "2"}
    with pytest.raises(SpecError, match="'oops' is not Key=Value"):
        parse_overrides("oops", "cli")


def test_samconfig_env_of_the_stage_else_default(tmp_path: Path) -> None:
    assert read_samconfig(tmp_path, "dev").parameter_overrides == {}
    (tmp_path / "samconfig.toml").write_text(
        """
version = 0.1
[default.deploy.parameters]
stack_name = "shop"
parameter_overrides = "Stage=dev Owner=team"
[prod.global.parameters]
parameter_overrides = ["Owner=ops", "Stage=prod"]
[prod.deploy.parameters]
stack_name = "shop-prod"
parameter_overrides = "Stage=prod"
"""
    )
    prod = read_samconfig(tmp_path, "prod")
    assert (prod.env, prod.stack_name) == ("prod", "shop-prod")
    assert prod.parameter_overrides == {"Owner": "ops", "Stage": "prod"}
    other = read_samconfig(tmp_path, "qa")
    assert (other.env, other.stack_name, other.parameter_overrides["Owner"]) == (
        "default",
        "shop",
        "team",
    )
    (tmp_path / "samconfig.toml").write_text("[default\n")
    with pytest.raises(SpecError, match=r"samconfig\.toml: not valid TOML"):
        read_samconfig(tmp_path, "dev")


def test_stage_parameters_table_is_read() -> None:
    stages = parse_stages(
        {
            "stages": {
                "dev": {
                    "bucket": "b",
                    "alias": "live",
                    "role": "arn:aws:iam::111122223333:role/r",
                    "parameters": {"Stage": "dev", "Zones": ["a", "b"], "Size": 3},
                }
            }
        },
        "stages.toml",
    )
    assert stages["dev"].parameters == (("Stage", "dev"), ("Zones", "a,b"), ("Size", "3"))
    with pytest.raises(SpecError, match="parameters must be a table"):
        parse_stages(
            {"stages": {"dev": {**{"bucket": "b", "alias": "a"}, "role": "x", "parameters": 1}}},
            "s",
        )


def test_the_stage_view_resolves_names_and_environment(
    make_project: Callable[..., Path],
) -> None:
    project = load_project(make_project(template=STAGED))
    view = for_stage(project, PROD)
    assert view.function_names == {"Fn": "shop-fn-prod"}
    # LayerName from the template; a layer without one: the stage's prefix + its folder name
    assert view.layer_names == {"BaseLayer": "shop-base-prod", "TopLayer": "prod-top"}
    assert view.environments["Fn"] == {
        "STAGE": "prod",
        "LEVEL": "WARNING",
        "SIZE": "1024",
        "SELF": "arn:aws:lambda:eu-west-1:444455556666:function:shop-fn-prod",
        "REGION": "eu-west-1/444455556666/layerkit-prod",
        "GONE": "x",
    }
    local = for_stage(project, DEFAULT_LOCAL_STAGE, overrides={"LogLevel": "DEBUG"})
    assert local.function_names == {"Fn": "shop-fn-local"}
    assert local.environments["Fn"]["LEVEL"] == "DEBUG"
    assert "GONE" not in local.environments["Fn"]


def test_stages_toml_beats_samconfig_and_the_command_line_beats_both(
    make_project: Callable[..., Path],
) -> None:
    root = make_project(template=STAGED)
    (root / "samconfig.toml").write_text(
        '[default.deploy.parameters]\nparameter_overrides = "LogLevel=SAM Stage=dev"\n'
        'stack_name = "shop"\n'
    )
    (root / "stages.toml").write_text(
        '[stages.local]\nlocal = true\nbucket = "b"\nalias = "live"\n'
        'role = "arn:aws:iam::123456789012:role/r"\nregion = "us-east-1"\n'
        '[stages.local.parameters]\nLogLevel = "STAGES"\n'
    )
    project = load_project(root)
    stage = get_stage(root, "local")
    view = for_stage(project, stage)
    assert view.environments["Fn"]["LEVEL"] == "STAGES"
    assert view.environments["Fn"]["STAGE"] == "dev"  # samconfig's value beats the stage name
    assert view.stack_name == "shop"
    assert (
        for_stage(project, stage, overrides={"LogLevel": "CLI"}).environments["Fn"]["LEVEL"]
        == "CLI"
    )


def test_an_unresolvable_environment_names_resource_property_and_way_out(
    make_project: Callable[..., Path],
) -> None:
    template = STAGED.replace(
        "          STAGE: !Ref Stage\n", "          TABLE: !ImportValue shared-table\n"
    )
    project = load_project(make_project(template=template))
    with pytest.raises(Unresolvable) as caught:
        for_stage(project, PROD)
    message = str(caught.value)
    assert message.startswith("template.yaml: Fn Environment variable TABLE: it uses")
    assert "`layerkit package`" in message
    assert "`sam deploy`" in message


def test_a_value_outside_allowed_values_from_stages_toml_is_refused(
    make_project: Callable[..., Path],
) -> None:
    project = load_project(make_project(template=STAGED))
    qa = Stage("qa", "b", "live", "arn:aws:iam::1:role/r", parameters=(("Stage", "qa"),))
    with pytest.raises(SpecError, match=r"stages.toml \[stages.qa.parameters\], stage 'qa'"):
        for_stage(project, qa)


def test_health_check_selection(make_project: Callable[..., Path]) -> None:
    root = make_project(
        template=TEMPLATE
        + """  Other:
    Type: AWS::Serverless::Function
    Metadata:
      layerkit:
        health-check: {ping: true}
    Properties:
      CodeUri: dist/functions/other.zip
      Handler: app.handler
  Third:
    Type: AWS::Serverless::Function
    Metadata:
      layerkit:
        health-check: events/probe.json
    Properties:
      CodeUri: dist/functions/third.zip
      Handler: app.handler
""",
        functions={"fn": "", "other": "", "third": ""},
    )
    (root / "events").mkdir()
    (root / "events" / "probe.json").write_text('{"probe": 1}')
    project = load_project(root)
    events = health_events(project)
    assert events["Fn"] == DEFAULT_HEALTH_PAYLOAD
    assert json.loads(events["Other"]) == {"ping": True}
    assert events["Third"] == b'{"probe": 1}'  # the project's events/ when the folder has none
    (root / "functions" / "fn" / "events").mkdir()
    (root / "functions" / "fn" / "events" / "health.json").write_text('{"old": "convention"}')
    assert health_events(project)["Fn"] == b'{"old": "convention"}'
    (root / "events" / "probe.json").unlink()
    with pytest.raises(SpecError, match=r"health-check is .events/probe\.json.; name an event"):
        health_events(project)


def test_samconfig_yaml_is_read_too(tmp_path: Path) -> None:
    (tmp_path / "samconfig.yaml").write_text(
        "version: 0.1\ndefault:\n  deploy:\n    parameters:\n"
        "      stack_name: shop\n      parameter_overrides: Stage=dev Owner=team\n"
    )
    found = read_samconfig(tmp_path, "prod")
    assert (found.file, found.env, found.stack_name) == ("samconfig.yaml", "default", "shop")
    assert found.parameter_overrides == {"Stage": "dev", "Owner": "team"}


def test_a_resource_whose_condition_is_false_on_a_stage_is_left_out(
    make_project: Callable[..., Path],
) -> None:
    template = STAGED.replace(
        "  TopLayer:\n    Type: AWS::Serverless::LayerVersion\n",
        "  TopLayer:\n    Type: AWS::Serverless::LayerVersion\n    Condition: IsProd\n",
    )
    project = load_project(make_project(template=template))
    assert for_stage(project, PROD).excluded == {}
    local = for_stage(project, DEFAULT_LOCAL_STAGE)
    assert local.excluded == {"TopLayer": "IsProd"}
    assert local.not_deployed() == (
        "TopLayer is not deployed to stage local: its Condition IsProd is false there",
    )


@pytest.mark.parametrize(
    ("condition", "says"),
    [
        ("IsStaging", "condition 'IsStaging' is not defined under the template's Conditions"),
        ("[IsProd]", "is not a condition name"),
    ],
)
def test_a_bad_resource_condition_is_one_paragraph(
    make_project: Callable[..., Path], condition: str, says: str
) -> None:
    template = STAGED.replace(
        "  Fn:\n    Type: AWS::Serverless::Function\n",
        f"  Fn:\n    Type: AWS::Serverless::Function\n    Condition: {condition}\n",
    )
    project = load_project(make_project(template=template))
    with pytest.raises(SpecError) as info:
        for_stage(project, PROD)
    assert "template.yaml: Fn Condition" in str(info.value)
    assert says in str(info.value)
