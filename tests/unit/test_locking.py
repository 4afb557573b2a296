"""The one file lock and OS errors at the edges: a read-only or full folder is one paragraph.

Root ignores chmod, so a read-only checkout is made two ways: an EROFS injected where the lock
file is opened (fast, everywhere), and a real read-only bind mount in a private mount namespace
(``unshare -m``; skipped where that is not allowed).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from layerkit.errors import BuildError, StorageError
from layerkit.locking import exclusive, storage_error
from layerkit.project.spec import load_project
from tests.unit.build.test_pipeline import build, locked

REPO = Path(__file__).resolve().parents[2]


def refuse(holder: str) -> BuildError:
    return BuildError(f"held by {holder}")


def read_only(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Opening a file for writing below ``folder`` fails as on a read-only file system."""
    real_open = Path.open

    def fake_open(self: Path, mode: str = "r", *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if any(c in mode for c in "wa+x") and folder in self.parents:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real_open(self, mode, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", fake_open)


def test_an_unwritable_lock_is_one_paragraph_naming_the_folder_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_only(monkeypatch, tmp_path)
    with pytest.raises(StorageError) as info, exclusive(tmp_path / ".lock", refuse, needed="X"):
        pass
    message = str(info.value)
    assert str(tmp_path) in message
    assert "Read-only file system" in message
    assert "layerkit needed it for X" in message
    assert "writable copy of the project" in message
    assert "\n" not in message


def test_a_reader_goes_on_without_the_lock_it_cannot_create(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_only(monkeypatch, tmp_path)
    with exclusive(tmp_path / ".lock", refuse, skip_unwritable=True) as held:
        assert held is False
    assert not (tmp_path / ".lock").exists()


def test_a_full_disk_says_to_free_space() -> None:
    exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/x/dist/layers/.a.zip.1.tmp")
    message = str(storage_error(Path("/x/dist"), "the zip of layer a", exc))
    assert "No space left on device" in message
    assert "free some space" in message
    assert "/x/dist/layers/.a.zip.1.tmp" in message


def test_a_fresh_build_in_a_read_only_dist_does_nothing_and_a_stale_one_says_why(
    make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from layerkit import commands

    project = load_project(make_project())
    locked(project)
    first = build(project, functions=False)
    manifest = (first.out_dir / "manifest.json").read_bytes()
    read_only(monkeypatch, project.dist_dir)
    again = build(project, functions=False)  # nothing to do: no lock needed, nothing written
    assert again.built == ()
    assert set(again.records) == set(first.records)
    assert commands.status(project).rows  # status reads only
    with pytest.raises(StorageError, match=r"building layer base, layer top"):
        build(project, functions=False, force=True)
    assert (first.out_dir / "manifest.json").read_bytes() == manifest


def test_a_full_disk_during_a_build_is_a_paragraph_and_leaves_nothing_half_written(
    make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from layerkit.build import archive

    project = load_project(make_project())
    locked(project)

    def full(*args: object, **kwargs: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(project.dist_dir / "x.tmp"))

    monkeypatch.setattr(archive, "_write_entries", full)
    with pytest.raises(StorageError, match="No space left on device"):
        build(project, functions=False)
    out = project.dist_dir
    assert not list(out.rglob("*.tmp"))
    assert not list(out.rglob("*.zip"))


def can_mount_read_only(folder: Path) -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c",
         f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder}"],
        capture_output=True, check=False,
    )  # fmt: skip
    return probe.returncode == 0


def test_a_real_read_only_checkout(make_project: Callable[..., Path]) -> None:
    """The project folder bind-mounted read-only in a private mount namespace (root only)."""
    root = make_project()
    if not can_mount_read_only(root):
        pytest.skip("needs root and `unshare -m` to bind-mount a folder read-only")
    project = load_project(root)
    locked(project)
    build(project, functions=False)
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from layerkit import commands
        from layerkit.errors import LayerkitError
        from layerkit.project.spec import load_project
        from tests.unit.build.test_pipeline import build
        project = load_project(Path({str(root)!r}))
        print("status", len(commands.status(project).rows))
        print("fresh build", build(project, functions=False).built)
        try:
            build(project, functions=False, force=True)
        except LayerkitError as exc:
            print("forced:", exc)
        try:
            commands.report(project)
        except LayerkitError as exc:
            print("report:", exc)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c",
         f'mount --bind {root} {root} && mount -o remount,ro,bind {root} && exec "$0" -c "$1"',
         sys.executable, script],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "status 3" in proc.stdout  # two layers and the function
    assert "fresh build ()" in proc.stdout
    assert "forced:" in proc.stdout
    assert "report: " in proc.stdout
    assert "needed it for the report report.json" in proc.stdout
    assert not list(project.dist_dir.glob(".*.tmp"))
    assert "Read-only file system" in proc.stdout
    assert str(project.dist_dir) in proc.stdout


def test_a_layer_cache_that_cannot_be_written_is_a_miss_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from layerkit.runtime.layercache import zip_sha256

    archive = tmp_path / "a.zip"
    archive.write_bytes(b"zip bytes")
    cache = tmp_path / "cache"
    cache.mkdir()
    read_only(monkeypatch, cache)
    monkeypatch.setattr(
        Path, "write_text", lambda self, *a, **k: (_ for _ in ()).throw(OSError(errno.EROFS, "ro"))
    )
    assert zip_sha256(archive, cache) == hashlib.sha256(b"zip bytes").hexdigest()
    assert list(cache.iterdir()) == []


def test_a_report_into_a_read_only_dist_is_a_paragraph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from layerkit.report import files

    dist = tmp_path / "dist"
    dist.mkdir()

    def read_only_write(self: Path, *args: object, **kwargs: object) -> int:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "write_text", read_only_write)
    with pytest.raises(StorageError) as info:
        files._write(dist / "report.json", "{}")
    assert f"{dist} cannot be written" in str(info.value)
    assert "the report report.json" in str(info.value)
    assert list(dist.iterdir()) == []
