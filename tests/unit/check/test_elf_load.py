"""Stripped files proven loadable: PT_LOAD alignment, the fallback to the original, arm64 strip.

Real files: an extension module of this interpreter's own standard library (a real CPython
extension module with its symbols), rewritten by patchelf as auditwheel and repair tools do,
then stripped by the build's strip step. GNU strip 2.40 keeps such a file aligned here, so the
misaligned case is made deterministically by moving a PT_LOAD offset in a copy.
"""

from __future__ import annotations

import ctypes
import importlib.util
import platform
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from layerkit.build import slim
from layerkit.build.slim import Tree
from layerkit.build.tools import SystemStrip
from layerkit.check.elf import load_problem, strippable_bytes
from layerkit.runtime.target import Target


def extension_module() -> Path:
    """A real extension module of this interpreter (lib-dynload), or skip.

    Found by its module spec, so a virtualenv (nox's) finds its base interpreter's file.
    """
    spec = importlib.util.find_spec("_bisect")
    origin = Path(spec.origin) if spec is not None and spec.origin else None
    if origin is None or origin.suffix != ".so" or not origin.is_file():
        pytest.skip("this interpreter's _bisect is not an extension module file to copy")
    return origin


def misalign(path: Path, by: int = 0x10) -> None:
    """Move the file offset of the last PT_LOAD segment by ``by`` bytes (ELF64 little-endian)."""
    with path.open("rb") as fh:
        elf = ELFFile(fh)
        phoff, entsize = elf["e_phoff"], elf["e_phentsize"]
        loads = [i for i, seg in enumerate(elf.iter_segments()) if seg["p_type"] == "PT_LOAD"]
    data = bytearray(path.read_bytes())
    at = phoff + loads[-1] * entsize + 8  # p_type, p_flags (4 bytes each), then p_offset
    (offset,) = struct.unpack_from("<Q", data, at)
    struct.pack_into("<Q", data, at, offset + by)
    path.write_bytes(bytes(data))


@pytest.fixture
def patched(tmp_path: Path) -> Path:
    """A copy of a real extension module rewritten by patchelf (rpath and a needed library)."""
    patchelf = shutil.which("patchelf")
    if patchelf is None:
        pytest.skip("patchelf (the test group's `patchelf` package) is not installed")
    root = tmp_path / "python"
    (root / "pkg").mkdir(parents=True)
    dest = root / "pkg" / extension_module().name
    shutil.copy2(extension_module(), dest)
    subprocess.run(
        [patchelf, "--set-rpath", "$ORIGIN/../pkg.libs/" + "x" * 200, str(dest)], check=True
    )
    subprocess.run([patchelf, "--add-needed", "libm.so.6", str(dest)], check=True)
    return dest


def test_a_misaligned_pt_load_is_found_and_the_loader_agrees(patched: Path) -> None:
    assert load_problem(patched) is None
    misalign(patched)
    problem = load_problem(patched)
    assert problem is not None
    assert "not page-aligned" in problem
    with pytest.raises(OSError, match="not page-aligned"):  # what the dynamic loader says
        ctypes.CDLL(str(patched))


def test_a_truncated_file_is_a_load_problem(patched: Path) -> None:
    patched.write_bytes(patched.read_bytes()[:2000])
    assert load_problem(patched) is not None


def test_the_build_strip_of_a_patchelfed_module_is_proven(patched: Path) -> None:
    """The real strip step on a patchelf'd module: either a loadable smaller file or the original."""
    if SystemStrip().version() is None:
        pytest.skip("binutils strip is not installed")
    root = patched.parent.parent
    rel = patched.relative_to(root).as_posix()
    original = patched.read_bytes()
    result, tree = slim.strip_pass(root, Tree.scan(root), ())
    if result.unsafe:  # this strip misaligned it: the original stays
        assert patched.read_bytes() == original
    else:
        assert result.removed_files == 1
        assert tree.files[rel] < len(original)
        assert load_problem(patched) is None
        ctypes.CDLL(str(patched))  # and the loader takes it


class MisaligningStrip(SystemStrip):
    """The system strip, then a PT_LOAD offset moved: what broke the patchelf'd wheel set."""

    def strip(self, path: Path) -> bool:
        """Strip ``path``, then misalign it."""
        done = super().strip(path)
        misalign(path)
        return done


def test_a_stripped_copy_that_would_not_load_keeps_the_original_and_is_counted(
    patched: Path,
) -> None:
    if SystemStrip().version() is None:
        pytest.skip("binutils strip is not installed")
    root = patched.parent.parent
    rel = patched.relative_to(root).as_posix()
    original = patched.read_bytes()
    result, tree = slim.strip_pass(root, Tree.scan(root), (), stripper=MisaligningStrip())
    assert patched.read_bytes() == original
    assert tree.files[rel] == len(original)
    assert result.unsafe == (rel,)
    assert result.removed_files == 0
    assert "1 stripped file(s) failed the ELF check" in result.note
    assert rel in result.note
    assert not list(patched.parent.glob(".strip-*"))


def test_without_a_strip_for_the_target_the_note_says_what_it_costs(tmp_path: Path) -> None:
    root = tmp_path / "python"
    (root / "pkg").mkdir(parents=True)
    module = root / "pkg" / extension_module().name
    shutil.copy2(extension_module(), module)
    cost = strippable_bytes(module)
    assert cost > 0  # lib-dynload modules carry their symbol table
    absent = SystemStrip(name="aarch64-linux-gnu-strip-not-installed")
    result, _ = slim.strip_pass(root, Tree.scan(root), (), stripper=absent)
    assert result.removed_files == 0
    assert "not found, so 1 extension module(s) were not stripped" in result.note
    assert f"about {cost:,} bytes" in result.note


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the cross strip of an x86_64 host")
def test_arm64_files_are_stripped_by_the_aarch64_strip(monkeypatch: pytest.MonkeyPatch) -> None:
    tool = SystemStrip.for_target(Target("python3.12", "arm64"))
    assert tool.name == "aarch64-linux-gnu-strip"
    assert "binutils-aarch64-linux-gnu" in tool.missing
    assert SystemStrip.for_target(Target("python3.12")).name == "strip"
    monkeypatch.setenv("PATH", "/nonexistent")
    assert tool.version() is None  # then the strip pass says what was not stripped
