"""Shared fixtures: small projects on disk, built from text, for spec/lock/build tests."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.9
    Architectures: [x86_64]
Resources:
  BaseLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
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

LAYER_TOML = """\
requires = {requires}
budget = "10 MB"
runtimes = ["python3.9"]
"""


def write_project(
    root: Path,
    layers: Mapping[str, tuple[list[str], str]],
    template: str = TEMPLATE,
    functions: Mapping[str, str] | None = None,
) -> Path:
    """Write a project: layers maps name -> (requires, requirements text)."""
    for name, (requires, reqs) in layers.items():
        folder = root / "layers" / name
        folder.mkdir(parents=True, exist_ok=True)
        quoted = "[" + ", ".join(f'"{r}"' for r in requires) + "]"
        (folder / "layer.toml").write_text(LAYER_TOML.format(requires=quoted))
        (folder / "requirements.txt").write_text(textwrap.dedent(reqs))
    for name, code in (functions or {"fn": "def handler(event, context):\n    return 1\n"}).items():
        folder = root / "functions" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "app.py").write_text(code)
        (folder / "requirements.txt").write_text("")
    (root / "template.yaml").write_text(template)
    return root


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """Factory for small projects under tmp_path."""

    def make(layers: Mapping[str, tuple[list[str], str]] | None = None, **kwargs: object) -> Path:
        layers = layers or {"base": ([], "six==1.17.0\n"), "top": (["base"], "pytz\n")}
        return write_project(tmp_path / "proj", layers, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A copy of this repository's project files (layers, functions, template, locks)."""
    dest = tmp_path / "repo"
    for name in ("layers", "functions", "locks"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "template.yaml", dest / "template.yaml")
    return dest
