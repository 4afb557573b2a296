import hashlib
from pathlib import Path

import pytest

from layerkit.build.sdist import accepted, download
from layerkit.errors import LockError
from layerkit.runtime.target import Target


@pytest.mark.parametrize(
    ("wheel", "ok"),
    [
        ("docopt-0.6.2-py2.py3-none-any.whl", True),
        ("x-1-py3-none-any.whl", True),
        ("x-1-cp39-cp39-linux_x86_64.whl", False),  # compiled for this machine's glibc
        ("x-1-cp39-cp39-manylinux_2_17_x86_64.whl", True),
        ("x-1-cp311-cp311-linux_x86_64.whl", False),
    ],
)
def test_only_pure_or_runtime_tagged_wheels_from_sdists_are_accepted(wheel: str, ok: bool) -> None:
    assert accepted(wheel, Target("python3.9")) is ok


def test_download_checks_the_locked_sha256(tmp_path: Path) -> None:
    src = tmp_path / "src" / "docopt-0.6.2.tar.gz"
    src.parent.mkdir()
    src.write_bytes(b"sdist bytes")
    dest = tmp_path / "dest"
    dest.mkdir()
    good = hashlib.sha256(b"sdist bytes").hexdigest()
    assert download(src.as_uri(), good, dest).read_bytes() == b"sdist bytes"
    with pytest.raises(LockError, match=r"docopt-0.6.2.tar.gz has sha256 .* the lock says"):
        download(src.as_uri(), "0" * 64, dest)
