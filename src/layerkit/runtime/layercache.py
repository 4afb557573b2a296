"""Extracted zips shared between sandbox runs: read-only trees keyed by the zip's sha256.

Unzipping the three layers of a function takes seconds (~240 MB); a sandbox run should not pay
that every time. :func:`extracted` unzips an archive once into ``<cache>/zips/<sha256>/`` and
:func:`merged` lays the layers of one function over each other, in order, into
``<cache>/opt/<key>/`` (hard links to the extracted files, so a merge costs no copy). Both trees
are read-only, as ``/opt`` and ``/var/task`` are on Lambda: no write bit on any file or folder,
so a handler that writes there gets the ``PermissionError`` / ``OSError`` it would get on AWS,
and no run can change what the next one sees.

Concurrent and interrupted runs are safe: a tree is built in a temporary folder named after the
building process and renamed into place in one step; a reader only ever sees complete trees.
Half-built folders left by a killed process are removed by the next run that finds them (their
process is gone). The cache does not grow without end: when a new tree is made, the trees of the
same kind beyond the :data:`KEEP` most recently used are deleted, unless one was used in the
last :data:`IN_USE_S` seconds (a sandbox may still be reading it). The cache lives in
``$LAYERKIT_CACHE_DIR``, else ``.layerkit/cache`` in the project, else ``~/.cache/layerkit``;
deleting it is always safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from layerkit.digest import sha256_file
from layerkit.errors import SandboxError

CACHE_ENV = "LAYERKIT_CACHE_DIR"
PROJECT_CACHE = Path(".layerkit") / "cache"
_TMP_PREFIX = ".tmp-"
#: Trees of one kind (extracted zips, merged /opt folders, runtime SDKs) kept whatever their
#: age: the most recently used. A layer rebuilt all day adds a ~100 MB tree per build.
KEEP = 12
#: A tree used this recently is never deleted: a sandbox (up to Lambda's 15 minutes) may read it.
IN_USE_S = 30 * 60
_READ_ONLY_FILE = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_EXEC = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH


def configured_cache_dir() -> Path | None:
    """The folder ``$LAYERKIT_CACHE_DIR`` names (absolute), or None when it is unset or empty."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).absolute() if env else None


def default_cache_dir(project_root: Path | None = None) -> Path:
    """Where extracted zips are kept: ``$LAYERKIT_CACHE_DIR``, the project's, or the user's."""
    configured = configured_cache_dir()
    if configured is not None:
        return configured
    if project_root is not None:
        return Path(project_root).absolute() / PROJECT_CACHE
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "layerkit"


