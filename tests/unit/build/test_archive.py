import os
import stat
import zipfile
from pathlib import Path

import pytest

from layerkit.build.archive import write_zip
from layerkit.errors import BuildError


def tree(root: Path, mtime: int) -> Path:
    (root / "python" / "pkg").mkdir(parents=True)
    (root / "python" / "pkg" / "__init__.py").write_text("x = 1\n")
    (root / "python" / "b.txt").write_text("b")
    (root / "python" / "tool").write_text("#!/bin/sh\n")
    os.chmod(root / "python" / "tool", 0o700)
    os.chmod(root / "python" / "b.txt", 0o600)
    for p in root.rglob("*"):
        os.utime(p, (mtime, mtime))
    return root


def test_same_tree_gives_same_bytes_whatever_the_times(tmp_path: Path) -> None:
    a = write_zip(tree(tmp_path / "a", 1_700_000_000), tmp_path / "a.zip")
    b = write_zip(tree(tmp_path / "b", 1_600_000_000), tmp_path / "b.zip")
    assert a.sha256 == b.sha256
    assert (a.files, a.unzipped_bytes) == (3, len("x = 1\n") + 1 + len("#!/bin/sh\n"))


def test_entries_sorted_modes_normalised_times_fixed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    info = write_zip(tree(tmp_path / "a", 5), tmp_path / "a.zip")
    with zipfile.ZipFile(info.path) as zf:
        names = zf.namelist()
        assert names == sorted(names) == ["python/b.txt", "python/pkg/__init__.py", "python/tool"]
        modes = {i.filename: stat.S_IMODE(i.external_attr >> 16) for i in zf.infolist()}
        assert modes == {
            "python/b.txt": 0o644,
            "python/pkg/__init__.py": 0o644,
            "python/tool": 0o755,
        }
        assert {i.date_time for i in zf.infolist()} == {(2023, 11, 14, 22, 13, 20)}


def test_source_date_epoch_changes_the_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write_zip(tree(tmp_path / "a", 5), tmp_path / "a.zip")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert write_zip(tmp_path / "a", tmp_path / "b.zip").sha256 != first.sha256


def test_symlinks_are_refused_and_nothing_is_left(tmp_path: Path) -> None:
    root = tree(tmp_path / "a", 5)
    (root / "python" / "link").symlink_to(root / "python" / "b.txt")
    with pytest.raises(BuildError, match="symbolic link"):
        write_zip(root, tmp_path / "out" / "a.zip")
    assert not (tmp_path / "out" / "a.zip").exists()


def test_an_interrupted_write_keeps_the_old_zip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tree(tmp_path / "a", 5)
    old = write_zip(root, tmp_path / "a.zip")
    (root / "python" / "big.bin").write_bytes(b"0" * 100)

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("layerkit.build.archive.os.replace", boom)
    with pytest.raises(KeyboardInterrupt):
        write_zip(root, tmp_path / "a.zip")
    from layerkit.build.archive import sha256_file

    assert sha256_file(tmp_path / "a.zip") == old.sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "a.zip"]


def test_non_utf8_file_names_are_refused(tmp_path: Path) -> None:
    root = tree(tmp_path / "a", 5)
    (root / "python" / os.fsdecode(b"caf\xe9.txt")).write_text("x")
    with pytest.raises(BuildError, match="not valid UTF-8"):
        write_zip(root, tmp_path / "a.zip")
