"""The shared cache of extracted zips: read-only, keyed by sha256, safe to race and to kill."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from layerkit.errors import SandboxError
from layerkit.runtime import layercache


def make_zip(path: Path, files: Mapping[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def writable(root: Path) -> list[Path]:
    return [p for p in (root, *root.rglob("*")) if p.stat().st_mode & 0o222]


def test_a_zip_is_extracted_once_read_only_under_its_sha256(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"python/a.py": "A = 1", "bin/tool": "#!/bin/sh"})
    cache = tmp_path / "cache"
    tree = layercache.extracted(archive, cache)
    assert tree == cache / "zips" / hashlib.sha256(archive.read_bytes()).hexdigest()
    assert (tree / "python" / "a.py").read_text() == "A = 1"
    assert writable(tree) == []
    if os.geteuid() != 0:  # root writes through mode bits; the sandbox drops that privilege
        with pytest.raises(PermissionError):
            (tree / "python" / "new.py").write_text("x")
    inode = (tree / "python" / "a.py").stat().st_ino
    assert layercache.extracted(archive, cache) == tree  # second time: nothing extracted
    assert (tree / "python" / "a.py").stat().st_ino == inode


def test_merged_opt_overlays_layers_in_order_and_is_shared(tmp_path: Path) -> None:
    first = make_zip(tmp_path / "1.zip", {"python/shared.py": "first", "python/one.py": "1"})
    second = make_zip(tmp_path / "2.zip", {"python/shared.py": "second"})
    cache = tmp_path / "cache"
    opt = layercache.merged([first, second], cache)
    assert (opt / "python" / "shared.py").read_text() == "second"
    assert (opt / "python" / "one.py").read_text() == "1"
    assert writable(opt) == []
    assert layercache.merged([first, second], cache) == opt
    other = layercache.merged([second, first], cache)  # another order is another /opt
    assert other != opt
    assert (other / "python" / "shared.py").read_text() == "first"
    # the cached tree of the first layer is untouched by the overlay
    assert (layercache.extracted(first, cache) / "python" / "shared.py").read_text() == "first"
    assert layercache.merged([], cache).is_dir()


def test_a_file_replacing_a_folder_is_refused_like_lambda(tmp_path: Path) -> None:
    first = make_zip(tmp_path / "1.zip", {"python/pkg/__init__.py": ""})
    second = make_zip(tmp_path / "2.zip", {"python/pkg": "a file"})
    with pytest.raises(SandboxError, match="would replace a folder"):
        layercache.merged([first, second], tmp_path / "cache")
    assert not [p for p in (tmp_path / "cache" / "opt").iterdir() if p.name.startswith(".tmp")]


def test_racing_runs_share_one_complete_tree(tmp_path: Path) -> None:
    files = {f"python/m{i}.py": str(i) * 1000 for i in range(200)}
    archive = make_zip(tmp_path / "big.zip", files)
    cache = tmp_path / "cache"
    found: list[Path] = []
    threads = [
        threading.Thread(target=lambda: found.append(layercache.extracted(archive, cache)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 1
    assert len(list(found[0].rglob("*.py"))) == 200
    assert sorted(p.name for p in (cache / "zips").iterdir()) == [found[0].name]


def test_a_tree_left_half_built_by_a_killed_run_is_removed_and_never_used(
    tmp_path: Path,
) -> None:
    archive = make_zip(tmp_path / "a.zip", {"python/a.py": "A = 1"})
    cache = tmp_path / "cache"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    half = cache / "zips" / f".tmp-{digest[:16]}-{dead.stdout.strip()}-deadbeef"
    (half / "python").mkdir(parents=True)
    (half / "python" / "a.py").write_text("half")
    os.chmod(half / "python", stat.S_IRUSR | stat.S_IXUSR)
    tree = layercache.extracted(archive, cache)
    assert (tree / "python" / "a.py").read_text() == "A = 1"
    assert not half.exists()


def test_remove_tree_deletes_a_read_only_tree(tmp_path: Path) -> None:
    tree = layercache.extracted(make_zip(tmp_path / "a.zip", {"x/y.py": ""}), tmp_path / "c")
    layercache.remove_tree(tree)
    assert not tree.exists()


def test_default_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(layercache.CACHE_ENV, raising=False)
    assert layercache.default_cache_dir(tmp_path) == tmp_path / ".layerkit" / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert layercache.default_cache_dir() == tmp_path / "xdg" / "layerkit"
    monkeypatch.setenv(layercache.CACHE_ENV, str(tmp_path / "env"))
    assert layercache.default_cache_dir(tmp_path) == tmp_path / "env"


def test_a_zip_rewritten_in_place_is_hashed_again(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"python/a.py": "A = 1"})
    cache = tmp_path / "cache"
    first = layercache.extracted(archive, cache)
    assert layercache.zip_sha256(archive, cache) == first.name
    make_zip(archive, {"python/a.py": "A = 22"})
    os.utime(archive, ns=(1, 1))  # a new mtime, whatever the clock's resolution
    second = layercache.extracted(archive, cache)
    assert second != first
    assert (second / "python" / "a.py").read_text() == "A = 22"
    (cache / "sha256.json").write_text("null")  # a damaged memo is only a slower call
    assert layercache.zip_sha256(archive, cache) == second.name


def test_a_new_tree_deletes_the_least_recently_used_beyond_keep(tmp_path: Path) -> None:
    folder = tmp_path / "cache" / "zips"
    old = time.time() - layercache.IN_USE_S - 60
    for i in range(layercache.KEEP + 3):  # unused for longer than IN_USE_S, oldest first
        tree = layercache.cached_tree(folder, f"k{i:02d}", lambda t: (t / "f").write_text("x"))
        os.utime(tree, (old + i, old + i))
    recent = folder / "k00"
    layercache.cached_tree(folder, "k00", lambda t: None)  # used again: now the newest
    layercache.cached_tree(folder, "new", lambda t: (t / "f").write_text("y"))
    kept = sorted(p.name for p in folder.iterdir())
    assert len(kept) == layercache.KEEP
    assert recent.is_dir()
    assert "new" in kept
    assert not {"k01", "k02", "k03", "k04"} & set(kept)  # the least recently used went


def test_a_tree_used_within_in_use_s_is_never_deleted(tmp_path: Path) -> None:
    folder = tmp_path / "cache" / "opt"
    for i in range(layercache.KEEP + 2):  # all used just now: a sandbox may be reading each
        layercache.cached_tree(folder, f"k{i:02d}", lambda t: None)
    assert len(list(folder.iterdir())) == layercache.KEEP + 2


def test_the_hash_memo_keeps_one_entry_per_existing_zip(tmp_path: Path) -> None:
    import json

    cache = tmp_path / "cache"
    kept = make_zip(tmp_path / "kept.zip", {"a.py": "1"})
    gone = make_zip(tmp_path / "gone.zip", {"b.py": "2"})
    layercache.zip_sha256(kept, cache)
    layercache.zip_sha256(gone, cache)
    gone.unlink()
    for version in range(3):  # rebuilt three times: one entry, the newest
        make_zip(kept, {"a.py": str(version)})
        os.utime(kept, ns=(version + 10, version + 10))
        digest = layercache.zip_sha256(kept, cache)
    memo = json.loads((cache / "sha256.json").read_text())
    assert list(memo) == [str(kept.absolute())]
    assert memo[str(kept.absolute())][-1] == digest == hashlib.sha256(kept.read_bytes()).hexdigest()
