import pytest

from layerkit.errors import SpecError
from layerkit.runtime.target import Target, wheel_fits

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


def test_uv_platform_is_newest_uv_platform_the_runtime_loads() -> None:
    assert Target("python3.9").uv_platform == "x86_64-manylinux_2_17"  # uv has no 2_26
    assert Target("python3.12").uv_platform == "x86_64-manylinux_2_34"
    assert Target("python3.12", "arm64").uv_platform == "aarch64-manylinux_2_34"


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
