"""A SAM project as `sam init` and SAM's documentation write it: the template is the map.

Layers are LayerVersion resources whose ContentUri is the source folder (no layer.toml, no
layers/ folder), Globals set the runtime, one function runs on arm64, and two CodeUri folders
share their last name.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from layerkit.build.lock import sources
from layerkit.build.targets import buildable_functions
from layerkit.errors import SpecError
from layerkit.project.spec import LAMBDA_UNZIPPED_BYTES, load_project
from layerkit.runtime.target import Target

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31

Globals:
  Function:
    Runtime: python3.12
    Timeout: 10

Resources:
  CommonLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layers/common/
      CompatibleRuntimes: [python3.12]
      CompatibleArchitectures: [x86_64, arm64]
    Metadata:
      BuildMethod: python3.12

  ExtrasLayer:
    Type: AWS::Lambda::LayerVersion
    Properties:
      Content: deps/extras
      CompatibleRuntimes: [python3.12]
    Metadata:
      BuildMethod: python3.12
      layerkit:
        budget: 20 MB
        bytecode: none

  OrdersApi:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/orders/api/
      Handler: app.handler
      Layers: [!Ref CommonLayer, !Ref ExtrasLayer]

  PaymentsApi:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/payments/api/
      Handler: app.handler
      Architectures: [arm64]
      Layers: [!Ref CommonLayer]

  Notifier:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/notifier/
      Handler: app.handler
      Runtime: python3.11
"""


