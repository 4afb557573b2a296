"""Source distributions a layer allows (``allow-sdist``): built with the target's own Python.

A distribution that publishes no wheel loading on the runtime (docopt publishes only an sdist)
may be listed in a layer's ``allow-sdist``. The lock then records its sdist (URL, sha256), and
both ``inv lock`` and every build turn it into a wheel with :func:`build_wheel`: the sdist is
downloaded and checked against its locked sha256, then ``uv build --wheel`` builds it in an
isolated environment with the target interpreter (python3.9 for python3.9). The result is
accepted only when it is a pure-Python wheel or one tagged for the runtime; anything else (a
C extension compiled for this machine's glibc) is refused in one paragraph.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from layerkit.build.uv import run_uv
from layerkit.errors import LockError
from layerkit.redact import redact_text
from layerkit.runtime.target import Target, find_interpreter, wheel_fits

if TYPE_CHECKING:
    from layerkit.build.lock import LockedPackage
    from layerkit.project.spec import Project


def download(url: str, sha256: str, dest: Path) -> Path:
    """Download ``url`` into ``dest`` (a folder) and refuse it unless its sha256 matches."""
    path = dest / url.rsplit("/", 1)[-1]
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, path.open("wb") as out:
            shutil.copyfileobj(resp, out)
    except (urllib.error.URLError, OSError) as exc:
        raise LockError(
            redact_text(f"could not download {url} ({exc}); check the network and retry.")
        ) from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise LockError(
            f"{path.name} has sha256 {digest}, but the lock says {sha256}: the file on the index "
            "changed. Run `inv lock` to record it again, after checking why it changed."
        )
    return path


def accepted(wheel_name: str, target: Target) -> bool:
    """Whether a wheel built from an sdist may go into a layer: pure Python or loadable there."""
    return wheel_name.endswith("-none-any.whl") or wheel_fits(wheel_name, target)


def build_wheel(
    pkg: LockedPackage, target: Target, interpreter: Path, dest: Path, layer_toml: str = ""
) -> Path:
    """Build the locked sdist ``pkg`` into a wheel in ``dest`` with ``interpreter``; its path."""
    with tempfile.TemporaryDirectory(prefix="layerkit-sdist-") as tmp:
        sdist = download(pkg.wheel, pkg.sha256, Path(tmp))
        out = Path(tmp) / "wheel"
        proc = run_uv(
            ["build", "--wheel", "--python", str(interpreter), "--out-dir", str(out), str(sdist)],
            cwd=Path(tmp),
        )
        built = sorted(out.glob("*.whl")) if proc.returncode == 0 else []
        where = f" ({layer_toml} allows it)" if layer_toml else ""
        if not built:
            tail = " ".join(proc.stderr.strip().splitlines()[-3:])
            raise LockError(
                f"{pkg.name} {pkg.version} is taken from its sdist{where}, but building it with "
                f"{target.runtime} ({interpreter}) failed: {tail} Remove it from allow-sdist and "
                "choose a release or package that publishes a wheel for the runtime."
            )
        if not accepted(built[0].name, target):
            raise LockError(
                f"{pkg.name} {pkg.version} is taken from its sdist{where}, but it builds "
                f"{built[0].name}: compiled code for this machine, not a pure-Python wheel or one "
                f"that loads on {target.description}. Remove {pkg.name} from allow-sdist and "
                "choose a release or package that publishes a manylinux wheel for the runtime."
            )
        dest.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(built[0], dest / built[0].name))


def check_sdist(project: Project, target: Target, pkg: LockedPackage, work: Path) -> Path:
    """At lock time: build ``pkg``'s sdist with the target interpreter and accept the result."""
    owners = [
        str((layer.path / "layer.toml").relative_to(project.root))
        for layer in project.layers
        if pkg.name in layer.allow_sdist
    ]
    interpreter = find_interpreter(target, cwd=project.root)
    return build_wheel(pkg, target, interpreter, work / "sdist-wheels", " and ".join(owners))


def sdist_wheel(pkg: LockedPackage, target: Target, dest: Path) -> Path:
    """At build time: the wheel of the locked sdist ``pkg``, built with the target interpreter."""
    return build_wheel(pkg, target, find_interpreter(target), dest)
