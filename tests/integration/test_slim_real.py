"""Slim and compile a real boto3 install for python3.9; the kept services still make clients."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from layerkit.build import slim
from layerkit.build.bytecode import compile_tree, top_level_modules
from layerkit.build.slim import SlimConfig, Tree, slim_tree
from layerkit.build.uv import run_uv, target_args
from layerkit.errors import InterpreterNotFoundError
from layerkit.runtime.target import Target, find_interpreter

pytestmark = pytest.mark.integration

TARGET = Target("python3.9")
SERVICES = ("s3", "sts", "dynamodb")


@pytest.fixture(scope="module")
def python39() -> Path:
    try:
        return find_interpreter(TARGET)
    except InterpreterNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def aws_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("aws") / "python"
    proc = run_uv(
        ["pip", "install", "--target", str(root), *target_args(TARGET), "boto3"], root.parent
    )
    assert proc.returncode == 0, proc.stderr
    return root


def run(python: Path, root: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-I", "-B", "-W", "ignore", "-c",
         f"import sys; sys.path.insert(0, {str(root)!r})\n{code}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_pruned_botocore_keeps_listed_services_only(aws_tree: Path, python39: Path) -> None:
    result = slim_tree(aws_tree, SlimConfig(botocore_services=SERVICES), TARGET)
    passes = {p.name: p for p in result.passes}
    assert passes["botocore-services"].removed_bytes > 10_000_000  # hundreds of services
    assert (aws_tree / "botocore/docs/__init__.py").is_file()  # pitfall 1
    assert (aws_tree / "boto3/docs/__init__.py").is_file()
    assert list(aws_tree.glob("botocore-*.dist-info/METADATA"))  # pitfall 2
    assert not (aws_tree / ".lock").exists()
    assert not (aws_tree / "bin").exists()

    compiled = compile_tree(aws_tree, python39, "all")
    assert compiled.compiled_files > 100
    assert compiled.failed == ()
    assert "boto3" in top_level_modules(aws_tree)

    ok = run(
        python39,
        aws_tree,
        "import boto3, importlib.metadata as md\n"
        "c = boto3.client('s3', region_name='us-east-1')\n"
        "print(c.meta.service_model.service_name, md.version('botocore'))\n"
        "boto3.resource('dynamodb', region_name='us-east-1')\n"
        "from botocore.exceptions import UnknownServiceError\n"
        "try:\n    boto3.client('ec2', region_name='us-east-1')\n"
        "except UnknownServiceError:\n    print('ec2 unknown')\n",
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[0].startswith("s3 1.")
    assert ok.stdout.splitlines()[-1] == "ec2 unknown"


def _extension_module() -> Path:
    """A real CPython 3.9 extension module to strip (the target interpreter's own _json)."""
    try:
        interpreter = find_interpreter(TARGET)
    except InterpreterNotFoundError:
        pytest.skip("python3.9 is not installed")
    out = subprocess.run(
        [str(interpreter), "-c", "import _json; print(_json.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not out.endswith(".so"):
        pytest.skip("this python3.9 has _json built in")
    return Path(out)


@pytest.mark.skipif(shutil.which("strip") is None, reason="binutils strip is not installed")
def test_strip_rewrites_a_copy_and_the_module_still_loads(tmp_path: Path) -> None:
    source = _extension_module()
    root = tmp_path / "python"
    root.mkdir()
    outside = tmp_path / "uv-cache-copy.so"
    shutil.copy2(source, outside)
    inside = root / source.name
    os.link(outside, inside)  # like uv's hard links into its cache
    before = outside.read_bytes()
    result, tree = slim.strip_pass(root, Tree.scan(root), ())
    assert outside.read_bytes() == before  # the cache's file is untouched
    assert tree.files[source.name] == inside.stat().st_size
    assert result.removed_bytes == len(before) - inside.stat().st_size
    assert result.removed_bytes >= 0
    proc = subprocess.run(
        [
            str(find_interpreter(TARGET)),
            "-I",
            "-B",
            "-c",
            f"import sys; sys.path.insert(0, {str(root)!r}); import _json; print(_json.__file__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == str(inside)
