"""ELF checks: every shared object in a layer must load on the target runtime's OS.

Two things make a binary fail on Lambda although it built fine: the wrong architecture (an
``aarch64`` wheel in an ``x86_64`` layer) and a newer glibc than the runtime's OS ships
(``GLIBC_2.28 not found`` on Amazon Linux 2, glibc 2.26). Both are read from the files with
pyelftools: the ELF header's ``e_machine`` and the GNU version needs (``.gnu.version_r``), whose
highest ``GLIBC_x.y`` is the oldest glibc the file can load on. Files are recognised by their
magic bytes, not their suffix (``libopenblas-…so.0``, ``numpy.libs/*`` have no ``.so`` suffix).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

from layerkit.check.findings import Finding, Severity
from layerkit.runtime.target import Target

ELF_MAGIC = b"\x7fELF"
#: The smallest page size of Lambda's machines (x86_64 and arm64 both run 4 KiB pages).
PAGE_SIZE = 4096

#: ``e_machine`` names (as pyelftools spells them) -> machine names used in wheel tags.
MACHINES: dict[str, str] = {
    "EM_X86_64": "x86_64",
    "EM_AARCH64": "aarch64",
    "EM_386": "i686",
    "EM_ARM": "armv7l",
    "EM_PPC64": "ppc64le",
    "EM_S390": "s390x",
}


@dataclass(frozen=True)
class ElfFile:
    """One ELF file of a tree: its architecture and the newest glibc it needs."""

    path: str  # relative to the scanned root, with forward slashes
    machine: str  # "x86_64", "aarch64", ... (or the raw e_machine name if unknown)
    max_glibc: tuple[int, int] | None  # highest GLIBC_x.y in its version needs, None: none


def parse_glibc_version(name: str) -> tuple[int, int] | None:
    """``"GLIBC_2.28"`` -> ``(2, 28)``; ``"GLIBC_2.2.5"`` -> ``(2, 2)``; others -> None.

    >>> parse_glibc_version("GLIBC_PRIVATE") is None
    True
    """
    if not name.startswith("GLIBC_"):
        return None
    parts = name[len("GLIBC_") :].split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts):
        return None
    return (int(parts[0]), int(parts[1]))


def is_elf(path: Path) -> bool:
    """Whether ``path`` is a regular file starting with the ELF magic bytes."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == ELF_MAGIC
    except OSError:
        return False


def read_elf(path: Path, display: str) -> ElfFile:
    """Read the architecture and the highest needed ``GLIBC_x.y`` of one ELF file.

    Raises :class:`elftools.common.exceptions.ELFError` (or ``OSError``) for a file that starts
    like an ELF file but cannot be read as one.
    """
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        machine = MACHINES.get(elf["e_machine"], str(elf["e_machine"]))
        needed = [
            version
            for section in elf.iter_sections()
            if isinstance(section, GNUVerNeedSection)
            for _, auxiliaries in section.iter_versions()
            for aux in auxiliaries
            if (version := parse_glibc_version(aux.name)) is not None
        ]
    return ElfFile(display, machine, max(needed) if needed else None)


