from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from layerkit.check.invocation import invoke_function
from layerkit.errors import SandboxError
from layerkit.project.spec import load_project
from layerkit.runtime.target import Target, find_interpreter

ROOT = Path(__file__).resolve().parents[3]
PY39 = Target("python3.9")


@pytest.fixture(scope="module")
def interpreter() -> Path:
    return find_interpreter(PY39, cwd=ROOT)


def make_zip(path: Path, files: Mapping[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


TEMPLATE = """\
Resources:
  BaseLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: dist/layers/base.zip
  TopLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: dist/layers/top.zip
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: dist/functions/fn.zip
      Handler: app.handler
      Runtime: python3.9
      MemorySize: 512
      Timeout: 7
      Layers: [!Ref BaseLayer, !Ref TopLayer]
"""


def test_invoke_function_uses_the_template(tmp_path: Path, interpreter: Path) -> None:
    for name in ("base", "top"):
        (tmp_path / "layers" / name).mkdir(parents=True)
        (tmp_path / "layers" / name / "layer.toml").write_text('budget = "1 MB"\n')
    (tmp_path / "functions" / "fn").mkdir(parents=True)
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    out = tmp_path / "dist"
    (out / "layers").mkdir(parents=True)
    (out / "functions").mkdir()
    make_zip(out / "layers" / "base.zip", {"python/shared.py": "WHO = 'base'"})
    make_zip(out / "layers" / "top.zip", {"python/shared.py": "WHO = 'top'"})
    app = (
        "import shared\n"
        "def handler(event, context):\n"
        "    return [shared.WHO, context.function_name, context.memory_limit_in_mb,\n"
        "            context.get_remaining_time_in_millis() <= 7000, event]\n"
    )
    make_zip(out / "functions" / "fn.zip", {"app.py": app})
    project = load_project(tmp_path)
    result = invoke_function(project, "Fn", {"x": 1}, out, interpreter=interpreter)
    assert result.ok, result.response
    assert result.response == ["top", "fn", "512", True, {"x": 1}]
    (out / "layers" / "top.zip").unlink()
    with pytest.raises(SandboxError, match=r"top\.zip does not exist"):
        invoke_function(project, "fn", {}, out, interpreter=interpreter)
