"""Host support: native, emulated through qemu-user, or static only (no interpreter started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerkit.runtime.host import (
    Execution,
    binfmt_runs,
    elf_machine,
    foreign_interpreter_variable,
    host_machine,
    host_support,
)
from layerkit.runtime.target import Target

ARM = Target("python3.12", "arm64")
X86 = Target("python3.12", "x86_64")


def fake_elf(path: Path, machine: int) -> Path:
    header = bytearray(b"\x7fELF\x02\x01\x01" + b"\x00" * 9)
    header += (2).to_bytes(2, "little") + machine.to_bytes(2, "little")
    path.write_bytes(bytes(header) + b"\x00" * 44)
    path.chmod(0o755)
    return path


def binfmt(tmp_path: Path, *, status: str = "enabled", handler: str = "enabled") -> Path:
    folder = tmp_path / "binfmt_misc"
    folder.mkdir()
    qemu = fake_elf(tmp_path / "qemu-aarch64-static", 62)
    (folder / "status").write_text(status + "\n")
    (folder / "qemu-aarch64").write_text(
        f"{handler}\ninterpreter {qemu}\nflags: F\noffset 0\nmagic 7f454c46\n"
    )
    return folder


def test_host_machine_names_follow_elf_spelling() -> None:
    assert host_machine("AMD64") == "x86_64"
    assert host_machine("arm64") == "aarch64"
    assert host_machine("aarch64") == "aarch64"


def test_a_target_of_the_host_machine_is_native(tmp_path: Path) -> None:
    python = tmp_path / "python3.12"
    support = host_support(X86, machine="x86_64", native_interpreter=python)
    assert support.execution is Execution.NATIVE
    assert support.runs_code
    assert support.interpreter == python


def test_arm64_on_x86_64_without_qemu_is_static_only_and_says_why(tmp_path: Path) -> None:
    support = host_support(ARM, machine="x86_64", binfmt_dir=tmp_path / "none", environ={})
    assert support.execution is Execution.STATIC_ONLY
    assert not support.runs_code
    assert support.interpreter is None
    notice = support.notice()
    assert "static only" in notice
    assert "cannot run aarch64" in notice
    assert "qemu-aarch64" in notice


def test_qemu_without_an_aarch64_interpreter_stays_static_only(tmp_path: Path) -> None:
    support = host_support(ARM, machine="x86_64", binfmt_dir=binfmt(tmp_path), environ={})
    assert support.execution is Execution.STATIC_ONLY
    assert foreign_interpreter_variable(ARM) in support.reason


def test_qemu_and_an_aarch64_interpreter_make_it_emulated(tmp_path: Path) -> None:
    python = fake_elf(tmp_path / "python3.12-aarch64", 183)
    env = {foreign_interpreter_variable(ARM): str(python)}
    support = host_support(ARM, machine="x86_64", binfmt_dir=binfmt(tmp_path), environ=env)
    assert support.execution is Execution.EMULATED
    assert support.interpreter == python
    assert "qemu-user" in support.notice()


def test_an_x86_64_program_named_as_the_aarch64_interpreter_is_refused(tmp_path: Path) -> None:
    python = fake_elf(tmp_path / "python3.12", 62)
    env = {foreign_interpreter_variable(ARM): str(python)}
    support = host_support(ARM, machine="x86_64", binfmt_dir=binfmt(tmp_path), environ=env)
    assert support.execution is Execution.STATIC_ONLY
    assert "is not an aarch64 executable" in support.reason


@pytest.mark.parametrize(("status", "handler"), [("disabled", "enabled"), ("enabled", "disabled")])
def test_a_disabled_binfmt_switch_or_handler_does_not_count(
    tmp_path: Path, status: str, handler: str
) -> None:
    assert binfmt_runs("aarch64", binfmt(tmp_path, status=status, handler=handler)) is None


def test_elf_machine_reads_the_header(tmp_path: Path) -> None:
    assert elf_machine(fake_elf(tmp_path / "a", 183)) == "aarch64"
    assert elf_machine(fake_elf(tmp_path / "b", 62)) == "x86_64"
    (tmp_path / "script").write_text("#!/bin/sh\n")
    assert elf_machine(tmp_path / "script") is None
    assert elf_machine(tmp_path / "missing") is None


def test_the_variable_name_carries_version_and_architecture() -> None:
    assert foreign_interpreter_variable(ARM) == "LAYERKIT_PYTHON_3_12_ARM64"


def test_the_notice_is_given_once_per_process_and_never_for_native(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import layerkit.runtime.host as host

    monkeypatch.setattr(host, "_ANNOUNCED", set())
    monkeypatch.setattr(host, "host_machine", lambda machine=None: "x86_64")
    monkeypatch.setenv(host.foreign_interpreter_variable(ARM), "")  # no aarch64 python
    assert host.notice_once(X86) is None
    first = host.notice_once(ARM)
    assert first is not None
    assert "static only" in first
    assert host.notice_once(ARM) is None
