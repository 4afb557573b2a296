from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from layerkit.check.imports import RUNTIME_BUILTIN
from layerkit.runtime import sdk
from layerkit.runtime.target import RUNTIMES, Target


def test_every_runtime_has_its_sdk_versions_and_a_date() -> None:
    assert set(sdk.RUNTIME_SDKS) == set(RUNTIMES)
    assert sdk.SDK_READ_ON[:2] == "20"
    assert len(sdk.SDK_READ_ON) == 10
    for versions in sdk.RUNTIME_SDKS.values():
        assert versions.requirements == (
            f"boto3=={versions.boto3}",
            f"botocore=={versions.botocore}",
        )


def test_the_import_check_and_the_sandbox_agree_on_what_the_runtime_provides() -> None:
    assert RUNTIME_BUILTIN == sdk.SDK_MODULES
    assert {"boto3", "botocore"} <= RUNTIME_BUILTIN


def test_the_sdk_is_installed_once_per_target_read_only(tmp_path: Path) -> None:
    calls: list[tuple[tuple[str, ...], Target]] = []

    def install(requirements: Sequence[str], target: Target, dest: Path) -> None:
        calls.append((tuple(requirements), target))
        (dest / "boto3").mkdir()
        (dest / "boto3" / "__init__.py").write_text("__version__ = '1'")

    py312 = Target("python3.12")
    first = sdk.cached_sdk(py312, tmp_path, install)
    again = sdk.cached_sdk(py312, tmp_path, install)
    assert first == again
    assert len(calls) == 1
    assert calls[0] == (sdk.RUNTIME_SDKS["python3.12"].requirements, py312)
    assert (first / "boto3" / "__init__.py").read_text() == "__version__ = '1'"
    assert not (first / "boto3" / "__init__.py").stat().st_mode & 0o222
    arm = sdk.cached_sdk(Target("python3.12", "arm64"), tmp_path, install)
    assert arm != first
    assert len(calls) == 2


def test_an_interrupted_install_leaves_nothing_under_the_final_name(tmp_path: Path) -> None:
    def broken(requirements: Sequence[str], target: Target, dest: Path) -> None:
        (dest / "half").write_text("x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sdk.cached_sdk(Target("python3.9"), tmp_path, broken)
    assert list((tmp_path / "runtime-sdk").iterdir()) == []
