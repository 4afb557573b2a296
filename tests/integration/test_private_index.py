"""Private indexes against real index servers on 127.0.0.1 (pypiserver, basic auth): no PyPI.

A private index (credentials) and a "public" one (none) serve tiny wheels written by the test:
a private-only distribution, a name on both (the public one newer: dependency confusion), and
the lock, the install (online, then offline from uv's warm cache) and every failure message are
checked for the credentials.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from layerkit.build import lock as L
from layerkit.build.install import install_packages
from layerkit.errors import LayerkitError, LockError
from layerkit.project.spec import load_project
from layerkit.runtime.target import Target
from tests.conftest import write_project
from tests.integration.indexserver import Server, free_port, pypiserver, write_wheel

pytestmark = pytest.mark.integration
PY39 = Target("python3.9")
PASSWORD = "s3cret-pw"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    root = tmp_path_factory.mktemp("indexes")
    write_wheel(root / "private", "privonly", "1.0")
    write_wheel(root / "private", "confused", "1.0", body="ORIGIN = 'private'\n")
    write_wheel(root / "public", "confused", "9.0", body="ORIGIN = 'public'\n")
    with (
        pypiserver(root / "private", "alice", PASSWORD) as private,
        pypiserver(root / "public") as public,
    ):
        yield private, public


@pytest.fixture(autouse=True)
def uv_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    monkeypatch.delenv("UV_OFFLINE", raising=False)


def project_at(tmp_path: Path, public: Server, requirements: str, toml: str = "") -> Path:
    root = write_project(tmp_path / "proj", {"base": ([], requirements), "top": (["base"], "")})
    (root / "pyproject.toml").write_text(f'[tool.layerkit]\nindex-url = "{public.bare}"\n')
    if toml:
        with (root / "layers" / "base" / "layer.toml").open("a") as fh:
            fh.write(toml)
    return root


def no_secret_below(root: Path) -> None:
    """Nothing layerkit wrote (locks, logs, dist) holds the password the user wrote."""
    for path in [*root.glob("locks/**/*"), *root.glob("dist/**/*")]:
        if path.is_file():
            assert PASSWORD not in path.read_text(errors="replace"), path


def test_private_wins_locks_without_credentials_and_installs_offline(
    tmp_path: Path, servers: tuple[Server, Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = servers
    root = project_at(tmp_path, public, f"--extra-index-url {private.url()}\nprivonly\nconfused\n")
    project = load_project(root)
    lock = L.resolve(project, PY39)
    versions = {p.name: (p.version, p.index) for p in lock.packages}
    # dependency confusion: the public 9.0 never wins over the private index's 1.0
    assert versions == {"privonly": ("1.0", private.bare), "confused": ("1.0", private.bare)}
    L.write_lock(project, lock)
    text = L.lock_path(root, PY39).read_text()
    assert PASSWORD not in text
    assert "alice" not in text
    assert f'index = "{private.bare}"' in text
    indexes = L.target_indexes(project, PY39)
    install_packages(lock.packages, tmp_path / "online", PY39, indexes)
    assert "private" in (tmp_path / "online" / "confused" / "__init__.py").read_text()
    monkeypatch.setenv("UV_OFFLINE", "1")  # a warm cache builds offline
    install_packages(lock.packages, tmp_path / "offline", PY39, indexes)
    assert (tmp_path / "offline" / "privonly" / "__init__.py").is_file()
    no_secret_below(root)


def test_credentials_from_the_environment_for_a_named_index(
    tmp_path: Path, servers: tuple[Server, Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = servers
    root = project_at(
        tmp_path, public, "privonly\n", toml=f'extra-index-urls = ["private={private.bare}"]\n'
    )
    monkeypatch.setenv("UV_INDEX_PRIVATE_USERNAME", "alice")
    monkeypatch.setenv("UV_INDEX_PRIVATE_PASSWORD", PASSWORD)
    lock = L.resolve(load_project(root), PY39)
    assert [(p.name, p.index) for p in lock.packages] == [("privonly", private.bare)]


def test_a_wrong_password_is_one_paragraph_naming_the_index(
    tmp_path: Path, servers: tuple[Server, Server]
) -> None:
    private, public = servers
    wrong = private.url(password="not-the-pw")
    root = project_at(tmp_path, public, f"--extra-index-url {wrong}\nprivonly\n")
    with pytest.raises(LockError) as caught:
        L.resolve(load_project(root), PY39)
    message = str(caught.value)
    assert f"the index http://***@127.0.0.1:{private.port}/simple/" in message
    assert "layers/base/requirements.txt:1" in message
    assert "not-the-pw" not in message
    assert "Relax or align" not in message
    assert "\n" not in message
    log = (root / "dist" / "logs" / "lock-python3.9-x86_64.log").read_text()
    assert "not-the-pw" not in log


def test_an_unreachable_index_is_named_not_taken_for_a_clash(
    tmp_path: Path, servers: tuple[Server, Server]
) -> None:
    _, public = servers
    dead = f"http://bob:{PASSWORD}@127.0.0.1:{free_port()}/simple/"
    root = project_at(tmp_path, public, f"--extra-index-url {dead}\nprivonly\n")
    with pytest.raises(LockError) as caught:
        L.resolve(load_project(root), PY39)
    message = str(caught.value)
    assert "could not be reached" in message
    assert "UV_OFFLINE" in message
    assert PASSWORD not in message
    assert "Relax or align" not in message
    no_secret_below(root)


def test_hashes_constraints_and_includes_read_as_pip_does(
    tmp_path: Path, servers: tuple[Server, Server]
) -> None:
    private, public = servers
    wheel = tmp_path / "indexes-copy"
    good = hashlib.sha256(write_wheel(wheel, "privonly", "1.0").read_bytes()).hexdigest()
    root = project_at(tmp_path, public, "-r more/base.txt\n-c ../../constraints.txt\nconfused\n")
    base = root / "layers" / "base" / "more"
    base.mkdir()
    (base / "base.txt").write_text(
        f"--extra-index-url {private.url()}\nprivonly==1.0 \\\n    --hash=sha256:{good}\n"
    )
    (root / "constraints.txt").write_text("confused<2\n")
    lock = L.resolve(load_project(root), PY39)
    assert {p.name: p.version for p in lock.packages} == {"privonly": "1.0", "confused": "1.0"}
    # the constraint binds, and the public index's 9.0 is still never taken
    (root / "constraints.txt").write_text("confused>=2\n")
    with pytest.raises(LayerkitError) as clash:
        L.resolve(load_project(root), PY39)
    assert "The constraint constraints.txt:1 (confused>=2) takes part" in str(clash.value)
    (root / "constraints.txt").write_text("confused<2\n")
    (base / "base.txt").write_text(
        f"--extra-index-url {private.url()}\nprivonly==1.0 --hash=sha256:{'0' * 64}\n"
    )
    with pytest.raises(LockError) as caught:
        L.resolve(load_project(root), PY39)
    assert str(caught.value).startswith(
        "layers/base/more/base.txt:2: privonly==1.0 allows 1 hash(es), but"
    )