def write_sam_project(root: Path, template: str = TEMPLATE) -> Path:
    """The project above, written from text."""
    (root / "template.yaml").write_text(template)
    files = {
        "layers/common/requirements.txt": "six==1.17.0\n",
        "deps/extras/requirements.txt": "attrs==25.3.0\n",
        "src/orders/api/app.py": "def handler(event, context):\n    return 1\n",
        "src/orders/api/requirements.txt": "ulid-py==1.1.0\n",
        "src/payments/api/app.py": "def handler(event, context):\n    return 2\n",
        "src/payments/api/requirements.txt": "ulid-py==1.1.0\n",
        "src/notifier/app.py": "def handler(event, context):\n    return 3\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_layers_come_from_the_template_without_layer_toml(tmp_path: Path) -> None:
    project = load_project(write_sam_project(tmp_path))
    common, extras = project.layer("common"), project.layer("extras")
    assert common.path == tmp_path / "layers" / "common"
    assert extras.path == tmp_path / "deps" / "extras"  # AWS::Lambda::LayerVersion's Content
    assert common.budget == LAMBDA_UNZIPPED_BYTES  # Lambda's limit when no budget is set
    assert (extras.budget, extras.bytecode) == (20_000_000, "none")  # Metadata.layerkit
    assert common.settings_file == "template.yaml: CommonLayer Metadata.layerkit"
    # built for each target of the functions attaching it, within its Compatible* lists
    assert set(common.targets()) == {Target("python3.12", "x86_64"), Target("python3.12", "arm64")}
    assert extras.targets() == (Target("python3.12", "x86_64"),)
    # every function attaching extras attaches common before it: extras is built on common
    assert extras.requires == ("common",)
    assert common.requires == ()


def test_functions_are_keyed_apart_when_their_folders_share_a_last_name(tmp_path: Path) -> None:
    project = load_project(write_sam_project(tmp_path))
    orders, payments = project.function("OrdersApi"), project.function("PaymentsApi")
    assert (orders.name, payments.name) == ("OrdersApi", "PaymentsApi")
    assert orders.path == tmp_path / "src" / "orders" / "api"
    assert payments.path == tmp_path / "src" / "payments" / "api"
    assert project.function("Notifier").name == "notifier"  # a unique last name is kept


def test_each_function_has_its_own_target_and_every_target_is_built(tmp_path: Path) -> None:
    project = load_project(write_sam_project(tmp_path))
    x86, arm, py311 = Target("python3.12"), Target("python3.12", "arm64"), Target("python3.11")
    assert project.function("PaymentsApi").target == arm
    assert project.function("Notifier").target == py311
    assert project.deploy_target == x86  # ties go to the function written first
    assert set(project.targets) == {x86, arm, py311}
    assert project.function_targets[0] == x86
    names = {t: [fn.logical_id for fn in buildable_functions(project, t)] for t in project.targets}
    assert names == {x86: ["OrdersApi"], arm: ["PaymentsApi"], py311: ["Notifier"]}


def test_every_target_locks_the_requirements_of_its_functions(tmp_path: Path) -> None:
    project = load_project(write_sam_project(tmp_path))
    arm = sources(project, Target("python3.12", "arm64"))
    assert set(arm) == {"layer:common", "function:PaymentsApi"}
    assert [r.text for r in arm["function:PaymentsApi"]] == ["ulid-py==1.1.0"]
    x86 = sources(project, Target("python3.12"))
    assert set(x86) == {"layer:common", "layer:extras", "function:OrdersApi"}


def test_a_layer_only_target_locks_the_functions_it_builds(tmp_path: Path) -> None:
    """`build all --arch arm64` of x86_64 functions: the arm64 lock keeps their requirements."""
    text = TEMPLATE.replace("      Architectures: [arm64]\n", "").replace(
        "      BuildMethod: python3.12\n\n  ExtrasLayer",
        "      BuildMethod: python3.12\n      layerkit: {architectures: [x86_64, arm64]}\n\n"
        "  ExtrasLayer",
    )
    project = load_project(write_sam_project(tmp_path, text))
    arm = Target("python3.12", "arm64")
    assert arm in project.layer("common").targets()  # the layer lists arm64, no function runs it
    built = [fn.logical_id for fn in buildable_functions(project, arm)]
    assert "PaymentsApi" in built
    assert [r.text for r in sources(project, arm)["function:PaymentsApi"]] == ["ulid-py==1.1.0"]


def test_a_layer_not_compatible_with_an_attaching_function_is_named(tmp_path: Path) -> None:
    from layerkit.build.plan import plan

    text = TEMPLATE.replace(
        "CompatibleArchitectures: [x86_64, arm64]", "CompatibleArchitectures: [x86_64]"
    )
    project = load_project(write_sam_project(tmp_path, text))
    with pytest.raises(SpecError) as exc:
        plan(project, Target("python3.12", "arm64"))
    message = str(exc.value)
    assert "function PaymentsApi runs on python3.12-arm64" in message
    assert "layer CommonLayer, whose CompatibleArchitectures lists only x86_64" in message
    assert "\n" not in message


def test_settings_in_both_homes_are_refused(tmp_path: Path) -> None:
    root = write_sam_project(tmp_path)
    (root / "deps" / "extras" / "layer.toml").write_text('budget = "5 MB"\n')
    with pytest.raises(SpecError, match=r"both set layer extras's settings; keep one"):
        load_project(root)


def test_metadata_settings_are_typed_like_layer_toml(tmp_path: Path) -> None:
    text = TEMPLATE.replace("bytecode: none", "bytecode: sometimes")
    with pytest.raises(
        SpecError, match=r"template.yaml: ExtrasLayer Metadata.layerkit: bytecode = 'sometimes'"
    ):
        load_project(write_sam_project(tmp_path, text))


def test_a_written_requires_wins_over_the_template_order(tmp_path: Path) -> None:
    text = TEMPLATE.replace(
        "        bytecode: none\n", "        bytecode: none\n        requires: []\n"
    )
    project = load_project(write_sam_project(tmp_path, text))
    assert project.layer("extras").requires == ()


def test_a_missing_layer_folder_names_the_content_uri(tmp_path: Path) -> None:
    root = write_sam_project(tmp_path)
    (root / "layers" / "common" / "requirements.txt").unlink()
    (root / "layers" / "common").rmdir()
    with pytest.raises(
        SpecError,
        match=r"CommonLayer has ContentUri 'layers/common/', but there is no layers/common/ folder",
    ):
        load_project(root)


def test_the_project_is_found_from_a_subfolder(tmp_path: Path) -> None:
    from layerkit.project.config import find_project_root

    root = write_sam_project(tmp_path)
    assert find_project_root(root / "src" / "orders" / "api") == root.resolve()


def test_globals_layers_and_layer_toml_projects_still_load(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """\
        Globals:
          Function:
            Runtime: python3.12
            Architectures: [arm64]
        Resources:
          Base:
            Type: AWS::Serverless::LayerVersion
            Properties: {ContentUri: base/, CompatibleArchitectures: [arm64]}
          Fn:
            Type: AWS::Serverless::Function
            Properties: {CodeUri: fn/, Handler: app.handler, Layers: [!Ref Base]}
        """
    )
    (tmp_path / "template.yaml").write_text(text)
    (tmp_path / "base").mkdir()
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def handler(e, c):\n    return 0\n")
    project = load_project(tmp_path)
    assert project.layer("base").targets() == (Target("python3.12", "arm64"),)
    assert project.deploy_target == Target("python3.12", "arm64")


def test_a_handler_typo_fails_build_all_before_anything_is_built(tmp_path: Path) -> None:
    from layerkit import commands
    from layerkit.errors import CheckError

    text = TEMPLATE.replace(
        "      CodeUri: src/payments/api/\n      Handler: app.handler",
        "      CodeUri: src/payments/api/\n      Handler: app.handle",
    )
    project = load_project(write_sam_project(tmp_path, text))

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("nothing may be built")

    with pytest.raises(CheckError) as exc:
        commands.build(project, builder=never)
    message = str(exc.value)
    assert message.startswith("function PaymentsApi has Handler 'app.handle'")
    assert "set Handler: app.handler" in message
    assert "(checked in src/payments/api/)" in message  # the real folder, not functions/api/
    assert "\n" not in message


def test_import_problems_name_the_function_s_real_folder() -> None:
    from layerkit.check.findings import Finding, Severity
    from layerkit.check.imports import raise_for_problems
    from layerkit.errors import CheckError

    problem = Finding(Severity.ERROR, "app.py", "`ulid` is imported", path="app.py", line=1)
    with pytest.raises(CheckError, match=r"  src/orders/api/app.py"):
        raise_for_problems("OrdersApi", (problem,), "src/orders/api")


def test_globals_lists_add_up_as_sam_applies_them(tmp_path: Path) -> None:
    """SAM puts Globals' list entries before the function's: Layers add up, two archs fail."""
    from layerkit.project.template import parse_template

    text = TEMPLATE.replace(
        "    Timeout: 10\n", "    Timeout: 10\n    Layers: [!Ref CommonLayer]\n", 1
    ).replace(
        "      Layers: [!Ref CommonLayer, !Ref ExtrasLayer]\n", "      Layers: [!Ref ExtrasLayer]\n"
    )
    functions = {f.logical_id: f for f in parse_template(text, Path("template.yaml")).functions}
    assert functions["OrdersApi"].layers == ("common", "extras")
    assert functions["Notifier"].layers == ("common",)
    two = TEMPLATE.replace("    Timeout: 10\n", "    Timeout: 10\n    Architectures: [x86_64]\n", 1)
    with pytest.raises(
        SpecError, match=r"PaymentsApi: Architectures adds up to \['x86_64', 'arm64'\]"
    ):
        parse_template(two, Path("template.yaml"))


def test_requires_is_derived_only_when_every_attaching_function_agrees(tmp_path: Path) -> None:
    text = TEMPLATE.replace(
        "      Runtime: python3.11\n",
        "      Runtime: python3.11\n      Layers: [!Ref ExtrasLayer]\n",
    ).replace(
        "      CompatibleRuntimes: [python3.12]\n    Metadata:\n      BuildMethod: python3.12\n      layerkit:",
        "      CompatibleRuntimes: [python3.11, python3.12]\n    Metadata:\n      BuildMethod: python3.12\n      layerkit:",
    )
    project = load_project(write_sam_project(tmp_path, text))
    # Notifier attaches extras alone: common is not always below it, so extras carries its own
    assert project.layer("extras").requires == ()
    assert Target("python3.11") in project.layer("extras").targets()


def test_functions_sharing_one_code_uri_folder_are_packaged_apart(tmp_path: Path) -> None:
    text = TEMPLATE.replace("CodeUri: src/payments/api/", "CodeUri: src/orders/api/")
    project = load_project(write_sam_project(tmp_path, text))
    orders, payments = project.function("OrdersApi"), project.function("PaymentsApi")
    assert orders.path == payments.path == tmp_path / "src" / "orders" / "api"
    assert (orders.name, payments.name) == ("OrdersApi", "PaymentsApi")


def test_a_layer_content_layerkit_cannot_build_is_one_paragraph(tmp_path: Path) -> None:
    text = TEMPLATE.replace(
        "      Content: deps/extras\n", "      Content: {S3Bucket: b, S3Key: k}\n"
    )
    with pytest.raises(
        SpecError, match=r"ExtrasLayer: Content must name the layer's source folder"
    ) as exc:
        load_project(write_sam_project(tmp_path, text))
    assert "\n" not in str(exc.value)
