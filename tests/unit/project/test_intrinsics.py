"""The intrinsic resolver: every function layerkit resolves, and the errors it gives."""

from __future__ import annotations

import pytest

from layerkit.errors import SpecError
from layerkit.project.intrinsics import (
    IntrinsicError,
    Symbols,
    Unresolvable,
    condition,
    contains_intrinsic,
    resolve,
)
from layerkit.project.template import load_yaml

SYMBOLS = Symbols(
    parameters={"Stage": "dev", "Subnets": ("a", "b", "c"), "Size": "3"},
    pseudo={
        "AWS::Region": "eu-west-1",
        "AWS::AccountId": "111122223333",
        "AWS::Partition": "aws",
        "AWS::StackName": "shop-dev",
        "AWS::URLSuffix": "amazonaws.com",
    },
    refs={"Orders": "shop-orders-dev"},
    attributes={("Orders", "Arn"): "arn:aws:lambda:eu-west-1:111122223333:function:shop-orders"},
    resources={"Orders": "AWS::Serverless::Function", "Table": "AWS::DynamoDB::Table"},
    pending={"Common": "a layer version ARN, known only once that version is published"},
    mappings={"Sizes": {"dev": {"Memory": 256}, "prod": {"Memory": 1024}}},
    conditions={
        "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
        "IsDev": {"Fn::Not": [{"Condition": "IsProd"}]},
        "Both": {"Fn::And": [{"Condition": "IsDev"}, {"Fn::Equals": ["a", "a"]}]},
        "Either": {"Fn::Or": [{"Condition": "IsProd"}, {"Fn::Equals": ["x", "y"]}]},
        "Loop": {"Condition": "Loop2"},
        "Loop2": {"Fn::Not": [{"Condition": "Loop"}]},
    },
)


def r(yaml_text: str) -> object:
    return resolve(load_yaml(f"v: {yaml_text}")["v"], SYMBOLS, "template.yaml: X")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!Ref Stage", "dev"),
        ("!Ref Subnets", ["a", "b", "c"]),
        ("!Ref AWS::Region", "eu-west-1"),
        ("!Ref AWS::AccountId", "111122223333"),
        ("!Ref AWS::Partition", "aws"),
        ("!Ref AWS::StackName", "shop-dev"),
        ("!Ref AWS::URLSuffix", "amazonaws.com"),
        ("!Ref Orders", "shop-orders-dev"),
        ("!Sub shop-${Stage}-${AWS::Region}", "shop-dev-eu-west-1"),
        ("!Sub '${!Literal}-${Stage}'", "${Literal}-dev"),
        ("!Sub ['${A}-${Stage}', {A: !Ref AWS::AccountId}]", "111122223333-dev"),
        ("!Sub '${Orders.Arn}'", "arn:aws:lambda:eu-west-1:111122223333:function:shop-orders"),
        ("!GetAtt Orders.Arn", "arn:aws:lambda:eu-west-1:111122223333:function:shop-orders"),
        ("!GetAtt [Orders, Arn]", "arn:aws:lambda:eu-west-1:111122223333:function:shop-orders"),
        ("!If [IsProd, big, small]", "small"),
        ("!If [IsDev, big, small]", "big"),
        ("!If [Both, big, small]", "big"),
        ("!If [Either, big, small]", "small"),
        ("!Join ['-', [a, !Ref Stage, 3]]", "a-dev-3"),
        ("!Join [',', !Ref Subnets]", "a,b,c"),
        ("!Select [1, !Ref Subnets]", "b"),
        ("!Select ['0', [x, y]]", "x"),
        ("!Split [',', 'a,b']", ["a", "b"]),
        ("!Select [2, !Split ['-', !Sub 'x-y-${Stage}']]", "dev"),
        ("!FindInMap [Sizes, !Ref Stage, Memory]", 256),
        ("!FindInMap [Sizes, test, Memory, {DefaultValue: 128}]", 128),
        ("!Base64 hi", "aGk="),
        ("{Fn::Join: ['', [a, b]]}", "ab"),
        ("plain", "plain"),
    ],
)
def test_every_intrinsic_resolves(text: str, expected: object) -> None:
    assert r(text) == expected


def test_no_value_removes_the_key_or_item() -> None:
    value = load_yaml(
        "A: !If [IsProd, x, !Ref AWS::NoValue]\nB: keep\nL: [1, !If [IsProd, 2, !Ref AWS::NoValue]]"
    )
    assert resolve(value, SYMBOLS, "t") == {"B": "keep", "L": [1]}


def test_condition_evaluates_and_refuses_cycles() -> None:
    assert condition("IsDev", SYMBOLS, "t") is True
    with pytest.raises(IntrinsicError, match="cycle: Loop -> Loop2 -> Loop"):
        condition("Loop", SYMBOLS, "t")
    with pytest.raises(IntrinsicError, match="condition 'Nope' is not defined"):
        r("!If [Nope, a, b]")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("!ImportValue shared-vpc", "Fn::ImportValue, which only CloudFormation resolves"),
        ("!GetAZs ''", "Fn::GetAZs"),
        ("!GetAtt Table.Arn", "reads a AWS::DynamoDB::Table, which layerkit does not deploy"),
        ("!Ref Table", "names a AWS::DynamoDB::Table, which layerkit does not deploy"),
        ("!Ref Common", "a layer version ARN, known only once that version is published"),
        ("!GetAtt Orders.FunctionUrl", "layerkit knows Arn"),
        ("!Ref AWS::NotificationARNs", "pseudo parameter"),
        ("!Sub '${Table.StreamArn}'", "Table.StreamArn"),
    ],
)
def test_what_only_cloudformation_knows_is_one_paragraph(text: str, says: str) -> None:
    with pytest.raises(Unresolvable) as caught:
        r(text)
    message = str(caught.value)
    assert says in message
    assert message.startswith("template.yaml: X: ")
    assert "`layerkit package`" in message
    assert "`sam deploy`" in message
    assert "\n" not in message
    assert isinstance(caught.value, SpecError)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("!Ref Nope", "`Ref Nope` names no parameter or resource"),
        ("!GetAtt Nope.Arn", "names no resource of the template"),
        ("!Select [5, [a]]", "index 5 is outside the list of 1 item(s)"),
        ("!FindInMap [Sizes, test, Memory]", "no top-level key 'test'"),
        ("!FindInMap [Nope, a, b]", "no mapping 'Nope'"),
        ("!If [IsProd, a]", "Fn::If takes [condition"),
        ("!Join [',']", "Fn::Join takes [delimiter, list]"),
        ("!Sub [a, b, c]", "Fn::Sub takes a string or"),
        ("{Fn::Frobnicate: x}", "unknown intrinsic function Fn::Frobnicate"),
        ("!Sub '${Subnets}'", "not a string"),
    ],
)
def test_bad_intrinsics_name_the_problem(text: str, says: str) -> None:
    with pytest.raises(IntrinsicError, match=None) as caught:
        r(text)
    assert not isinstance(caught.value, Unresolvable)
    assert says in str(caught.value)


def test_contains_intrinsic() -> None:
    assert contains_intrinsic({"A": ["x", {"Ref": "Stage"}]})
    assert not contains_intrinsic({"A": ["x", {"Ref": "Stage", "Other": 1}]})
    assert not contains_intrinsic("text")


def test_an_unknown_region_says_where_to_set_it() -> None:
    no_region = Symbols(pseudo={"AWS::Partition": "aws"})
    with pytest.raises(IntrinsicError, match=r"not known for this stage; set the stage's `region`"):
        resolve({"Fn::Sub": "x-${AWS::Region}"}, no_region, "t")
