"""layerkit used by another SAM project: `layerkit ...` alone, no tasks.py, its own layout.

The project is written to a temporary folder the way `sam init` lays one out (the function's
source folder as its CodeUri, next to template.yaml), plus one layer carrying a small pure-Python
package from PyPI, and a function with a `Condition` that is false on the local stage. It is locked, built, validated and deployed to the built-in local stage (no
stages file) with the command-line entry point, and the installed console script answers too.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from layerkit.cli import main

pytestmark = pytest.mark.integration

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: hello-six, a second project built by layerkit.

Globals:
  Function:
    Runtime: python3.12
    Architectures: [x86_64]
    Timeout: 10

Parameters:
  Stage:
    Type: String
    Default: dev
    AllowedValues: [dev, local, prod]

Conditions:
  IsProd: !Equals [!Ref Stage, prod]

Resources:
  SixLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: build/layers/six-layer.zip
      CompatibleRuntimes: [python3.12]
      CompatibleArchitectures: [x86_64]

  HelloWorldFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello_world/
      Handler: app.lambda_handler
      Layers:
        - !Ref SixLayer

  AuditFunction:
    Type: AWS::Serverless::Function
    Condition: IsProd  # built like any function; deployed only where IsProd holds
    Properties:
      CodeUri: audit/
      Handler: app.lambda_handler
"""

APP = """\
import json

import six


def lambda_handler(event, context):
    return {"statusCode": 200, "body": json.dumps({"six": six.__version__, "echo": event})}
"""


def write_second_project(root: Path) -> Path:
    """A SAM project: template.yaml, hello_world/, lambda_layers/six-layer/, out dir build/."""
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [project]
            name = "hello-six"
            version = "0.1.0"

            [tool.layerkit]
            layers-dir = "lambda_layers"
            dist-dir = "build"
            """
        )
    )
    (root / "template.yaml").write_text(TEMPLATE)
    fn = root / "hello_world"
    (fn / "events").mkdir(parents=True)
    (fn / "app.py").write_text(APP)
    (fn / "requirements.txt").write_text("")
    (fn / "events" / "event.json").write_text('{"hello": "world"}\n')
    (root / "audit").mkdir()
    (root / "audit" / "app.py").write_text("def lambda_handler(event, context):\n    return 1\n")
    layer = root / "lambda_layers" / "six-layer"
    layer.mkdir(parents=True)
    (layer / "requirements.txt").write_text("six==1.17.0\n")
    (layer / "smoke_test.py").write_text("import six\nassert six.PY3\n")
    (layer / "layer.toml").write_text(
        'budget = "5 MB"\nruntimes = ["python3.12"]\nsmoke = "smoke_test.py"\n'
    )
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_second_project(tmp_path_factory.mktemp("hello-six"))


def layerkit(project: Path, *argv: str) -> int:
    return main(["--project-dir", str(project), *argv])


def test_a_second_project_locks_builds_validates_and_deploys_with_layerkit_alone(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert layerkit(project, "lock") == 0
    assert (project / "locks" / "python3.12-x86_64.toml").is_file()
    assert "six" in (project / "locks" / "python3.12-x86_64.toml").read_text()

    assert layerkit(project, "build", "all") == 0
    out = capsys.readouterr().out
    assert f"{project / 'build'} (python3.12-x86_64)" in out
    assert (project / "build" / "functions" / "audit.zip").is_file()  # as sam build does
    layer_zip = project / "build" / "layers" / "six-layer.zip"
    function_zip = project / "build" / "functions" / "hello_world.zip"  # the CodeUri folder
    with zipfile.ZipFile(layer_zip) as zf:
        assert "python/six.py" in zf.namelist()
    with zipfile.ZipFile(function_zip) as zf:
        assert "app.py" in zf.namelist()
        assert not any(n.startswith("events/") for n in zf.namelist())

    assert layerkit(project, "validate", "all") == 0
    out = capsys.readouterr().out
    assert "layer six-layer on python3.12-x86_64: OK" in out
    assert out.rstrip().endswith("validation passed")

    event = project / "hello_world" / "events" / "event.json"
    assert layerkit(project, "invoke", "HelloWorldFunction", "--event", str(event)) == 0
    out = capsys.readouterr().out
    assert '\\"six\\": \\"1.17.0\\"' in out
    # Lambda's REPORT line: RequestId, Duration, Billed Duration, Memory Size, Max Memory Used, Init
    assert re.search(r"REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms", out)
    assert re.search(r"\tInit Duration: [\d.]+ ms", out)

    assert layerkit(project, "deploy") == 0  # the built-in local stage: no stages file
    out = capsys.readouterr().out
    assert "local stage: moto on http://127.0.0.1:" in out
    assert "local-hello-world:live -> 1  layers: " in out
    assert "AuditFunction is not deployed to stage local: its Condition IsProd is false" in out
    assert "local-audit" not in out
    assert "release " in out

    assert layerkit(project, "deploy") == 0
    assert "nothing to do: the stage is current" in capsys.readouterr().out
    assert layerkit(project, "releases") == 0
    assert "deploy  commit -  local-hello-world:1" in capsys.readouterr().out

    assert layerkit(project, "report") == 0
    report = json.loads((project / "build" / "report.json").read_text())
    assert [x["name"] for t in report["targets"] for x in t["layers"]] == ["six-layer"]


def test_the_installed_console_script_runs_the_same_commands(project: Path) -> None:
    script = Path(sys.executable).parent / "layerkit"
    assert script.is_file(), "install layerkit (pip install -e .): it provides `layerkit`"
    proc = subprocess.run(
        [str(script), "status", "--project-dir", str(project)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "layers/six-layer.zip" in proc.stdout
    assert "functions/hello_world.zip" in proc.stdout
    bad = subprocess.run(
        [str(script), "--project-dir", str(project), "build", "layer", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: there is no layer 'nope'; the layers are: six-layer ")
    assert bad.stderr.count("\n") == 1
