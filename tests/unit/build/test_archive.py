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


def zipfile_reference(root: Path, dest: Path) -> bytes:
    """The archive as ``zipfile`` writes it, entry by entry: what layerkit wrote before."""
    from layerkit.build.archive import CHUNK, collect_files, zip_date_time

    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, path in collect_files(root):
            perm = 0o755 if path.stat().st_mode & 0o111 else 0o644
            info = zipfile.ZipInfo(name, date_time=zip_date_time())
            info.external_attr = (stat.S_IFREG | perm) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            with path.open("rb") as src, zf.open(info, "w") as out:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
    return dest.read_bytes()


@pytest.mark.parametrize("workers", [1, 3])
def test_parallel_compression_writes_exactly_what_zipfile_writes(
    tmp_path: Path, workers: int
) -> None:
    root = tree(tmp_path / "a", 5)
    big = bytes(range(256)) * 9000 + os.urandom(700_000)  # > 1 MiB: several pieces
    (root / "python" / "pkg" / "big.so").write_bytes(big)
    (root / "python" / "pkg" / "empty.py").write_bytes(b"")
    (root / "python" / "pkg" / "café.txt").write_text("non-ascii name\n")
    for i in range(40):
        (root / "python" / "many" / f"m{i:02}.py").parent.mkdir(exist_ok=True)
        (root / "python" / "many" / f"m{i:02}.py").write_text(f"X = {i}\n" * i)
    info = write_zip(root, tmp_path / "a.zip", workers=workers)
    assert info.path.read_bytes() == zipfile_reference(root, tmp_path / "ref.zip")
    assert info.unzipped_bytes == sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    with zipfile.ZipFile(info.path) as zf:
        assert zf.testzip() is None
        assert zf.read("python/pkg/big.so") == big


def test_the_step_cache_changes_no_byte_and_deflates_a_large_file_once(tmp_path: Path) -> None:
    from layerkit.build.archive import MEMO_MIN
    from layerkit.build.memo import StepCache
    from tests.unit.build.fakes import CountingMemo

    root = tree(tmp_path / "a", 5)
    (root / "python" / "pkg" / "big.so").write_bytes(os.urandom(MEMO_MIN) * 3)
    (root / "python" / "pkg" / "also.so").write_bytes(b"\x01" * MEMO_MIN)
    plain = write_zip(root, tmp_path / "plain.zip")
    memo = CountingMemo(StepCache(tmp_path / "steps"))
    first = write_zip(root, tmp_path / "first.zip", memo=memo)
    assert (memo.hits, memo.misses) == (0, 2)  # only the two large files are looked up
    second = write_zip(root, tmp_path / "second.zip", memo=memo)
    assert (memo.hits, memo.misses) == (2, 2)
    assert plain.sha256 == first.sha256 == second.sha256
    for entry in (tmp_path / "steps").rglob("*"):  # a damaged cache still gives the same zip
        if entry.is_file():
            entry.write_bytes(entry.read_bytes()[:-1])
    assert write_zip(root, tmp_path / "third.zip", memo=memo).sha256 == plain.sha256
