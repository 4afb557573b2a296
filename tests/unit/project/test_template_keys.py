"""Duplicate keys in template.yaml are an error with both line numbers, at any depth."""

from pathlib import Path

import pytest

from layerkit.errors import SpecError
from layerkit.project.template import DuplicateKeyError, load_yaml, parse_template
from tests.conftest import TEMPLATE

P = Path("template.yaml")


def test_a_duplicate_logical_id_names_both_lines() -> None:
    text = TEMPLATE + "  BaseLayer:\n    Type: AWS::Serverless::LayerVersion\n"
    first = next(i for i, line in enumerate(text.splitlines(), 1) if line == "  BaseLayer:")
    last = len(text.splitlines()) - 1
    with pytest.raises(SpecError) as info:
        parse_template(text, P)
    message = str(info.value)
    assert message.startswith("template.yaml: ")
    assert f"the key `BaseLayer` is given twice in one mapping, at line {first}" in message
    assert f"again at line {last}" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb:\n  c: 1\n  c: 2\n",  # nested
        "a: !Sub\n  x: 1\n  x: 2\n",  # inside a short tag
        "a: [{k: 1, k: 2}]\n",  # in a flow mapping inside a list
    ],
)
def test_duplicates_anywhere_are_refused(text: str) -> None:
    with pytest.raises(DuplicateKeyError, match=r"given twice in one mapping, at line \d+"):
        load_yaml(text)


def test_same_key_in_different_mappings_is_fine() -> None:
    assert load_yaml("a: {k: 1}\nb: {k: 2}\n") == {"a": {"k": 1}, "b": {"k": 2}}
    assert load_yaml("base: &b {k: 1}\nother:\n  <<: *b\n  j: 2\n")["other"] == {"k": 1, "j": 2}
