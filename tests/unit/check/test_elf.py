from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from layerkit.check.elf import (
    ElfFile,
    check_files,
    check_tree,
    file_problems,
    parse_glibc_version,
    scan_tree,
)
from layerkit.check.findings import Finding, Severity
from layerkit.runtime.target import Target

PY39 = Target("python3.9")  # Amazon Linux 2, glibc 2.26
PY312 = Target("python3.12")  # Amazon Linux 2023, glibc 2.34
PY39_ARM = Target("python3.9", "arm64")

# C sources whose one libc call is versioned at a known glibc release.
SOURCES = {
    "plain": "int f(int x) { return x + 1; }\n",
    "reallocarray": "#include <stdlib.h>\nvoid *f(void *p) { return reallocarray(p, 2, 8); }\n",
    "memfd": (
        '#define _GNU_SOURCE\n#include <sys/mman.h>\nint f(void) { return memfd_create("x", 0); }\n'
    ),
    "pthread": (
        "#include <pthread.h>\nstatic void *g(void *a) { return a; }\n"
        "int f(void) { pthread_t t; return pthread_create(&t, 0, g, 0); }\n"
    ),
    "arc4random": "#include <stdlib.h>\nunsigned f(void) { return arc4random(); }\n",
}
# The GLIBC_x.y each one needs: reallocarray 2.26, memfd_create 2.27, pthread_create moved into
# libc in 2.34, arc4random 2.36.
EXPECTED = {
    "plain": None,
    "reallocarray": (2, 26),
    "memfd": (2, 27),
    "pthread": (2, 34),
    "arc4random": (2, 36),
}


def host_glibc() -> tuple[int, int]:
    text = os.confstr("CS_GNU_LIBC_VERSION") or "glibc 0.0"
    major, minor = text.split()[1].split(".")[:2]
    return int(major), int(minor)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to compile the test shared objects")
    out = tmp_path_factory.mktemp("elf")
    built = {}
    for name, source in SOURCES.items():
        if EXPECTED[name] is not None and EXPECTED[name] > host_glibc():
            continue  # this host's glibc cannot link it
        src = out / f"{name}.c"
        src.write_text(source)
        lib = out / f"lib{name}.so"
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
        built[name] = lib
    return built


def aarch64_copy(src: Path, dest: Path) -> Path:
    """A copy of an x86_64 ELF file with e_machine set to EM_AARCH64 (183)."""
    data = bytearray(src.read_bytes())
    data[18:20] = (183).to_bytes(2, "little")
    dest.write_bytes(bytes(data))
    return dest


def tree(tmp_path: Path, compiled: dict[str, Path], names: list[str]) -> Path:
    root = tmp_path / "layer"
    (root / "python" / "pkg").mkdir(parents=True)
    for name in names:
        # no .so suffix: detection is by magic bytes, like numpy.libs/libopenblas-...so.0
        shutil.copy(compiled[name], root / "python" / "pkg" / f"lib{name}-abc123.so.0")
    (root / "python" / "pkg" / "__init__.py").write_text("")
    (root / "python" / "pkg" / "fake.so").write_text("not an ELF file")
    return root


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("GLIBC_2.28", (2, 28)),
        ("GLIBC_2.2.5", (2, 2)),
        ("GLIBC_PRIVATE", None),
        ("GLIBCXX_3.4.21", None),
        ("GCC_3.0", None),
    ],
)
def test_parse_glibc_version(name: str, expected: tuple[int, int] | None) -> None:
    assert parse_glibc_version(name) == expected


@pytest.mark.parametrize("name", list(SOURCES))
def test_scan_reads_the_highest_glibc_version_needed(
    tmp_path: Path, compiled: dict[str, Path], name: str
) -> None:
    if name not in compiled:
        pytest.skip(f"host glibc {host_glibc()} is older than {EXPECTED[name]}")
    root = tree(tmp_path, compiled, [name])
    files = scan_tree(root)
    assert files == (ElfFile(f"python/pkg/lib{name}-abc123.so.0", "x86_64", EXPECTED[name]),)


