from pathlib import Path

import pytest

from layerkit.errors import SpecError
from layerkit.project.template import load_yaml, parse_template

P = Path("template.yaml")


def test_short_tags_become_long_forms() -> None:
    doc = load_yaml("a: !Ref X\nb: !GetAtt Fn.Arn\nc: !Sub '${S}-x'\nd: !Join [',', [a, b]]\n")
    assert doc == {
        "a": {"Ref": "X"},
        "b": {"Fn::GetAtt": ["Fn", "Arn"]},
        "c": {"Fn::Sub": "${S}-x"},
        "d": {"Fn::Join": [",", ["a", "b"]]},
    }


def test_globals_apply_and_layers_resolve_in_order() -> None:
    from tests.conftest import TEMPLATE

    template = parse_template(TEMPLATE, P)
    (fn,) = template.functions
    assert (fn.name, fn.runtime, fn.architecture, fn.layers) == (
        "fn",
        "python3.9",
        "x86_64",
        ("base", "top"),
    )


def test_unknown_layer_reference_is_named() -> None:
    text = """
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: dist/functions/fn.zip, Handler: app.h, Runtime: python3.9, Layers: [!Ref Nope]}
"""
    with pytest.raises(SpecError, match=r"function Fn attaches layer .*Nope"):
        parse_template(text, P)


def test_function_without_runtime_is_named() -> None:
    text = "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: dist/functions/fn.zip, Handler: a.b}\n"
    with pytest.raises(SpecError, match="function Fn has no Runtime"):
        parse_template(text, P)


@pytest.mark.parametrize(
    ("prop", "message"),
    [
        ("MemorySize: !Ref Mem", "MemorySize must be a literal number"),
        ("Architectures: !Ref Arch", "Architectures must be a literal list"),
        ("Runtime: !Ref Rt", "Runtime must be a literal string"),
    ],
)
def test_non_literal_properties_layerkit_needs_are_named(prop: str, message: str) -> None:
    # one Runtime only: a key given twice is an error of its own (test_template_keys.py)
    runtime = "" if prop.startswith("Runtime:") else "Runtime: python3.9"
    text = f"""
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: dist/functions/fn.zip
      Handler: app.h
      {runtime}
      {prop}
"""
    with pytest.raises(SpecError, match=message):
        parse_template(text, P)


def test_globals_must_be_a_mapping() -> None:
    with pytest.raises(SpecError, match="`Globals` must be a mapping"):
        parse_template("Globals: [a]\nResources: {}\n", P)


@pytest.mark.parametrize(
    ("code_uri", "name", "source_dir"),
    [
        ("dist/functions/fn.zip", "fn", None),
        ("hello_world/", "hello_world", "hello_world"),  # what `sam init` writes
        ("src/handlers/orders", "orders", "src/handlers/orders"),
    ],
)
def test_code_uri_is_the_built_zip_or_the_source_folder(
    code_uri: str, name: str, source_dir: str | None
) -> None:
    from tests.conftest import TEMPLATE

    text = TEMPLATE.replace("CodeUri: dist/functions/fn.zip", f"CodeUri: {code_uri}")
    (fn,) = parse_template(text, P).functions
    assert (fn.name, fn.source_dir, fn.code_uri) == (name, source_dir, code_uri)


@pytest.mark.parametrize("code_uri", ["../elsewhere", "/abs/fn", "s3://bucket/fn", "3"])
def test_a_code_uri_outside_the_project_is_refused(code_uri: str) -> None:
    from tests.conftest import TEMPLATE

    text = TEMPLATE.replace("CodeUri: dist/functions/fn.zip", f"CodeUri: {code_uri}")
    with pytest.raises(SpecError, match=r"Fn: CodeUri must name the function's source folder"):
        parse_template(text, P)
