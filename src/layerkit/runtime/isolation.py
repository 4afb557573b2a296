"""Lambda's filesystem for a sandboxed process: only /tmp writable, and /tmp of a fixed size.

On Lambda ``/var/task`` and ``/opt`` are read-only file systems, ``/tmp`` is the only writable
place (512 MB, or the function's ``EphemeralStorage``) and the function runs as an unprivileged
user. :func:`isolation` returns what the sandbox's child runs between ``fork`` and ``exec`` to get
the same, in the strongest form this host allows, and says which form that is
(:class:`Isolation`):

``Isolation.NAMESPACE``
    A private mount namespace (``unshare(CLONE_NEWNS)``; for a user who is not root, inside a new
    user namespace that maps only that user, so the handler keeps no capability after ``exec``).
    The sandbox's ``opt/``, ``task/``, ``home/`` and the runtime's SDK are bind-mounted read-only
    over themselves, so a write fails even for root (``EROFS``: ``OSError: [Errno 30] Read-only
    file system``, Lambda's own error; a file without write permission gives ``PermissionError``
    first, as on Lambda); the host's ``/opt`` (and ``/var/task`` where the host has one) is
    covered by a read-only bind of the sandbox's ``opt/`` (``task/``), so a handler writing to the
    literal path ``/opt/...`` can never touch the host; ``tmp/`` is a fresh ``tmpfs`` of the
    function's ephemeral storage size, so a write beyond it fails with ``ENOSPC`` ("No space left
    on device") as on Lambda. For root, ``CAP_DAC_OVERRIDE`` and ``CAP_SYS_ADMIN`` are dropped
    too, so permission bits bind and the mounts cannot be undone.
``Isolation.PERMISSIONS``
    Where namespaces are not allowed (a container without ``CAP_SYS_ADMIN`` and without user
    namespaces): the trees have no write bit and, for root, ``CAP_DAC_OVERRIDE`` is dropped, so
    a write gets ``PermissionError``; the size of ``tmp/`` is watched by the parent
    (:func:`tree_mb`) and the process is killed above it. The literal ``/opt`` of the host is
    protected by its own permissions only (root owns it: a root handler could write there).
"""

from __future__ import annotations

import enum
import functools
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_REMOUNT = 32
_MS_NOATIME = 1024
_MS_NODIRATIME = 2048
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE = 1
_CAP_SYS_ADMIN = 21
#: statvfs flags a read-only remount must keep (the kernel locks them in a user namespace).
_KEPT_FLAGS = (
    (os.ST_NOSUID, _MS_NOSUID),
    (os.ST_NODEV, _MS_NODEV),
    (os.ST_NOEXEC, _MS_NOEXEC),
    (os.ST_NOATIME, _MS_NOATIME),
    (os.ST_NODIRATIME, _MS_NODIRATIME),
)
#: Where Lambda puts the layers and the function; covered read-only in the namespace.
LAMBDA_OPT = Path("/opt")
LAMBDA_TASK = Path("/var/task")


class Isolation(enum.Enum):
    """How the sandbox's filesystem is enforced on this host."""

    NAMESPACE = "mount namespace"
    PERMISSIONS = "permission bits"


@dataclass(frozen=True)
class Layout:
    """The folders of one sandboxed process (absolute paths)."""

    read_only: Sequence[Path]  # opt/, task/, home/, the runtime SDK
    tmp: Path
    tmp_mb: int
    opt: Path  # shown at /opt
    task: Path  # shown at /var/task where the host has that folder
    keep_visible: Sequence[Path] = ()  # paths that must not be hidden (interpreter, sandbox)


class _Libc:
    """The three system calls, through ctypes (imported lazily: only a child calls them)."""

    def __init__(self) -> None:
        import ctypes

        self.ctypes = ctypes
        self.lib = ctypes.CDLL(None, use_errno=True)

    def _check(self, result: int, what: str) -> None:
        if result != 0:
            errno = self.ctypes.get_errno()
            raise OSError(errno, f"{what}: {os.strerror(errno)}")

    def unshare(self, flags: int) -> None:
        self._check(self.lib.unshare(flags), "unshare")

    def mount(self, source: str, target: str, fstype: str | None, flags: int, data: str) -> None:
        result = self.lib.mount(
            source.encode(),
            target.encode(),
            fstype.encode() if fstype else None,
            self.ctypes.c_ulong(flags),
            data.encode() if data else None,
        )
        self._check(result, f"mount {target}")

    def drop_capabilities(self, *caps: int) -> None:
        for cap in caps:
            self.lib.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _enter_namespace(libc: _Libc, uid: int, gid: int) -> None:
    """A private mount namespace (in a user namespace mapping only us, for a non-root user)."""
    if uid == 0:
        libc.unshare(_CLONE_NEWNS)
    else:
        libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS)
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    libc.mount("none", "/", None, _MS_REC | _MS_PRIVATE, "")