def make_read_only(root: Path) -> None:
    """Remove every write bit under ``root`` (files keep their execute bits), ``root`` last."""
    for folder, dirs, files in os.walk(root, topdown=False):
        for name in files:
            path = os.path.join(folder, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                os.chmod(path, _READ_ONLY_FILE | (mode & _EXEC))
        for name in dirs:
            os.chmod(os.path.join(folder, name), _READ_ONLY_FILE | _EXEC)
    os.chmod(root, _READ_ONLY_FILE | _EXEC)


def remove_tree(root: Path) -> None:
    """Delete a (possibly read-only) tree: write bits are put back on folders first."""
    if not root.exists():
        return
    for folder, dirs, _ in os.walk(root):
        os.chmod(folder, stat.S_IRWXU)
        for name in dirs:
            os.chmod(os.path.join(folder, name), stat.S_IRWXU)
    shutil.rmtree(root)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process
        return True
    return True


def _remove_abandoned(folder: Path) -> None:
    """Delete half-built trees whose building process is gone (a killed run left them)."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if not entry.name.startswith(_TMP_PREFIX):
            continue
        try:
            pid = int(entry.name.split("-")[2])
        except (IndexError, ValueError):
            pid = -1
        if pid <= 0 or not _pid_alive(pid):
            remove_tree(entry)


def _publish(tmp: Path, final: Path) -> Path:
    """Rename a complete tree into place; if another process won the race, keep its tree."""
    make_read_only(tmp)
    try:
        tmp.rename(final)
    except OSError:
        if not final.is_dir():
            remove_tree(tmp)
            raise
        remove_tree(tmp)  # an identical tree got there first
    return final


def _build_dir(folder: Path, key: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{_TMP_PREFIX}{key[:16]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


def cached_tree(folder: Path, key: str, fill: Callable[[Path], object]) -> Path:
    """The read-only tree ``folder/key``, made by ``fill`` (given an empty folder) the first time.

    Made in a temporary folder and renamed into place, as every tree of the cache is. A half-made
    tree (``fill`` failed, or was interrupted) is removed; trees that killed runs left are removed
    before a new one is made.
    """
    final = folder / key
    if final.is_dir():
        _touch(final)
        return final
    _remove_abandoned(folder)
    tmp = _build_dir(folder, key)
    try:
        fill(tmp)
    except BaseException:
        remove_tree(tmp)
        raise
    made = _publish(tmp, final)
    _prune(folder)
    return made


def _touch(tree: Path) -> None:
    """Mark ``tree`` used now (its mtime); a read-only cache just keeps the old time."""
    with contextlib.suppress(OSError):
        os.utime(tree)


def _prune(folder: Path, now: float | None = None) -> None:
    """Delete the trees in ``folder`` beyond the newest :data:`KEEP` not used for IN_USE_S."""
    used = []
    for entry in folder.iterdir():
        if entry.name.startswith(_TMP_PREFIX):
            continue
        with contextlib.suppress(OSError):
            used.append((entry.stat().st_mtime, entry.name))
    used.sort(reverse=True)
    now = time.time() if now is None else now
    for last, name in used[KEEP:]:
        if now - last > IN_USE_S:
            with contextlib.suppress(OSError):  # another process may be pruning it too
                remove_tree(folder / name)


def zip_sha256(archive: Path, cache: Path) -> str:
    """The sha256 of ``archive``, remembered in the cache by path (with its size and mtime).

    Hashing the ML layer takes longer than a warm invoke should; a zip that is rewritten gets a
    new mtime (and almost always a new size), so it is hashed again.
    """
    import json

    info = Path(archive).stat()
    key = str(Path(archive).absolute())
    seen = [info.st_size, info.st_mtime_ns]
    memo = Path(cache) / "sha256.json"
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    entry = known.get(key)
    if isinstance(entry, list) and entry[:2] == seen and len(str(entry[-1])) == 64:
        return str(entry[-1])
    digest = sha256_file(Path(archive))
    # one entry per path (a rebuilt zip replaces its own), none for zips that are gone
    known = {k: v for k, v in known.items() if isinstance(v, list) and os.path.exists(k)}
    known[key] = [*seen, digest]
    tmp = memo.with_name(f".sha256.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(known), encoding="utf-8")
        tmp.replace(memo)  # concurrent writers: the last one wins, each file whole
    except OSError:  # a read-only or full cache is a miss next time, not a failure
        tmp.unlink(missing_ok=True)
    return digest


def extracted(archive: Path, cache: Path, *, sha256: str | None = None) -> Path:
    """The read-only tree of ``archive`` in the cache, unzipping it the first time only.

    ``sha256`` (hex) saves hashing the zip when the caller knows it (the build manifest, the
    local stage's content-addressed store).
    """
    from layerkit.runtime.sandbox import extract_zip

    archive = Path(archive)
    if not archive.is_file():
        raise SandboxError(f"{archive} does not exist; build it first (`inv build.all`).")
    digest = sha256 or zip_sha256(archive, cache)
    return cached_tree(Path(cache) / "zips", digest, lambda tmp: extract_zip(archive, tmp))


def _link_tree(source: Path, dest: Path) -> None:
    """Hard-link every file of ``source`` into ``dest``; a file already there is replaced."""
    for folder, dirs, files in os.walk(source):
        rel = Path(folder).relative_to(source)
        target = dest / rel
        for name in dirs:
            sub = target / name
            if sub.is_file() or sub.is_symlink():
                raise SandboxError(
                    f"{source}: folder {rel / name} would replace a file that an earlier layer "
                    "put at the same path; Lambda would fail to extract it."
                )
            sub.mkdir(exist_ok=True)
        for name in files:
            link = target / name
            if link.is_dir():
                raise SandboxError(
                    f"{source}: file {rel / name} would replace a folder that an earlier "
                    "layer put at the same path; Lambda would fail to extract it."
                )
            if link.exists():
                link.unlink()  # a later layer's file overwrites an earlier one's, as on Lambda
            try:
                os.link(Path(folder) / name, link)
            except OSError:  # pragma: no cover - a cache on a filesystem without hard links
                shutil.copy2(Path(folder) / name, link)


def merged(layer_zips: Sequence[Path], cache: Path, *, sha256s: Sequence[str] = ()) -> Path:
    """The read-only ``/opt`` of ``layer_zips`` extracted in order, from the cache.

    A later layer's file overwrites an earlier one's, as on Lambda. ``sha256s`` (hex, one per
    zip) saves hashing the zips. No layers: an empty read-only folder.
    """
    digests = list(sha256s) or [zip_sha256(Path(z), cache) for z in layer_zips]
    trees = [extracted(Path(z), cache, sha256=d) for z, d in zip(layer_zips, digests, strict=True)]
    key = hashlib.sha256(" ".join(digests).encode()).hexdigest()

    def link_all(tmp: Path) -> None:
        for tree in trees:
            _link_tree(tree, tmp)

    return cached_tree(Path(cache) / "opt", key, link_all)
