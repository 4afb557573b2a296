from pathlib import Path

import pytest

from layerkit.errors import SpecError
from layerkit.project.upgrade import upgrade_layer_toml, upgrade_template

REPO = Path(__file__).resolve().parents[3]

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.9   # the deploy runtime
    Architectures: [x86_64]
Resources:
  Core:
    Type: AWS::Serverless::LayerVersion
    Properties:
      LayerName: !Sub "${Stage}-core"
      ContentUri: dist/layers/core.zip
      CompatibleRuntimes: [python3.9, "python3.10"]
  Block:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: dist/layers/block.zip
      CompatibleRuntimes:
        - python3.9
        - python3.11
      # a comment below the list
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: 'python3.9'
      CodeUri: dist/functions/fn.zip
      Layers: [!Ref Core]
"""


def test_template_upgrade_changes_runtime_values_only(tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    change = upgrade_template(path, "python3.12")
    assert change.after == (
        TEMPLATE.replace("Runtime: python3.9   #", "Runtime: python3.12   #")
        .replace('[python3.9, "python3.10"]', "[python3.12]")
        .replace("- python3.9\n        - python3.11", "- python3.12")
        .replace("Runtime: 'python3.9'", "Runtime: python3.12")
    )
    assert change.changes == (
        "Globals.Function.Runtime: python3.9 -> python3.12",
        'Core.CompatibleRuntimes: python3.9, "python3.10" -> python3.12',
        "Block.CompatibleRuntimes: python3.9\n        - python3.11 -> python3.12",
        "Fn.Runtime: 'python3.9' -> python3.12",
    )


def test_template_already_on_runtime_is_unchanged(tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    once = upgrade_template(path, "python3.12")
    path.write_text(once.after)
    again = upgrade_template(path, "python3.12")
    assert not again.changed
    assert again.changes == ()


def test_repo_template_upgrade_keeps_every_other_line():
    change = upgrade_template(REPO / "template.yaml", "python3.12")
    before, after = change.before.splitlines(), change.after.splitlines()
    assert len(before) == len(after)
    differing = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert (
        differing
        == [("    Runtime: python3.9", "    Runtime: python3.12")]
        + [("      CompatibleRuntimes: [python3.9]", "      CompatibleRuntimes: [python3.12]")] * 3
    )


def test_invalid_template_names_the_file(tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text("Resources: [unclosed\n")
    with pytest.raises(SpecError, match=r"template\.yaml: not valid YAML"):
        upgrade_template(path, "python3.12")


def test_layer_toml_gains_the_runtime_first_and_keeps_comments(tmp_path):
    path = tmp_path / "layer.toml"
    path.write_text('budget = "100 MB"  # unzipped\nruntimes = ["python3.9"]  # targets\n')
    change = upgrade_layer_toml(path, "python3.12")
    assert change.after == (
        'budget = "100 MB"  # unzipped\nruntimes = ["python3.12", "python3.9"]  # targets\n'
    )
    path.write_text(change.after)
    assert not upgrade_layer_toml(path, "python3.12").changed


def test_layer_toml_without_runtimes_gets_the_default_and_the_new_one(tmp_path):
    path = tmp_path / "layer.toml"
    path.write_text('budget = "10 MB"\n')
    change = upgrade_layer_toml(path, "python3.12")
    assert 'runtimes = ["python3.12", "python3.9"]' in change.after


def test_layer_toml_bad_runtimes_is_one_paragraph(tmp_path):
    path = tmp_path / "layer.toml"
    path.write_text("runtimes = 3\n")
    with pytest.raises(SpecError, match=r"layer\.toml: `runtimes` must be a list"):
        upgrade_layer_toml(path, "python3.12")


def test_version_moves_lists_changed_added_and_removed():
    from layerkit.project.upgrade import version_moves

    moves = version_moves(
        {"numpy": "2.0.2", "six": "1.17.0", "urllib3": "1.26.20"},
        {"numpy": "2.2.6", "six": "1.17.0", "tzdata": "2025.2"},
    )
    assert [m.describe() for m in moves] == [
        "numpy 2.0.2 -> 2.2.6",
        "+ tzdata 2025.2",
        "- urllib3 1.26.20",
    ]