def _bind_read_only(libc: _Libc, source: Path, target: Path) -> None:
    libc.mount(str(source), str(target), None, _MS_BIND | _MS_REC, "")
    kept = os.statvfs(target).f_flag
    flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY
    flags |= sum(ms for st, ms in _KEPT_FLAGS if kept & st)
    libc.mount("none", str(target), None, flags, "")


def _is_under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _cover(path: Path, layout: Layout) -> bool:
    """Whether ``path`` (``/opt``, ``/var/task``) can be covered without hiding the sandbox."""
    if not path.is_dir():
        return False
    return not any(_is_under(Path(p), path) for p in (*layout.keep_visible, *layout.read_only))


def _apply(libc: _Libc, layout: Layout, uid: int, gid: int) -> None:
    """Everything the child does in its namespace (raises OSError when a step is refused)."""
    _enter_namespace(libc, uid, gid)
    for folder in layout.read_only:
        _bind_read_only(libc, folder, folder)
    size = f"size={max(1, layout.tmp_mb)}m,mode=0700"
    if uid != 0:
        size += f",uid={uid},gid={gid}"
    libc.mount("tmpfs", str(layout.tmp), "tmpfs", _MS_NOSUID | _MS_NODEV, size)
    for real, mine in ((LAMBDA_OPT, layout.opt), (LAMBDA_TASK, layout.task)):
        if _cover(real, layout):
            _bind_read_only(libc, mine, real)


@functools.cache
def available() -> Isolation:
    """The strongest isolation this host allows (probed once per process, in a throw-away child)."""
    if os.environ.get("LAYERKIT_SANDBOX_ISOLATION", "").lower() == "permissions":
        return Isolation.PERMISSIONS
    import tempfile

    with tempfile.TemporaryDirectory(prefix="layerkit-probe-") as tmp:
        root = Path(tmp)
        for name in ("ro", "tmp"):
            (root / name).mkdir()
        layout = Layout((root / "ro",), root / "tmp", 1, root / "ro", root / "ro", (root,))
        probe = _preexec(layout, Isolation.NAMESPACE)
        try:
            done = subprocess.run(
                ["/bin/sh", "-c", "exit 0"],
                preexec_fn=probe,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=False,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            return Isolation.PERMISSIONS
    return Isolation.NAMESPACE if done.returncode == 0 else Isolation.PERMISSIONS


def _preexec(layout: Layout, mode: Isolation) -> Callable[[], None]:
    uid, gid = os.geteuid(), os.getegid()
    libc = _Libc()  # loaded here: the child of a threaded parent must not import anything

    def setup() -> None:  # runs in the child between fork and exec
        if mode is Isolation.NAMESPACE:
            _apply(libc, layout, uid, gid)
        if uid == 0:
            libc.drop_capabilities(_CAP_DAC_OVERRIDE, _CAP_SYS_ADMIN)

    return setup


def isolation(layout: Layout) -> tuple[Isolation, Callable[[], None] | None]:
    """The isolation in force and the ``preexec_fn`` that sets it up for one child.

    Returns ``None`` as the function for a non-root user without namespaces: the permission bits
    of the trees are all there is, and the parent watches ``tmp/``.
    """
    mode = available()
    if mode is Isolation.PERMISSIONS and os.geteuid() != 0:
        return mode, None
    return mode, _preexec(layout, mode)


def tree_mb(folder: Path) -> float:
    """The disk space the files under ``folder`` take, in MB (what a full /tmp counts)."""
    total = 0
    for path, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(path, name)).st_blocks * 512
            except OSError:
                continue
    return total / (1024 * 1024)
