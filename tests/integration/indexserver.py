"""Real package indexes on 127.0.0.1 for tests: pypiserver with basic auth, and tiny wheels."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def write_wheel(folder: Path, name: str, version: str, body: str = "", requires: str = "") -> Path:
    """A pure-Python wheel ``name-version-py3-none-any.whl`` with one module ``name``."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": body or f"VERSION = {version!r}\n",
        f"{dist}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            + "".join(f"Requires-Dist: {r}\n" for r in requires.split(",") if r)
        ),
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), text)
    return wheel


def free_port() -> int:
    """A TCP port nobody listens on at the moment."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Server:
    """A running pypiserver."""

    port: int
    user: str = ""
    password: str = ""

    def url(self, user: str | None = None, password: str | None = None) -> str:
        """The simple index URL, with credentials when given."""
        user = self.user if user is None else user
        password = self.password if password is None else password
        auth = f"{user}:{password}@" if user else ""
        return f"http://{auth}127.0.0.1:{self.port}/simple/"

    @property
    def bare(self) -> str:
        """The simple index URL without credentials."""
        return f"http://127.0.0.1:{self.port}/simple/"


@contextlib.contextmanager
def pypiserver(packages: Path, user: str = "", password: str = "") -> Iterator[Server]:
    """Serve ``packages`` on 127.0.0.1 (no fallback to PyPI); basic auth for everything if ``user``."""
    port = free_port()
    args = [sys.executable, "-m", "pypiserver", "run", "-p", str(port), "-i", "127.0.0.1"]
    args += ["--disable-fallback", "--hash-algo", "sha256"]
    if user:
        # Apache's {SHA} form, which pypiserver reads with passlib (its extra "passlib")
        digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
        htpasswd = packages.parent / f".htpasswd-{port}"
        htpasswd.write_text(f"{user}:{{SHA}}{digest}\n")
        args += ["-a", "download,list,update", "-P", str(htpasswd)]
    else:
        args += ["-a", ".", "-P", "."]
    proc = subprocess.Popen(
        [*args, str(packages)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    server = Server(port, user, password)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
                break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("pypiserver did not start") from None
                time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
