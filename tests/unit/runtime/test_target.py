import pytest

from layerkit.errors import SpecError
from layerkit.runtime.target import RUNTIME_GLIBC, RUNTIMES, Target, best_wheel, wheel_fits

NUMPY_2014 = "numpy-2.0.2-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"


def test_key_and_versions() -> None:
    t = Target("python3.9")
    assert (t.key, t.python_version, t.glibc, t.machine) == (
        "python3.9-x86_64",
        (3, 9),
        (2, 26),
        "x86_64",
    )
    assert Target.parse("python3.12-arm64") == Target("python3.12", "arm64")


def test_uv_platform_is_oldest_uv_platform_covering_what_the_runtime_loads() -> None:
    # uv has no 2_24/2_26: resolving at 2_17 hid the 2_24 wheels that load on glibc 2.26, so
    # Amazon Linux 2 resolves at 2_28 and the lock keeps only wheels wheel_fits accepts
    assert Target("python3.9").uv_platform == "x86_64-manylinux_2_28"
    assert not wheel_fits("x-1-cp39-cp39-manylinux_2_28_x86_64.whl", Target("python3.9"))
    assert Target("python3.12").uv_platform == "x86_64-manylinux_2_34"
    assert Target("python3.12", "arm64").uv_platform == "aarch64-manylinux_2_34"


def test_one_runtime_table_gives_patch_version_os_and_glibc() -> None:
    t = Target("python3.9")
    assert t.python_full_version.startswith("3.9.")
    assert int(t.python_full_version.split(".")[2]) >= 2  # cryptography 48+ excludes 3.9.0/3.9.1
    assert (t.os, t.glibc_text) == ("Amazon Linux 2", "2.26")
    assert (Target("python3.12").os, Target("python3.12").glibc) == ("Amazon Linux 2023", (2, 34))
    assert set(RUNTIME_GLIBC) == set(RUNTIMES)
    for name, rt in RUNTIMES.items():
        assert name == "python{}.{}".format(*rt.python[:2])
    env = Target("python3.9").marker_environment
    assert env["python_full_version"] == t.python_full_version
    assert env["platform_machine"] == "x86_64"
    assert Target("python3.9", "arm64").marker_environment["platform_machine"] == "aarch64"


def test_best_wheel_prefers_the_most_specific_tag_that_loads() -> None:
    names = [
        "pandas-2.3.3-cp39-cp39-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        "pandas-2.3.3-cp39-cp39-musllinux_1_2_x86_64.whl",
        "pandas-2.3.3-cp39-cp39-manylinux_2_17_aarch64.whl",
    ]
    assert best_wheel(names, Target("python3.9")) == names[0]  # 2_24 loads on glibc 2.26
    crypto = [
        "cryptography-50.0.2-cp39-abi3-manylinux_2_28_x86_64.whl",
        "cryptography-50.0.2-cp39-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
    ]
    assert best_wheel(crypto, Target("python3.9")) == crypto[1]
    assert best_wheel(crypto, Target("python3.12")) == crypto[0]
    assert best_wheel(["x-1-cp39-cp39-manylinux_2_28_x86_64.whl"], Target("python3.9")) is None
    assert best_wheel(["x-1.tar.gz", "x-1-py3-none-any.whl"], Target("python3.9")) == (
        "x-1-py3-none-any.whl"
    )


@pytest.mark.parametrize(
    ("wheel", "runtime", "fits"),
    [
        (NUMPY_2014, "python3.9", True),
        ("x-1-cp39-cp39-manylinux_2_26_x86_64.whl", "python3.9", True),
        ("x-1-cp39-cp39-manylinux_2_28_x86_64.whl", "python3.9", False),  # AL2 has glibc 2.26
        ("x-1-cp312-cp312-manylinux_2_28_x86_64.whl", "python3.12", True),
        ("x-1-cp312-cp312-manylinux_2_35_x86_64.whl", "python3.12", False),
        ("x-1-cp39-cp39-musllinux_1_1_x86_64.whl", "python3.9", False),
        ("x-1-cp39-cp39-manylinux_2_17_aarch64.whl", "python3.9", False),
        ("x-1-cp310-cp310-manylinux_2_17_x86_64.whl", "python3.9", False),
        ("x-1-cp38-abi3-manylinux_2_17_x86_64.whl", "python3.9", True),
        ("x-1-py3-none-any.whl", "python3.9", True),
        ("x-1-cp39-cp39-manylinux1_x86_64.whl", "python3.9", True),
    ],
)
def test_wheel_fits(wheel: str, runtime: str, fits: bool) -> None:
    assert wheel_fits(wheel, Target(runtime)) is fits


def test_unknown_runtime_and_architecture_are_clear_errors() -> None:
    with pytest.raises(SpecError, match=r"unknown Lambda runtime 'python2\.7'"):
        Target("python2.7")
    with pytest.raises(SpecError, match="unknown Lambda architecture 'sparc'"):
        Target("python3.9", "sparc")
