"""Real arm64 builds on this x86_64 host: aarch64 wheels, static-only validation, no foreign code.

A copy of the repository lists arm64 for aws-utilities and core-data-science, locks python3.12
on arm64 with uv (aarch64 wheels from PyPI), builds both layers and the function that attaches
only them, and validates: every ELF is aarch64 and needs no newer glibc than python3.12's
(2.34), nothing was imported or run, and nothing advises a bytecode mode.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
import tomlkit

from layerkit.build import lock as L
from layerkit.build import pipeline as B
from layerkit.check.elf import check_files, scan
from layerkit.check.layer import format_validation, validate_built_layer
from layerkit.project.spec import load_project
from layerkit.runtime.host import Execution, elf_machine, host_support
from layerkit.runtime.target import Target
from tests.conftest import REPO

pytestmark = pytest.mark.integration
ARM = Target("python3.12", "arm64")
ARM_LAYERS = ("aws-utilities", "core-data-science")

if host_support(ARM).runs_code:  # pragma: no cover - an arm64 or qemu host
    pytest.skip(
        "this host runs aarch64 code: the static-only path is not taken", allow_module_level=True
    )


@pytest.fixture(scope="module")
def arm_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, B.BuildResult, list[str]]:
    root = tmp_path_factory.mktemp("arm64")
    for name in ("layers", "functions", "locks"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "template.yaml", root / "template.yaml")
    for name in ARM_LAYERS:
        path = root / "layers" / name / "layer.toml"
        doc = tomlkit.parse(path.read_text())
        doc["architectures"] = ["x86_64", "arm64"]
        if name == "core-data-science":  # the static analysis of what a cold start loads
            doc["bytecode"] = "imported"
        path.write_text(tomlkit.dumps(doc))
    project = load_project(root)
    L.write_lock(project, L.resolve(project, ARM))
    events: list[str] = []

    def note(event: B.BuildEvent) -> None:  # what each step did (not its start)
        if event.kind not in (B.EventKind.STARTED, B.EventKind.QUEUED):
            events.append(f"{event.step}: {event.detail}")

    from layerkit.runtime import host

    host._ANNOUNCED.discard(ARM)  # said once per process: another test may have built arm64
    result = B.build(project, ARM, progress=note)
    return root, result, events


def test_the_lock_pins_aarch64_wheels(arm_build: tuple[Path, B.BuildResult, list[str]]) -> None:
    root, _, _ = arm_build
    lock = L.read_lock(load_project(root), ARM)
    compiled = [p for p in lock.packages if "manylinux" in p.filename]
    assert compiled, "numpy and pandas ship compiled wheels"
    assert all(p.filename.endswith("aarch64.whl") for p in compiled)


def test_the_layers_and_their_function_are_built_static_only_once_said(
    arm_build: tuple[Path, B.BuildResult, list[str]],
) -> None:
    _root, result, events = arm_build
    assert sorted(result.records) == [
        "functions/data_validation.zip",  # the one function attaching only the arm64 layers
        "layers/aws-utilities.zip",
        "layers/core-data-science.zip",
    ]
    manifest = json.loads((result.out_dir / "manifest.json").read_text())
    assert {a["execution"] for a in manifest["artifacts"].values()} == {"static only"}
    assert [e for e in events if e.startswith("host: ")] == [f"host: {host_support(ARM).notice()}"]
    assert all("not run (static only" in e for e in events if e.startswith("import-check"))
    core = result.records["layers/core-data-science.zip"]
    assert core.bytecode["mode"] == "imported"
    assert core.bytecode["found_by"] == "static analysis"
    assert 0 < core.bytecode["compiled_files"] < core.files
    assert core.execution == "static only"


def test_every_elf_is_aarch64_within_the_runtimes_glibc(
    arm_build: tuple[Path, B.BuildResult, list[str]], tmp_path: Path
) -> None:
    _, result, _ = arm_build
    with zipfile.ZipFile(result.out_dir / "layers" / "core-data-science.zip") as zf:
        zf.extractall(tmp_path)
    files, unreadable = scan(tmp_path)
    assert len(files) > 20
    assert not unreadable
    assert {elf_machine(tmp_path / f.path) for f in files} == {"aarch64"}
    assert check_files(files, ARM) == ()
    # the same check refuses these files for the x86_64 target: it is not a check that passes
    assert check_files(files, Target("python3.12", "x86_64"))


def test_bytecode_compiled_by_the_host_is_python312_bytecode(
    arm_build: tuple[Path, B.BuildResult, list[str]],
) -> None:
    _, result, _ = arm_build
    with zipfile.ZipFile(result.out_dir / "layers" / "aws-utilities.zip") as zf:
        pycs = [n for n in zf.namelist() if n.endswith(".cpython-312.pyc")]
        assert pycs
        header = zf.read(pycs[0])[:4]
    # python3.12's magic number (3531): a .pyc is the version's magic, flags, the source hash
    # and marshalled code, which holds nothing CPU-specific; python3.12 on aarch64 reads it
    assert header == (3531).to_bytes(2, "little") + b"\r\n"


@pytest.mark.parametrize("layer", ARM_LAYERS)
def test_validation_is_static_only_without_traceback_or_advice(
    arm_build: tuple[Path, B.BuildResult, list[str]], layer: str
) -> None:
    root, _, _ = arm_build
    result = validate_built_layer(root, layer, "python3.12", architecture="arm64")
    assert result.ok
    assert result.execution is Execution.STATIC_ONLY
    assert result.imported == ()
    assert result.import_failures == ()
    assert result.smoke is None
    # boto3 and botocore are pure Python; numpy and pandas ship dozens of shared objects
    assert (result.elf_files > 20) == (layer == "core-data-science")
    assert result.elf_problems == ()
    text = format_validation(result)
    assert text.splitlines()[0] == f"layer {layer} on python3.12-arm64: OK (static only)"
    assert "not run (static only" in text
    for wrong in ("Traceback", "bytecode", "source directory"):
        assert wrong not in text


def test_the_report_marks_the_static_only_layers(
    arm_build: tuple[Path, B.BuildResult, list[str]],
) -> None:
    from layerkit.report.text import render_table

    root, result, _ = arm_build
    manifest = json.loads((result.out_dir / "manifest.json").read_text())
    rows = [line for line in render_table(manifest, load_project(root)).splitlines()]
    for layer in ARM_LAYERS:
        (row,) = [line for line in rows if line.startswith(layer)]
        assert row.endswith("static only")
