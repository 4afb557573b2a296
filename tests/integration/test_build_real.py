"""Real builds of this repository's three layers from PyPI for python3.9 (uv caches the wheels)."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from layerkit.build import lock as L
from layerkit.build import pipeline as B
from layerkit.build.archive import sha256_file
from layerkit.build.install import install_packages
from layerkit.errors import LockError, SpecError, WheelTagError
from layerkit.project.spec import load_project
from layerkit.runtime.target import Target
from tests.conftest import REPO

pytestmark = pytest.mark.integration
T = Target("python3.9")


def copy_repo(dest: Path) -> Path:
    for name in ("layers", "functions", "locks"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "template.yaml", dest / "template.yaml")
    return dest


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> B.BuildResult:
    root = copy_repo(tmp_path_factory.mktemp("built"))
    return B.build(load_project(root), T, functions=False)


def dists_in(zip_path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, Requires-Dist) from the dist-info METADATA inside a layer zip."""
    found = {}
    with zipfile.ZipFile(zip_path) as zf:
        for name in zf.namelist():
            if name.endswith(".dist-info/METADATA"):
                meta = Parser().parsestr(zf.read(name).decode())
                found[canonicalize_name(meta["Name"])] = (
                    meta["Version"],
                    meta.get_all("Requires-Dist") or [],
                )
    return found


def target_env() -> dict[str, str]:
    env = default_environment()
    env.update(
        python_version="3.9",
        python_full_version="3.9.18",
        sys_platform="linux",
        platform_system="Linux",
        platform_machine="x86_64",
        implementation_name="cpython",
        platform_python_implementation="CPython",
    )
    return env


def test_every_layer_zip_has_lambda_layout_and_no_build_debris(built: B.BuildResult) -> None:
    for name in ("core-data-science", "ml-libraries", "aws-utilities"):
        with zipfile.ZipFile(built.out_dir / "layers" / f"{name}.zip") as zf:
            names = zf.namelist()
        assert names, name
        assert all(n.startswith("python/") for n in names), name
        assert "python/.lock" not in names
        assert not any(n.startswith("python/bin/") for n in names)
        assert not any(".cpython-311" in n or ".cpython-312" in n for n in names)
        with zipfile.ZipFile(built.out_dir / "layers" / f"{name}.zip") as zf:
            records = [zf.read(n).decode() for n in names if n.endswith(".dist-info/RECORD")]
        # scripts' shebangs name the build machine's interpreter: neither shipped nor recorded
        assert not any(line.startswith("bin/") for r in records for line in r.splitlines())


def test_no_distribution_in_a_layer_and_a_layer_it_requires(built: B.BuildResult) -> None:
    project = load_project(built.out_dir.parent)
    contents = {
        x.name: dists_in(built.out_dir / "layers" / f"{x.name}.zip") for x in project.layers
    }
    assert "numpy" not in contents["ml-libraries"]
    assert "python-dateutil" not in contents["ml-libraries"]
    assert {"pandas", "numpy", "python-dateutil"} <= set(contents["core-data-science"])
    assert {"scikit-learn", "joblib", "scipy"} <= set(contents["ml-libraries"])
    for layer in project.layers:
        for below in project.required_closure(layer.name):
            assert not set(contents[layer.name]) & set(contents[below]), (layer.name, below)
    # independent layers share only identical locked versions (byte-identical in /opt)
    for a in contents:
        for b in contents:
            for dist in set(contents[a]) & set(contents[b]):
                assert contents[a][dist][0] == contents[b][dist][0]


def test_each_layers_dependencies_are_met_by_itself_and_what_it_requires(
    built: B.BuildResult,
) -> None:
    project = load_project(built.out_dir.parent)
    env = target_env()
    for layer in project.layers:
        available: dict[str, str] = {}
        for name in (*project.required_closure(layer.name), layer.name):
            available.update(
                {d: v for d, (v, _) in dists_in(built.out_dir / "layers" / f"{name}.zip").items()}
            )
        for dist, (_, requires) in dists_in(built.out_dir / "layers" / f"{layer.name}.zip").items():
            for text in requires:
                req = Requirement(text)
                if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
                    continue
                name = canonicalize_name(req.name)
                assert name in available, f"{layer.name}: {dist} needs {text}"
                assert req.specifier.contains(available[name], prereleases=True), (dist, text)


