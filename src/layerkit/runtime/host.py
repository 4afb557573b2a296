"""Can this machine execute a target's code? Native, emulated (qemu-user), or static only.

A layer for ``arm64`` holds aarch64 machine code. On an x86_64 host the target's interpreter
cannot load it (numpy then fails with a misleading "do not import numpy from its source
directory"), so layerkit must not run the layer's code there: no import check, no smoke test,
no ``bytecode = "imported"`` probe, no advice drawn from such a run. What it still checks is
static: every ELF's architecture and the glibc symbol versions it needs (:mod:`layerkit.check.elf`).

Bytecode is still compiled for a foreign target, by the host's interpreter of the SAME Python
version: a ``.pyc`` holds marshalled code objects whose format depends on the Python version
only, never on the CPU (the header is the version's magic number plus the source hash), so
python3.12 on x86_64 writes exactly the bytes python3.12 on aarch64 writes.

If the host can run aarch64 programs through qemu-user (a binfmt_misc handler for aarch64
ELF files, enabled) AND an aarch64 interpreter of the target's version is named in
``LAYERKIT_PYTHON_<VERSION>_<ARCH>`` (for example ``LAYERKIT_PYTHON_3_12_ARM64``), that
interpreter is used and the target is validated by execution, emulated. Neither is required.
"""

from __future__ import annotations

import enum
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from layerkit.runtime.target import Target

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")

#: ELF ``e_machine`` values of the machines Lambda offers.
ELF_MACHINES: dict[str, int] = {"x86_64": 62, "aarch64": 183}
_MACHINE_ALIASES = {"amd64": "x86_64", "arm64": "aarch64", "x64": "x86_64"}


class Execution(enum.Enum):
    """How a target's code can be run on this host."""

    NATIVE = "native"
    EMULATED = "emulated"
    STATIC_ONLY = "static only"


@dataclass(frozen=True)
class HostSupport:
    """Whether (and with which interpreter) this host runs a target's code."""

    target: Target
    host_machine: str
    execution: Execution
    interpreter: Path | None = None  # the interpreter that runs target code (None: static only)
    reason: str = ""

    @property
    def runs_code(self) -> bool:
        """True when target code may be executed here (natively or through qemu-user)."""
        return self.execution is not Execution.STATIC_ONLY

    @property
    def cannot_run(self) -> str:
        """The clause every message about a target this host cannot run uses.

        ``this x86_64 host cannot run aarch64 code (<reason>)``.
        """
        return (
            f"this {self.host_machine} host cannot run {self.target.machine} code ({self.reason})"
        )

    def notice(self) -> str:
        """The one sentence a command prints about this target when it is not native."""
        if self.execution is Execution.NATIVE:
            return f"{self.target.key}: runs natively on this {self.host_machine} host"
        if self.execution is Execution.EMULATED:
            return (
                f"{self.target.key}: this {self.host_machine} host runs {self.target.machine} "
                f"code through qemu-user with {self.interpreter}; validation executes, emulated"
            )
        return (
            f"{self.target.key}: {self.cannot_run}, so its validation is static only: ELF "
            "architecture and glibc "
            "are checked, nothing is imported or run, and bytecode is compiled by the host's "
            f"python{self.target.python_version_text} (.pyc files do not depend on the CPU)"
        )


def host_machine(machine: str | None = None) -> str:
    """The host's machine name as ELF headers and wheel tags spell it (``x86_64``, ``aarch64``)."""
    name = (machine or platform.machine()).lower()
    return _MACHINE_ALIASES.get(name, name)


def elf_machine(path: Path) -> str | None:
    """The machine an ELF executable is built for (``x86_64``/``aarch64``), None if not ELF."""
    try:
        with Path(path).open("rb") as handle:
            header = handle.read(20)
    except OSError:
        return None
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    order = "little" if header[5] == 1 else "big"
    value = int.from_bytes(header[18:20], order)
    return next(
        (name for name, code in ELF_MACHINES.items() if code == value), f"e_machine {value}"
    )


def binfmt_runs(machine: str, binfmt_dir: Path = BINFMT_DIR) -> Path | None:
    """The enabled qemu-user interpreter that binfmt_misc uses for ``machine`` ELF files, if any.

    binfmt_misc lists one file per handler (``qemu-aarch64``) with ``enabled`` on its first line
    and ``interpreter /usr/bin/qemu-aarch64-static``; the handler counts only when the system
    switch (``status``) and the handler are enabled and the interpreter exists.
    """
    try:
        if (binfmt_dir / "status").read_text().strip() != "enabled":
            return None
        handlers = sorted(binfmt_dir.glob(f"qemu-{machine}*"))
    except OSError:
        return None
    for handler in handlers:
        try:
            lines = handler.read_text().splitlines()
        except OSError:
            continue
        if not lines or lines[0].strip() != "enabled":
            continue
        for line in lines:
            if line.startswith("interpreter "):
                qemu = Path(line.split(None, 1)[1].strip())
                if qemu.is_file():
                    return qemu
    return None


def foreign_interpreter_variable(target: Target) -> str:
    """The environment variable naming a foreign-architecture interpreter for ``target``."""
    version = target.python_version_text.replace(".", "_")
    return f"LAYERKIT_PYTHON_{version}_{target.architecture.upper()}"


def host_support(
    target: Target,
    *,
    machine: str | None = None,
    binfmt_dir: Path = BINFMT_DIR,
    environ: Mapping[str, str] | None = None,
    native_interpreter: Path | None = None,
) -> HostSupport:
    """Decide how this host can run ``target``'s code (never raises; reads no network).

    ``native_interpreter`` is what a native target runs with (the caller resolves it with
    :func:`layerkit.runtime.target.find_interpreter`); the other arguments exist for tests.
    """
    here = host_machine(machine)
    if target.machine == here:
        return HostSupport(target, here, Execution.NATIVE, native_interpreter)
    env = os.environ if environ is None else environ
    variable = foreign_interpreter_variable(target)
    qemu = binfmt_runs(target.machine, binfmt_dir)
    named = env.get(variable)
    if qemu is None:
        reason = f"no enabled qemu-{target.machine} binfmt_misc handler"
    elif not named:
        reason = f"qemu-user is present but {variable} names no {target.machine} interpreter"
    elif elf_machine(Path(named)) != target.machine:
        reason = f"{variable}={named} is not an {target.machine} executable"
    else:
        return HostSupport(target, here, Execution.EMULATED, Path(named))
    return HostSupport(target, here, Execution.STATIC_ONLY, None, reason)


_ANNOUNCED: set[Target] = set()


def notice_once(target: Target) -> str | None:
    """The host notice of a non-native target, the first time this process asks for it.

    None for a native target and on every later call (:meth:`HostSupport.notice`). A command
    builds and validates in several steps; the host is described once, not per step.
    """
    support = host_support(target)
    if support.execution is Execution.NATIVE or target in _ANNOUNCED:
        return None
    _ANNOUNCED.add(target)
    return support.notice()