def load_problem(path: Path) -> str | None:
    """Why the dynamic loader would refuse the ELF file at ``path``, or None when it would not.

    The file must parse (header, program headers, sections), every ``PT_LOAD`` segment must lie
    inside the file, and its offset and address must agree modulo the page size and modulo its
    ``p_align``: glibc refuses a file otherwise ("ELF load command address/offset not
    page-aligned"). A ``strip`` of a file rewritten by patchelf can break exactly this.
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            elf = ELFFile(fh)
            for index, segment in enumerate(elf.iter_segments()):
                if segment["p_type"] != "PT_LOAD":
                    continue
                offset, vaddr = segment["p_offset"], segment["p_vaddr"]
                align = segment["p_align"]
                where = f"PT_LOAD segment {index} (offset {offset:#x}, address {vaddr:#x}"
                if (vaddr - offset) % PAGE_SIZE:
                    return (
                        f"{where}) disagree modulo the {PAGE_SIZE}-byte page: the loader says "
                        "'ELF load command address/offset not page-aligned'"
                    )
                if align > 1 and (vaddr - offset) % align:
                    return (
                        f"{where}) disagree modulo its alignment {align:#x}: the loader says "
                        "'ELF load command address/offset not properly aligned'"
                    )
                if offset + segment["p_filesz"] > size:
                    return f"{where}) ends past the end of the {size}-byte file"
            for _ in elf.iter_sections():  # the section headers still parse
                pass
    except (ELFError, OSError, ValueError) as exc:
        return f"cannot be read as an ELF file ({exc})"
    return None


def is_shared_library(path: Path) -> bool:
    """Whether the ELF file at ``path`` is a shared object ``dlopen`` takes (ET_DYN, no PT_INTERP).

    A position-independent executable is ET_DYN too, but carries an interpreter and is not
    meant to be loaded as a library.
    """
    try:
        with open(path, "rb") as fh:
            elf = ELFFile(fh)
            return elf["e_type"] == "ET_DYN" and not any(
                segment["p_type"] == "PT_INTERP" for segment in elf.iter_segments()
            )
    except (ELFError, OSError, ValueError):
        return False


def strippable_bytes(path: Path) -> int:
    """Bytes ``strip --strip-unneeded`` would remove: symbol tables and debug sections (0: none).

    What a layer costs when its extension modules could not be stripped (no strip for the
    target's architecture); an estimate read from the section headers, without stripping.
    """
    try:
        with open(path, "rb") as fh:
            return sum(
                section["sh_size"]
                for section in ELFFile(fh).iter_sections()
                if section.name in (".symtab", ".strtab", ".comment")
                or section.name.startswith((".debug", ".zdebug"))
            )
    except (ELFError, OSError, ValueError):
        return 0


def _walk(root: Path, only: Collection[str] | None) -> Iterable[tuple[Path, str]]:
    if only is not None:
        for rel in sorted(only):
            path = root / rel
            if path.is_file() and not path.is_symlink():
                yield path, rel
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield path, path.relative_to(root).as_posix()


def elf_finding(path: str, message: str, code: str) -> Finding:
    """An error about the ELF file at ``path`` (relative to the scanned tree): it will not load."""
    return Finding(Severity.ERROR, path, message, code=code, path=path)


def scan(
    root: Path, *, only: Collection[str] | None = None
) -> tuple[tuple[ElfFile, ...], tuple[Finding, ...]]:
    """Every ELF file below ``root`` (or among the relative paths ``only``), and unreadable ones.

    A file with the ELF magic that pyelftools cannot parse is returned as a problem: a truncated
    or corrupted shared object will not load on Lambda either; so is one whose ``PT_LOAD``
    segments the loader refuses (:func:`load_problem`).
    """
    found: list[ElfFile] = []
    broken: list[Finding] = []
    for path, rel in _walk(Path(root), only):
        if not is_elf(path):
            continue
        try:
            found.append(read_elf(path, rel))
        except (ELFError, OSError, ValueError) as exc:
            message = f"starts like an ELF file but cannot be read ({exc})"
            broken.append(elf_finding(rel, message, "elf-unreadable"))
            continue
        problem = load_problem(path)
        if problem is not None:
            message = f"will not load: {problem}; build it with `[slim] strip = false`"
            broken.append(elf_finding(rel, message, "elf-segments"))
    return tuple(found), tuple(broken)


def scan_tree(root: Path) -> tuple[ElfFile, ...]:
    """Every readable ELF file below ``root`` (recognised by magic bytes), sorted by path."""
    return scan(root)[0]


def _runtime_os(target: Target) -> str:
    return target.os  # the one runtime table, layerkit.runtime.target.RUNTIMES


def file_problems(elf: ElfFile, target: Target) -> tuple[Finding, ...]:
    """What keeps one ELF file from loading on ``target`` (pure: architecture, then glibc)."""
    problems: list[Finding] = []
    if elf.machine != target.machine:
        problems.append(
            elf_finding(
                elf.path,
                f"is built for {elf.machine} but the {target.runtime} {target.architecture} "
                f"target runs {target.machine}; install the {target.machine} wheel (check the "
                "platform tag the lock picked) or build the layer for the other architecture",
                "elf-architecture",
            )
        )
    if elf.max_glibc is not None and elf.max_glibc > target.glibc:
        need = "{}.{}".format(*elf.max_glibc)
        have = "{}.{}".format(*target.glibc)
        problems.append(
            elf_finding(
                elf.path,
                f"needs GLIBC_{need} but {target.runtime} ({_runtime_os(target)}) has {have}; "
                f"pin a release with a manylinux_2_{target.glibc[1]} (or older) wheel",
                "elf-glibc",
            )
        )
    return tuple(problems)


def check_files(files: Iterable[ElfFile], target: Target) -> tuple[Finding, ...]:
    """Every problem of every file, in path order (pure)."""
    return tuple(
        p for elf in sorted(files, key=lambda f: f.path) for p in file_problems(elf, target)
    )


def check_tree(
    root: Path, target: Target, *, only: Collection[str] | None = None
) -> tuple[Finding, ...]:
    """Scan ``root`` (or the relative paths ``only`` below it) and check every ELF file."""
    files, broken = scan(root, only=only)
    return tuple(sorted((*broken, *check_files(files, target)), key=lambda p: p.subject))


def format_problems(problems: Iterable[Finding]) -> str:
    """One line per problem: ``path: message``."""
    return "\n".join(str(p) for p in problems)
