from collections.abc import Callable
from pathlib import Path

import pytest

from layerkit.build import lock as L
from layerkit.errors import LockError
from layerkit.project.spec import load_project
from layerkit.runtime.target import Target

COMPILED = """\
boto3==1.42.97
    # via -r layers/aws/requirements.txt
numpy==2.0.2
    # via
    #   -r layers/core/requirements.txt
    #   pandas
    #   scikit-learn
pandas==2.3.2
    # via -r layers/core/requirements.txt
scikit-learn==1.6.1
    # via -r layers/ml/requirements.txt
"""


def test_parse_compiled_reads_versions_and_parents() -> None:
    files = {"layers/core/requirements.txt": "layer:core", "layers/ml/requirements.txt": "layer:ml"}
    graph = L.parse_compiled(COMPILED, files)
    assert graph["numpy"] == ("2.0.2", ("layer:core", "pandas", "scikit-learn"))
    assert graph["boto3"] == ("1.42.97", ("layers/aws/requirements.txt",))
    assert graph["scikit-learn"] == ("1.6.1", ("layer:ml",))


def pkg(name: str, *required_by: str) -> L.LockedPackage:
    return L.LockedPackage(
        name, "1.0", f"https://files/{name}-1.0-py3-none-any.whl", "ab" * 32, 10, required_by
    )  # type: ignore[arg-type]


def make_lock(project_inputs: dict[str, str]) -> L.Lock:
    packages = (
        pkg("joblib", "layer:top"),
        pkg("numpy", "layer:base", "scikit-learn"),
        pkg("python-dateutil", "layer:base", "botocore"),
        pkg("scikit-learn", "layer:top"),
        pkg("six", "python-dateutil"),
        pkg("boto3", "layer:aws"),
        pkg("botocore", "boto3"),
        pkg("requests", "function:fn"),
        pkg("pytz", "function:fn", "layer:base"),
    )
    return L.Lock(
        Target("python3.9"), project_inputs, tuple(sorted(packages, key=lambda p: p.name))
    )


def test_partition_never_duplicates_along_requires_and_reports_shared(
    make_project: Callable[..., Path],
) -> None:
    project = load_project(
        make_project(
            {"base": ([], "numpy\n"), "top": (["base"], "scikit-learn\n"), "aws": ([], "boto3\n")}
        )
    )
    lock = make_lock(L.input_hashes(project))
    part = L.partition(project, lock)
    assert part.layers["base"] == ("numpy", "python-dateutil", "pytz", "six")
    # top requires base: numpy (needed by scikit-learn) stays in base only
    assert part.layers["top"] == ("joblib", "scikit-learn")
    # aws is independent of base: it carries its own copy of the same locked dateutil/six
    assert part.layers["aws"] == ("boto3", "botocore", "python-dateutil", "six")
    assert part.shared() == {"python-dateutil": ("aws", "base"), "six": ("aws", "base")}
    # the function attaches base and top: pytz comes from base, requests is its own
    assert part.functions["fn"] == ("requests",)


def test_lock_round_trips_through_toml() -> None:
    lock = make_lock({"layer:base": "x" * 64})
    text = L.render_lock(lock)
    assert L.parse_lock(text, Path("locks/x.toml")) == lock
    assert L.render_lock(L.parse_lock(text, Path("x"))) == text


def test_stale_lock_names_changed_requirements(make_project: Callable[..., Path]) -> None:
    root = make_project()
    project = load_project(root)
    L.write_lock(project, L.Lock(Target("python3.9"), L.input_hashes(project), ()))
    assert L.read_lock(project, Target("python3.9")).packages == ()
    (root / "layers" / "top" / "requirements.txt").write_text("pytz\n# a comment does not matter\n")
    L.read_lock(load_project(root), Target("python3.9"))
    (root / "layers" / "top" / "requirements.txt").write_text("pytz>=2024\n")
    with pytest.raises(LockError, match=r"stale: .*layers/top/requirements.txt.*Run `inv lock`"):
        L.read_lock(load_project(root), Target("python3.9"))


def test_missing_lock_says_to_run_inv_lock(make_project: Callable[..., Path]) -> None:
    with pytest.raises(LockError, match=r"locks/python3.9-x86_64.toml does not exist.*inv lock"):
        L.read_lock(load_project(make_project()), Target("python3.9"))


def test_committed_locks_are_fresh_and_fit_their_targets() -> None:
    from layerkit.runtime.target import wheel_fits
    from tests.conftest import REPO

    project = load_project(REPO)
    for target in project.targets:
        lock = L.read_lock(project, target)
        assert lock.packages, target
        for p in lock.packages:
            assert wheel_fits(p.filename, target), p.filename
        part = L.partition(project, lock)
        assert "numpy" not in part.layers["ml-libraries"]
        assert "python-dateutil" not in part.layers["ml-libraries"]
        assert "numpy" in part.layers["core-data-science"]
    py39 = L.read_lock(project, Target("python3.9"))
    assert py39.package("urllib3").version.startswith("1.26.")  # botocore on 3.9 needs < 1.27
