"""Real-world requirement sets added as new layers, as a user would: locked with real wheels via uv."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from layerkit.build import lock as L
from layerkit.build import pipeline as B
from layerkit.check.layer import validate_built_layer
from layerkit.errors import LockError, SpecError, WheelTagError
from layerkit.project.spec import Project, load_project
from layerkit.runtime.target import Target, wheel_fits
from tests.conftest import REPO

pytestmark = pytest.mark.integration
PY39 = Target("python3.9")
PY312 = Target("python3.12")


def repo_with(tmp_path: Path, name: str, requirements: str, toml: str = "") -> Path:
    """A copy of this repository with one more layer, ``layers/<name>/``."""
    root = tmp_path / "repo"
    for folder in ("layers", "functions", "locks"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for file in ("template.yaml", "pyproject.toml", "noxfile.py", ".python-version"):
        shutil.copy2(REPO / file, root / file)
    layer = root / "layers" / name
    layer.mkdir()
    (layer / "layer.toml").write_text(toml or 'budget = "100 MB"\nruntimes = ["python3.9"]\n')
    (layer / "requirements.txt").write_text(requirements)
    return root


def relock(project: Project) -> dict[Target, L.Lock]:
    """``inv lock`` for every target, keeping the committed versions; the locks are written."""
    locks = {}
    for target in project.targets:
        previous = L.parse_lock(L.lock_path(project.root, target).read_text(), Path("x"))
        locks[target] = L.resolve(project, target, previous)
        L.write_lock(project, locks[target])
    return locks


def test_python39_only_layer_with_cp39_only_package_locks_builds_and_validates(
    tmp_path: Path,
) -> None:
    root = repo_with(
        tmp_path,
        "legacy",
        "typed-ast\n",
        'budget = "10 MB"\nruntimes = ["python3.9"]\nsmoke = "smoke_test.py"\n',
    )
    (root / "layers" / "legacy" / "smoke_test.py").write_text(
        "import typed_ast.ast3\nassert typed_ast.ast3.parse('x = 1').body\n"
    )
    project = load_project(root)
    locks = relock(project)  # typed-ast has no cp312 wheel: python3.12 must not resolve it
    assert locks[PY39].package("typed-ast").version == "1.5.5"
    assert "typed-ast" not in {p.name for p in locks[PY312].packages}
    assert "layer:legacy" not in locks[PY312].inputs
    project = load_project(root)
    B.build(project, PY39, layers=["legacy"], functions=False)
    result = validate_built_layer(root, "legacy", "python3.9")
    assert result.ok, result
    with pytest.raises(SpecError, match=r"layer legacy is not built for python3.12-x86_64"):
        B.build(project, PY312, layers=["legacy"], functions=False)
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "--list"], cwd=root, capture_output=True, text=True
    ).stdout
    assert "* validate_layers(legacy-python3.9-x86_64)" in listed  # in the default run
    assert "legacy-python3.12" not in listed
    assert "* validate_layers(core-data-science-python3.12-x86_64)" in listed


def test_pandas_233_and_cryptography_48_lock_for_python39_with_glibc_226_wheels(
    tmp_path: Path,
) -> None:
    root = repo_with(tmp_path, "crypto", "pandas==2.3.3\ncryptography>=48\n")
    lock = L.resolve(load_project(root), PY39)
    pandas, crypto = lock.package("pandas"), lock.package("cryptography")
    assert pandas.version == "2.3.3"
    assert "manylinux_2_24" in pandas.filename  # the wheel uv's 2_17 platform never offered
    assert int(crypto.version.split(".")[0]) >= 48  # 3.9.23, not 3.9.0: >=48 is eligible
    for pkg in lock.packages:
        assert wheel_fits(pkg.filename, PY39), pkg.filename


def test_urllib3_2_beside_aws_utilities_is_one_short_paragraph(tmp_path: Path) -> None:
    root = repo_with(tmp_path, "http", "urllib3>=2\n")
    with pytest.raises(LockError) as info:
        L.resolve(load_project(root), PY39)
    message = str(info.value)
    assert len(message.splitlines()) <= 15
    assert "layers/http/requirements.txt:1" in message
    assert "layers/aws-utilities/requirements.txt" in message
    assert "botocore" in message
    assert "urllib3<1.27" in message
    assert "1.26." in message  # the fix names the newest urllib3 botocore accepts
    log = root / "dist" / "logs" / "lock-python3.9-x86_64.log"
    assert str(log.relative_to(root)) in message
    assert len(log.read_text().splitlines()) > 100  # uv's derivation is kept, not printed


@pytest.mark.parametrize(
    ("requirements", "expected"),
    [
        (
            "docopt\n",
            r'docopt has no release with a wheel.*0\.6\.2 \(an sdist only\).*allow-sdist = \["docopt"\]',
        ),
        ("typed-ast\n", r"typed-ast has no release with a wheel.*1\.5\.5 \(.*cp3.*\)"),
        ("pandas>=3\n", r"pandas has no release.*needs Python >=3\.11.*pandas<=2\.3\.3"),
    ],
)
def test_no_usable_wheel_unpinned_names_versions_tags_and_fix(
    tmp_path: Path, requirements: str, expected: str
) -> None:
    runtime = "python3.12" if "typed-ast" in requirements else "python3.9"
    root = repo_with(
        tmp_path, "extra", requirements, f'budget = "9 MB"\nruntimes = ["{runtime}"]\n'
    )
    with pytest.raises(WheelTagError, match=expected) as info:
        L.resolve(load_project(root), Target(runtime))
    assert "layers/extra/requirements.txt:1" in str(info.value)
    assert len(str(info.value).splitlines()) == 1


def test_allowed_sdist_is_built_with_the_target_python_and_locked_with_its_hash(
    tmp_path: Path,
) -> None:
    toml = 'budget = "1 MB"\nruntimes = ["python3.9"]\nallow-sdist = ["docopt"]\n'
    root = repo_with(tmp_path, "cli", "docopt\n", toml)
    project = load_project(root)
    locks = relock(project)
    docopt = locks[PY39].package("docopt")
    assert docopt.is_sdist
    assert docopt.filename == "docopt-0.6.2.tar.gz"
    assert len(docopt.sha256) == 64
    assert L.parse_lock(L.render_lock(locks[PY39]), Path("x")) == locks[PY39]
    B.build(load_project(root), PY39, layers=["cli"], functions=False)
    result = validate_built_layer(root, "cli", "python3.9")
    assert result.ok, result
    assert "docopt" in result.imported


def test_allowed_sdist_is_used_only_when_no_wheel_loads(tmp_path: Path) -> None:
    toml = 'budget = "5 MB"\nruntimes = ["python3.9"]\nallow-sdist = ["cffi"]\n'
    root = repo_with(tmp_path, "native", "cffi==1.17.1\n", toml)
    project = load_project(root)
    lock = L.resolve(project, PY39)  # cffi 1.17.1 has a cp39 wheel: the sdist is not used
    assert not lock.package("cffi").is_sdist


@pytest.mark.parametrize(
    ("requirement", "tag"),
    [
        ("pyarrow", "manylinux"),  # pyarrow 21 ships cp39 wheels for manylinux_2_28 only
        ("lxml", "manylinux_2_26"),  # a 2_26 wheel: loads on glibc 2.26, hidden at uv's 2_17
    ],
)
def test_newest_release_with_a_loadable_wheel_wins(
    tmp_path: Path, requirement: str, tag: str
) -> None:
    from layerkit.build.index import PyPI

    root = repo_with(tmp_path, "extra", f"{requirement}\n")
    pkg = L.resolve(load_project(root), PY39).package(requirement)
    assert wheel_fits(pkg.filename, PY39), pkg.filename
    assert tag in pkg.filename
    files = PyPI().files(requirement)
    newer = {str(f.version) for f in files if f.version and f.version > Version(pkg.version)}
    newer = {v for v in newer if not Version(v).is_prerelease}
    # every newer release has no loadable cp39 wheel (or needs a newer Python)
    too_new = {
        str(f.version)
        for f in files
        if f.requires_python
        and not SpecifierSet(f.requires_python).contains(PY39.python_full_version)
    }
    assert newer <= L.releases_without_wheel(files, PY39) | too_new