def test_glibc_limits_follow_the_runtime(tmp_path: Path, compiled: dict[str, Path]) -> None:
    if "pthread" not in compiled:
        pytest.skip("host glibc older than 2.34")
    root = tree(tmp_path, compiled, ["plain", "reallocarray", "memfd", "pthread"])
    flagged_39 = {p.path.split("/")[-1] for p in check_tree(root, PY39)}
    flagged_312 = {p.path.split("/")[-1] for p in check_tree(root, PY312)}
    # 2.26 is exactly Amazon Linux 2's glibc: allowed; 2.27 and 2.34 are not.
    assert flagged_39 == {"libmemfd-abc123.so.0", "libpthread-abc123.so.0"}
    # 2.34 is exactly Amazon Linux 2023's glibc: everything loads.
    assert flagged_312 == set()


def test_glibc_above_al2023_is_flagged_for_python312(
    tmp_path: Path, compiled: dict[str, Path]
) -> None:
    if "arc4random" not in compiled:
        pytest.skip("host glibc older than 2.36")
    root = tree(tmp_path, compiled, ["arc4random"])
    (problem,) = check_tree(root, PY312)
    assert problem.path == "python/pkg/libarc4random-abc123.so.0"
    assert "needs GLIBC_2.36 but python3.12 (Amazon Linux 2023) has 2.34" in problem.message


def test_message_names_file_needed_and_available_glibc(
    tmp_path: Path, compiled: dict[str, Path]
) -> None:
    root = tree(tmp_path, compiled, ["memfd"])
    (problem,) = check_tree(root, PY39)
    assert problem.path == "python/pkg/libmemfd-abc123.so.0"
    assert "needs GLIBC_2.27 but python3.9 (Amazon Linux 2) has 2.26" in problem.message


def test_wrong_architecture_is_flagged(tmp_path: Path, compiled: dict[str, Path]) -> None:
    root = tree(tmp_path, compiled, ["plain"])
    aarch64_copy(compiled["plain"], root / "python" / "pkg" / "_arm.cpython-39.so")
    assert scan_tree(root)[0] == ElfFile("python/pkg/_arm.cpython-39.so", "aarch64", None)
    problems = check_tree(root, PY39)
    assert [p.path for p in problems] == ["python/pkg/_arm.cpython-39.so"]
    assert "built for aarch64" in problems[0].message
    # ...and the x86_64 file is the odd one out on an arm64 target.
    assert [p.path for p in check_tree(root, PY39_ARM)] == ["python/pkg/libplain-abc123.so.0"]


def test_only_restricts_the_scan_to_given_paths(tmp_path: Path, compiled: dict[str, Path]) -> None:
    root = tree(tmp_path, compiled, ["plain", "memfd"])
    assert check_tree(root, PY39, only=["python/pkg/libplain-abc123.so.0"]) == ()
    assert len(check_tree(root, PY39, only=["python/pkg/libmemfd-abc123.so.0"])) == 1


def test_truncated_elf_is_a_problem(tmp_path: Path, compiled: dict[str, Path]) -> None:
    root = tmp_path / "layer"
    root.mkdir()
    (root / "broken.so").write_bytes(compiled["plain"].read_bytes()[:40])
    (problem,) = check_tree(root, PY39)
    assert problem.path == "broken.so"
    assert "cannot be read" in problem.message


def test_check_files_is_pure_and_ordered() -> None:
    files = [
        ElfFile("b.so", "x86_64", (2, 28)),
        ElfFile("a.so", "aarch64", (2, 17)),
        ElfFile("c.so", "x86_64", (2, 17)),
    ]
    problems = check_files(files, PY39)
    assert [p.path for p in problems] == ["a.so", "b.so"]
    assert file_problems(ElfFile("x.so", "aarch64", (2, 30)), PY39_ARM) == (
        Finding(
            Severity.ERROR,
            "x.so",
            "needs GLIBC_2.30 but python3.9 (Amazon Linux 2) has 2.26; pin a release with a "
            "manylinux_2_26 (or older) wheel",
            code="elf-glibc",
            path="x.so",
        ),
    )
