from __future__ import annotations

from pathlib import Path

import pytest

from layerkit.check.invocation import invoke_function
from layerkit.errors import SandboxError
from layerkit.project.spec import load_project
from layerkit.runtime.target import Target, find_interpreter
from tests.unit.runtime.test_sandbox import make_zip

ROOT = Path(__file__).resolve().parents[3]
PY39 = Target("python3.9")


@pytest.fixture(scope="module")
def interpreter() -> Path:
    return find_interpreter(PY39, cwd=ROOT)


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
        "import boto3, shared\n"
        "def handler(event, context):\n"
        "    return [shared.WHO, context.function_name, context.memory_limit_in_mb,\n"
        "            context.get_remaining_time_in_millis() <= 7000, event, boto3.__version__]\n"
    )
    make_zip(out / "functions" / "fn.zip", {"app.py": app})
    sdk = tmp_path / "sdk"  # the runtime's own boto3 stands behind the layers
    sdk.mkdir()
    (sdk / "shared.py").write_text("WHO = 'runtime'")
    (sdk / "boto3.py").write_text("__version__ = 'runtime'")
    project = load_project(tmp_path)
    result = invoke_function(project, "Fn", {"x": 1}, out, interpreter=interpreter, runtime_sdk=sdk)
    assert result.ok, result.response
    assert result.response == ["top", "fn", "512", True, {"x": 1}, "runtime"]
    (out / "layers" / "top.zip").unlink()
    with pytest.raises(SandboxError, match=r"top\.zip does not exist"):
        invoke_function(project, "fn", {}, out, interpreter=interpreter, runtime_sdk=sdk)


def _project(tmp_path: Path):
    for name in ("base", "top"):
        (tmp_path / "layers" / name).mkdir(parents=True)
        (tmp_path / "layers" / name / "layer.toml").write_text('budget = "1 MB"\n')
    (tmp_path / "functions" / "fn").mkdir(parents=True)
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    return load_project(tmp_path)


def test_events_are_found_beside_the_function_or_in_the_projects_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from layerkit.check.invocation import find_event
    from layerkit.errors import SpecError

    monkeypatch.chdir(tmp_path)
    project = _project(tmp_path)
    fn = project.function("fn")
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "event.json").write_text("{}")  # sam init's default
    (tmp_path / "events" / "order.json").write_text("{}")
    assert find_event(project, fn, None) == tmp_path / "events" / "event.json"
    (fn.path / "events").mkdir()
    (fn.path / "events" / "basic.json").write_text("{}")
    assert find_event(project, fn, None) == fn.path / "events" / "basic.json"
    assert find_event(project, fn, "order") == tmp_path / "events" / "order.json"
    assert find_event(project, fn, "events/order.json") == tmp_path / "events" / "order.json"
    with pytest.raises(SpecError) as info:
        find_event(project, fn, "missing")
    message = str(info.value)
    assert str(fn.path / "events" / "missing.json") in message
    assert str(tmp_path / "events" / "missing.json") in message
    assert "\n" not in message


def test_env_vars_file_in_sams_shape(tmp_path: Path) -> None:
    from layerkit.check.invocation import env_overrides, read_env_vars
    from layerkit.errors import SpecError

    fn = _project(tmp_path).function("fn")
    path = tmp_path / "env.json"
    path.write_text(
        '{"Parameters": {"STAGE": "dev", "TABLE": "all"}, "Fn": {"TABLE": "t", "DEBUG": true},'
        ' "Other": {"TABLE": "no"}}'
    )
    assert env_overrides(read_env_vars(path), fn) == {
        "STAGE": "dev",
        "TABLE": "t",
        "DEBUG": "true",
    }
    path.write_text('{"Fn": "TABLE=t"}')
    with pytest.raises(SpecError, match="logical id"):
        read_env_vars(path)


def test_an_arm64_function_on_this_host_is_one_paragraph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from layerkit.check import invocation
    from layerkit.runtime.host import Execution, HostSupport

    project = _project(tmp_path)
    out = tmp_path / "dist"
    (out / "layers").mkdir(parents=True)
    (out / "functions").mkdir()
    make_zip(out / "layers" / "base.zip", {"python/shared.py": "WHO = 'base'"})
    make_zip(out / "layers" / "top.zip", {"python/shared.py": "WHO = 'top'"})
    make_zip(out / "functions" / "fn.zip", {"app.py": "def handler(e, c):\n    return 1\n"})
    reason = "no enabled qemu-aarch64 binfmt_misc handler"
    monkeypatch.setattr(
        invocation,
        "host_support",
        lambda target: HostSupport(target, "x86_64", Execution.STATIC_ONLY, None, reason),
    )
    with pytest.raises(SandboxError) as info:
        invocation.invoke_function(project, "Fn", {}, out, runtime_sdk=tmp_path)
    message = str(info.value)
    assert "cannot run" in message
    assert reason in message
    assert "Handler app.handler names a module and callable" in message
    assert "\n" not in message
