from collections.abc import Callable
from pathlib import Path

import pytest

from layerkit.build import lock as L
from layerkit.build.index import IndexFile
from layerkit.errors import LockError, SpecError
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


def test_each_target_resolves_only_the_layers_and_functions_that_list_it(
    make_project: Callable[..., Path],
) -> None:
    root = make_project(
        {"base": ([], "six\n"), "top": (["base"], "pytz\n"), "new": ([], "attrs\n")}
    )
    toml = root / "layers" / "new" / "layer.toml"
    toml.write_text(toml.read_text().replace('["python3.9"]', '["python3.12"]'))
    project = load_project(root)
    assert set(L.sources(project, Target("python3.9"))) == {
        "layer:base",
        "layer:top",
        "function:fn",
    }
    assert set(L.sources(project, Target("python3.12"))) == {"layer:new"}  # fn runs on 3.9
    assert set(L.input_hashes(project, Target("python3.12"))) == {"layer:new"}
    lock = L.Lock(Target("python3.12"), {}, (pkg("attrs", "layer:new"),))
    part = L.partition(project, lock)
    assert part.layers == {"base": (), "top": (), "new": ("attrs",)}
    assert part.functions == {"fn": ()}
    with pytest.raises(SpecError, match=r"no layer lists python3.13-x86_64.*`runtimes`"):
        L.resolve(project, Target("python3.13"))


def test_comment_only_edit_keeps_lock_inputs(make_project: Callable[..., Path]) -> None:
    root = make_project()
    before = L.input_hashes(load_project(root))
    req = root / "layers" / "base" / "requirements.txt"
    req.write_text("# pinned for the base layer\n\n" + req.read_text() + "\n# end\n")
    assert L.input_hashes(load_project(root)) == before


@pytest.mark.parametrize(
    ("stderr", "name"),
    [
        (
            "  cause: Because all versions of docopt have no usable wheels and you require "
            "docopt, we can conclude that your requirements are unsatisfiable.",
            "docopt",
        ),
        (
            "  cause: Because pandas>=2.3.3 has no usable wheels and you require pandas>=2.3.3",
            "pandas",
        ),
        ("hint: Wheels are required for `typed-ast` because building from source", "typed-ast"),
        ("  cause: Because you require six==1.16.0 and six==1.17.0", None),
    ],
)
def test_unusable_name_reads_uvs_messages(stderr: str, name: str | None) -> None:
    assert L.unusable_name(stderr) == name


PANDAS_FILES = (
    IndexFile("pandas-2.3.3-cp39-cp39-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"),
    IndexFile("pandas-2.3.3.tar.gz"),
    IndexFile("pandas-2.3.2-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
    IndexFile("pandas-2.3.1-cp39-cp39-manylinux_2_28_x86_64.whl"),
    IndexFile("pandas-3.0.0-cp311-cp311-manylinux_2_24_x86_64.whl", requires_python=">=3.11"),
)


def test_releases_without_a_loadable_wheel_are_left_out() -> None:
    assert L.releases_without_wheel(PANDAS_FILES, Target("python3.9")) == {"2.3.1", "3.0.0"}
    assert L.releases_without_wheel(PANDAS_FILES, Target("python3.12")) == {
        "2.3.1",
        "2.3.2",
        "2.3.3",
        "3.0.0",
    }


def test_no_wheel_error_names_versions_tags_and_a_fix(make_project: Callable[..., Path]) -> None:
    project = load_project(
        make_project({"base": ([], "docopt\n"), "top": (["base"], "pandas>=3\n")})
    )
    docopt = (IndexFile("docopt-0.6.2.tar.gz"), IndexFile("docopt-0.6.1.tar.gz"))
    message = str(L.no_wheel_error(project, Target("python3.9"), "docopt", docopt, Path("x.log")))
    assert message.startswith("docopt has no release with a wheel that loads on python3.9")
    assert "layers/base/requirements.txt:1" in message
    assert "0.6.2 (an sdist only); 0.6.1 (an sdist only)" in message
    assert 'add allow-sdist = ["docopt"] to layers/base/layer.toml' in message
    assert message.endswith("uv's full output: x.log.")
    message = str(L.no_wheel_error(project, Target("python3.9"), "pandas", PANDAS_FILES, Path("x")))
    assert "3.0.0 (needs Python >=3.11)" in message
    assert "the newest release with such a wheel is 2.3.3" in message  # 2_24 loads on 2.26
    assert "layers/top/requirements.txt:1 to allow it (for example pandas<=2.3.3)" in message
    assert len(message.splitlines()) == 1


class FakeIndex:
    """An index that knows urllib3's releases and what botocore 1.42.97 requires."""

    def files(self, name: str) -> tuple[IndexFile, ...]:
        versions = {"urllib3": ("2.6.3", "2.0.0", "1.26.20", "1.25.4")}.get(name, ())
        return tuple(IndexFile(f"{name}-{v}-py3-none-any.whl") for v in versions)

    def requires_dist(self, name: str, version: str) -> tuple[str, ...]:
        if (name, version) == ("botocore", "1.42.97"):
            return (
                'urllib3 (<1.27,>=1.25.4) ; python_version < "3.10"',
                'urllib3 (!=2.2.0,<3,>=1.25.4) ; python_version >= "3.10"',
            )
        return ("botocore (<1.43,>=1.42.97)",) if name == "boto3" else ()


def test_conflict_names_both_lines_and_the_chain_between_them() -> None:
    from layerkit.project.requirements import LineRequirement

    boto = LineRequirement("boto3", "boto3>=1.34", Path("layers/aws-utilities/requirements.txt"), 3)
    http = LineRequirement("urllib3", "urllib3>=2", Path("layers/http/requirements.txt"), 1)
    lines = [
        L.LineGraph(
            "layer:aws-utilities",
            boto,
            {
                "boto3": ("1.42.97", ("layer:aws-utilities",)),
                "botocore": ("1.42.97", ("boto3",)),
                "urllib3": ("1.26.20", ("botocore",)),
            },
        ),
        L.LineGraph("layer:http", http, {"urllib3": ("2.6.3", ("layer:http",))}),
    ]
    message = L.conflict_between(lines, Target("python3.9"), FakeIndex())
    assert message is not None
    assert "clash over urllib3" in message
    assert (
        "botocore 1.42.97, carried by aws-utilities (layers/aws-utilities/requirements.txt:3: "
        "boto3>=1.34), requires urllib3<1.27,>=1.25.4 on python3.9" in message
    )
    assert "layers/http/requirements.txt:1 asks for urllib3>=2" in message
    assert "change layers/http/requirements.txt:1" in message
    assert "the newest urllib3 it accepts is 1.26.20" in message
    # on python3.12 botocore allows urllib3 2: nothing clashes
    assert L.conflict_between(lines, Target("python3.12"), FakeIndex()) is None


def test_sdist_packages_round_trip_through_the_lock() -> None:
    sdist = L.LockedPackage(
        "docopt", "0.6.2", "https://files/docopt-0.6.2.tar.gz", "cd" * 32, 25901, ("layer:cli",)
    )  # type: ignore[arg-type]
    lock = L.Lock(Target("python3.9"), {"layer:cli": "x" * 64}, (sdist,))
    text = L.render_lock(lock)
    assert 'sdist = "https://files/docopt-0.6.2.tar.gz"' in text
    assert 'python-version = "3.9.23"' in text
    assert L.parse_lock(text, Path("x")) == lock
    assert L.parse_lock(text, Path("x")).packages[0].is_sdist