def test_manifest_describes_each_zip(built: B.BuildResult) -> None:
    rec = built.records["layers/ml-libraries.zip"]
    assert rec.target == "python3.9-x86_64"
    assert rec.layers == ("core-data-science",)
    assert rec.distributions["scikit-learn"]
    assert rec.files > 100
    assert rec.unzipped_bytes > rec.zipped_bytes > 0
    assert rec.sha256 == sha256_file(built.out_dir / rec.path)


def test_two_clean_builds_are_byte_identical(built: B.BuildResult, tmp_path: Path) -> None:
    project = load_project(copy_repo(tmp_path / "again"))
    layers = ["aws-utilities", "core-data-science"]
    again = B.build(project, T, layers=layers, functions=False)
    # rebuilt from the step cache the first build filled: every pyc, strip and deflate a hit
    warm = B.build(project, T, layers=layers, functions=False, force=True)
    for path in ("layers/aws-utilities.zip", "layers/core-data-science.zip"):
        assert again.records[path].sha256 == built.records[path].sha256, path
        assert warm.records[path].sha256 == built.records[path].sha256, path


def test_build_with_stale_lock_says_run_inv_lock(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    root = copy_repo(tmp_path / "stale")
    (root / "layers" / "aws-utilities" / "requirements.txt").write_text("boto3>=1.35\nrequests\n")
    with pytest.raises(LockError, match=r"stale.*layers/aws-utilities/requirements.txt.*inv lock"):
        B.build(load_project(root), T)


def test_wheel_without_fitting_glibc_is_named_with_existing_tags(
    make_project: Callable[..., Path],
) -> None:
    project = load_project(
        make_project({"base": ([], "onnxruntime==1.19.2\n"), "top": (["base"], "")})
    )
    with pytest.raises(WheelTagError) as info:
        L.resolve(project, T)
    message = str(info.value)
    assert "onnxruntime 1.19.2 has no wheel that loads on python3.9" in message
    assert "manylinux_2_27_x86_64" in message  # the tags that do exist
    assert "layers/base/requirements.txt:1" in message


def test_unknown_package_is_named_with_its_line(make_project: Callable[..., Path]) -> None:
    project = load_project(
        make_project({"base": ([], "six\nno-such-package-layerkit-xyz\n"), "top": (["base"], "")})
    )
    with pytest.raises(
        SpecError,
        match=r"'no-such-package-layerkit-xyz' is not on PyPI; required at layers/base/requirements.txt:2",
    ):
        L.resolve(project, T)


def test_conflicting_versions_across_layers_name_both(make_project: Callable[..., Path]) -> None:
    project = load_project(
        make_project({"base": ([], "six==1.16.0\n"), "top": (["base"], "six==1.17.0\n")})
    )
    with pytest.raises(LockError) as info:
        L.resolve(project, T)
    message = str(info.value)
    assert "six: layer:base alone resolves 1.16.0, layer:top alone resolves 1.17.0" in message
    assert "layers/base/requirements.txt:1" in message
    assert "layers/top/requirements.txt:1" in message


def test_lock_keeps_versions_when_another_layer_changes(make_project: Callable[..., Path]) -> None:
    root = make_project({"base": ([], "six\n"), "top": (["base"], "pytz\n")})
    project = load_project(root)
    old = L.Lock(T, {}, (L.LockedPackage("six", "1.16.0", "", "", 0, ()),))  # type: ignore[arg-type]
    lock = L.resolve(project, T, previous=old)
    assert lock.package("six").version == "1.16.0"  # kept, although 1.17.0 exists
    assert L.resolve(project, T).package("six").version != "1.16.0"


def test_a_users_uv_config_does_not_change_the_lock(
    make_project: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "xdg" / "uv" / "uv.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[pip]\nannotation-style = "line"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    project = load_project(
        make_project({"base": ([], "six\n"), "top": (["base"], "python-dateutil\n")})
    )
    part = L.partition(project, L.resolve(project, T))
    assert part.layers["base"] == ("six",)  # with "line" annotations uv would leave it empty
    assert "python-dateutil" in part.layers["top"]


def test_compatible_ranges_are_not_reported_as_conflicts(make_project: Callable[..., Path]) -> None:
    project = load_project(
        make_project(
            {
                "base": ([], "six>=1.15\npytz==2024.1\n"),
                "top": (["base"], "six<1.17\npytz==2024.2\n"),
            }
        )
    )
    with pytest.raises(LockError) as info:
        L.resolve(project, T)
    assert "pytz:" in str(info.value)
    assert "six:" not in str(info.value)


def test_wheel_data_stays_out_of_a_layer_unless_kept(make_project: Callable[..., Path]) -> None:
    """fonttools' wheel carries a man page as data (``.data/data/share/man/man1/ttx.1``)."""
    root = make_project({"base": ([], "fonttools==4.55.0\n"), "top": (["base"], "")})
    project = load_project(root)
    L.write_lock(project, L.resolve(project, T))
    result = B.build(project, T, layers=["base"], dependents=False, functions=False)
    record = result.records["layers/base.zip"]
    with zipfile.ZipFile(result.out_dir / record.path) as zf:
        names = zf.namelist()
    assert "python/fontTools/ttx.py" in names
    assert not [n for n in names if n.startswith("python/share/")]
    assert record.modules == ("fontTools",)
    passes = {p["name"]: p for p in record.slim}
    assert passes["wheel-data"]["examples"] == ["share/man/man1/ttx.1"]

    toml = root / "layers" / "base" / "layer.toml"
    toml.write_text(toml.read_text() + '[slim]\nkeep = ["share/man/*"]\n')
    kept = B.build(load_project(root), T, layers=["base"], dependents=False, functions=False)
    with zipfile.ZipFile(kept.out_dir / "layers/base.zip") as zf:
        assert "python/share/man/man1/ttx.1" in zf.namelist()
    assert kept.records["layers/base.zip"].modules == ("fontTools",)  # data is never a module


def test_a_build_leaves_uvs_cache_as_it_was(
    make_project: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed files are hard links into uv's cache: strip, sourceless bytecode and the RECORD
    edit must replace them, never write through them."""
    import os

    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv"))
    root = make_project({"base": ([], "markupsafe==3.0.2\nPyYAML==6.0.2\n"), "top": (["base"], "")})
    toml = root / "layers" / "base" / "layer.toml"
    toml.write_text('bytecode = "sourceless"\n' + toml.read_text())
    project = load_project(root)
    L.write_lock(project, L.resolve(project, T))

    def snapshot() -> dict[str, tuple[str, int]]:
        """Every unpacked wheel file in uv's cache (its index metadata may be refreshed)."""
        return {
            p.relative_to(tmp_path).as_posix(): (sha256_file(p), p.stat().st_mode)
            for archive in (tmp_path / "uv").glob("archive-v*")
            for p in archive.rglob("*")
            if p.is_file() and not p.is_symlink()
        }

    lock = L.read_lock(project, T)
    install_packages(lock.packages, tmp_path / "scratch", T)  # fills uv's cache, edits nothing
    assert (tmp_path / "scratch" / "yaml" / "loader.py").stat().st_nlink > 1  # linked, not copied
    shutil.rmtree(tmp_path / "scratch")
    before = snapshot()
    assert len(before) > 20
    result = B.build(project, T, layers=["base"], dependents=False, functions=False)
    record = result.records["layers/base.zip"]
    assert record.bytecode["mode"] == "sourceless"
    assert record.bytecode["compiled_files"] > 10  # sources were replaced by their pycs
    assert {p["name"]: p["removed_files"] for p in record.slim}["strip"] >= 1
    assert snapshot() == before
    assert os.listdir(result.out_dir / B.WORK) == []
