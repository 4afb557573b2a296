from __future__ import annotations

import os
from pathlib import Path

import pytest

from layerkit.build import slim
from layerkit.build.slim import SlimConfig, Tree, slim_tree
from layerkit.build.tools import SystemStrip
from layerkit.errors import SpecError
from layerkit.runtime.target import Target
from tests.unit.build.fakes import FakeStrip

PY39 = Target("python3.9")


def make_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def tree_of(*paths: str) -> Tree:
    return Tree({p: 10 for p in paths})


def test_docs_folders_that_are_packages_are_kept() -> None:
    tree = tree_of(
        "botocore/docs/__init__.py",
        "botocore/docs/client.py",
        "boto3/docs/__init__.py",
        "numpy/doc/ufuncs.py",
        "somepkg/docs/index.rst",
    )
    assert sorted(slim.plan_docs(tree)) == ["numpy/doc/ufuncs.py", "somepkg/docs/index.rst"]


def test_test_folders_and_conftest_are_planned_but_testing_packages_are_not() -> None:
    tree = tree_of(
        "pandas/tests/test_a.py",
        "joblib/test/__init__.py",
        "numpy/testing/__init__.py",
        "pandas/_testing/__init__.py",
        "pandas/conftest.py",
        "sklearn/utils/_testing.py",
    )
    planned = slim.plan_named_dirs(tree, slim.TEST_DIRS, frozenset({"conftest.py"}))
    assert sorted(planned) == [
        "joblib/test/__init__.py",
        "pandas/conftest.py",
        "pandas/tests/test_a.py",
    ]


@pytest.mark.parametrize(
    ("path", "removed"),
    [
        ("pkg/__pycache__/mod.cpython-311.pyc", True),
        ("pkg/__pycache__/mod.cpython-39.opt-1.pyc", True),
        ("pkg/__pycache__/mod.pypy39.pyc", True),
        ("pkg/__pycache__/mod.cpython-39.pyc", False),
        ("pkg/shadowed.pyc", True),
        ("pkg/sourceless.pyc", False),
        ("pkg/old.pyo", True),
    ],
)
def test_bytecode_plan_keeps_only_what_the_target_can_use(path: str, removed: bool) -> None:
    tree = tree_of("pkg/mod.py", "pkg/shadowed.py", path)
    assert (path in slim.plan_bytecode(tree, PY39)) is removed


def test_protected_files_survive_every_pass() -> None:
    assert slim.is_protected("numpy-2.0.2.dist-info/METADATA")
    assert slim.is_protected("numpy-2.0.2.dist-info/licenses/LICENSE.txt")
    assert slim.is_protected("scipy/fft/_pocketfft/LICENSE.md")
    assert slim.is_protected("pkg/COPYING")
    assert slim.is_protected("pkg/tests/data.csv", keep=("pkg/tests",))
    assert not slim.is_protected("pkg/tests/data.csv")
    assert not slim.is_protected("pkg/licensing.py")


def test_patterns_match_folders_and_any_depth() -> None:
    assert slim.matches("sklearn/datasets/descr/iris.rst", ["sklearn/datasets/descr"])
    assert slim.matches("scipy/io/tests/data/x.mat", ["*/data/*.mat"])
    assert not slim.matches("sklearn/datasets/_base.py", ["sklearn/datasets/descr"])
    assert not slim.matches("anything", [])


def test_strip_plan_never_touches_auditwheel_libs() -> None:
    tree = tree_of(
        "numpy/_core/_multiarray_umath.cpython-39-x86_64-linux-gnu.so",
        "numpy.libs/libscipy_openblas64_-99b71e71.so",
        "scipy.libs/libgfortran-040039e1.so.5.0.0",
        "pkg/libfoo.so.1",
        "pkg/mod.py",
    )
    assert sorted(slim.plan_strip(tree)) == [
        "numpy/_core/_multiarray_umath.cpython-39-x86_64-linux-gnu.so",
        "pkg/libfoo.so.1",
    ]


def botocore_tree() -> Tree:
    return tree_of(
        "botocore/data/endpoints.json",
        "botocore/data/_retry.json",
        "botocore/data/partitions.json",
        "botocore/data/sdk-default-configuration.json",
        "botocore/data/s3/2006-03-01/service-2.json.gz",
        "botocore/data/ec2/2016-11-15/service-2.json.gz",
        "botocore/data/dynamodb/2012-08-10/service-2.json.gz",
        "boto3/data/s3/2006-03-01/resources-1.json",
        "boto3/data/ec2/2016-11-15/resources-1.json",
    )


def test_botocore_pruning_keeps_listed_services_and_shared_files() -> None:
    tree = botocore_tree()
    removed = set(slim.plan_aws_data(tree, "botocore", ("s3", "dynamodb"), strict=True))
    assert removed == {"botocore/data/ec2/2016-11-15/service-2.json.gz"}
    assert slim.plan_aws_data(tree, "boto3", ("s3", "dynamodb"), strict=False) == (
        "boto3/data/ec2/2016-11-15/resources-1.json",
    )
    assert slim.plan_aws_data(tree, "botocore", None, strict=True) == ()


def test_unknown_botocore_service_is_a_spec_error_with_a_hint() -> None:
    with pytest.raises(SpecError, match=r"'dynamo' \(did you mean dynamodb"):
        slim.plan_aws_data(botocore_tree(), "botocore", ("s3", "dynamo"), strict=True)


def test_slim_tree_end_to_end(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path / "python",
        {
            ".lock": "",
            "bin/tool": "#!/build/machine/python\n",
            "pkg/__init__.py": "x = 1\n",
            "pkg/__pycache__/__init__.cpython-311.pyc": b"\0" * 100,
            "pkg/tests/test_x.py": "def test(): pass\n",
            "pkg/tests/LICENSE": "licence of the test data\n",
            "pkg/docs/index.rst": "docs\n",
            "pkg/__init__.pyi": "x: int\n",
            "pkg/_impl.pyx": "cdef int x\n",
            "pkg/include/pkg.h": "int x;\n",
            "pkg/data/big.bin": b"\0" * 1000,
            "pkg/data/keep.bin": b"\0" * 10,
            "pkg-1.0.dist-info/METADATA": "Name: pkg\n",
            "pkg-1.0.dist-info/top_level.txt": "pkg\n",
            "pkg-1.0.dist-info/RECORD": "pkg/__init__.py,,\n",
        },
    )
    config = SlimConfig(remove=("pkg/data",), keep=("pkg/data/keep.bin",), strip=False)
    result = slim_tree(root, config, PY39)
    left = sorted(Tree.scan(root).files)
    assert left == [
        "pkg-1.0.dist-info/METADATA",
        "pkg-1.0.dist-info/RECORD",
        "pkg-1.0.dist-info/top_level.txt",
        "pkg/__init__.py",
        "pkg/data/keep.bin",
        "pkg/tests/LICENSE",
    ]
    by_name = {p.name: p for p in result.passes}
    assert by_name["layer-remove"].removed_bytes == 1000
    assert by_name["stale-bytecode"].removed_files == 1
    assert by_name["sources"].removed_files == 2
    assert not (root / "bin").exists()
    assert not (root / "pkg" / "__pycache__").exists()
    assert result.removed_bytes == sum(p.removed_bytes for p in result.passes)


def test_slim_tree_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(slim.BuildError, match="not a folder"):
        slim_tree(tmp_path / "nope", SlimConfig(), PY39)


def test_strip_without_the_tool_is_skipped_with_a_note(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"pkg/_ext.cpython-39-x86_64-linux-gnu.so": b"\x7fELF" + b"\0" * 60})
    result, _ = slim.strip_pass(root, Tree.scan(root), (), stripper=FakeStrip(installed=False))
    assert result.removed_files == 0
    assert "not found" in result.note


def test_the_system_strip_is_absent_when_not_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert SystemStrip().version() is None
    assert SystemStrip().strip(tmp_path / "x.so") is False


def test_strip_rewrites_a_copy_never_the_installed_file(tmp_path: Path) -> None:
    root = tmp_path / "python"
    root.mkdir()
    outside = tmp_path / "uv-cache-copy.so"
    outside.write_bytes(b"\x7fELF" + b"\1" * 100)
    inside = root / "_ext.cpython-39-x86_64-linux-gnu.so"
    os.link(outside, inside)  # like uv's hard links into its cache
    result, tree = slim.strip_pass(root, Tree.scan(root), (), stripper=FakeStrip(shrink=40))
    assert outside.read_bytes() == b"\x7fELF" + b"\1" * 100  # the cache's file is untouched
    assert inside.stat().st_size == 64
    assert tree.files[inside.name] == 64
    assert (result.removed_files, result.removed_bytes) == (1, 40)
    assert result.note == "fake-strip"
    assert not list(root.glob(".strip-*"))


def test_strip_keeps_files_matched_by_keep(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"pkg/_ext.so": b"\x7fELF" + b"\0" * 60})
    result, _ = slim.strip_pass(
        root, Tree.scan(root), ("pkg/_ext.so",), stripper=SystemStrip("/bin/false")
    )
    assert result.removed_files == 0
    assert "refused" not in result.note


def test_strip_refusal_leaves_the_file_and_says_so(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"pkg/_ext.so": b"\x7fELF" + b"\0" * 60})
    result, _ = slim.strip_pass(root, Tree.scan(root), (), stripper=SystemStrip("/bin/false"))
    assert (root / "pkg/_ext.so").read_bytes() == b"\x7fELF" + b"\0" * 60
    assert "refused 1 file" in result.note
    assert not list((root / "pkg").glob(".strip-*"))


def test_scan_is_sorted_and_relative(tmp_path: Path) -> None:
    make_tree(tmp_path, {"b/x.py": "1", "a.py": "22"})
    assert Tree.scan(tmp_path).files == {"a.py": 2, "b/x.py": 1}


FONT_TREE: dict[str, str | bytes] = {
    "fontTools/__init__.py": "version = '4.55.0'\n",
    "fontTools/ttx.py": "def main(): pass\n",
    "share/man/man1/ttx.1": ".TH TTX 1\n",
    "include/site/python3.9/fonttools/fonts.h": "int x;\n",
    "etc/fonttools/defaults.json": "{}\n",
    "etc/fonttools/LICENSE": "MIT\n",
    "google/protobuf/message.py": "X = 1\n",  # a namespace package: code, not data
    "fonttools-4.55.0.dist-info/METADATA": "Name: fonttools\n",
    "fonttools-4.55.0.dist-info/top_level.txt": "fontTools\n",
    "fonttools-4.55.0.dist-info/RECORD": (
        "fontTools/__init__.py,sha256=x,1\nfontTools/ttx.py,sha256=x,1\n"
        "share/man/man1/ttx.1,sha256=x,1\ninclude/site/python3.9/fonttools/fonts.h,sha256=x,1\n"
        "etc/fonttools/defaults.json,sha256=x,1\netc/fonttools/LICENSE,sha256=x,1\n"
        "../../bin/ttx,sha256=x,1\nfonttools-4.55.0.dist-info/RECORD,,\n"
    ),
    "protobuf-5.0.dist-info/RECORD": "google/protobuf/message.py,,\n",
}


def test_wheel_data_is_planned_out_but_code_and_namespace_packages_stay(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "python", FONT_TREE)
    installed = slim.Installed.read(root)
    assert installed.top_levels == {"fontTools"}
    assert installed.recorded_dirs == {
        "fontTools", "share", "include", "etc", "fonttools-4.55.0.dist-info", "google",
    }  # fmt: skip
    planned = slim.plan_wheel_data(Tree.scan(root), installed)
    assert sorted(planned) == [
        "etc/fonttools/LICENSE",
        "etc/fonttools/defaults.json",
        "include/site/python3.9/fonttools/fonts.h",
        "share/man/man1/ttx.1",
    ]


def test_slim_removes_wheel_data_unless_a_keep_pattern_asks_for_it(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "python", FONT_TREE)
    result = slim_tree(root, SlimConfig(keep=("share/man/*",), strip=False), PY39)
    passes = {p.name: p for p in result.passes}
    assert passes["wheel-data"].removed_files == 2  # the header and defaults.json
    assert (root / "share/man/man1/ttx.1").is_file()  # kept: a keep pattern asked for it
    assert (root / "etc/fonttools/LICENSE").is_file()  # licences are never removed
    assert not (root / "include").exists()
    assert not (root / "etc/fonttools/defaults.json").exists()
    assert (root / "google/protobuf/message.py").is_file()
    assert [p.name for p in result.passes][:3] == ["uv-lock", "bin", "wheel-data"]


def test_wheel_data_never_counts_as_a_top_level_module(tmp_path: Path) -> None:
    from layerkit.build.bytecode import top_level_modules

    root = make_tree(tmp_path / "python", FONT_TREE)
    (root / "fonttools-4.55.0.dist-info/top_level.txt").unlink()  # names come from RECORD
    assert top_level_modules(root) == ("fontTools", "google")


def test_the_step_cache_strips_each_extension_once(tmp_path: Path) -> None:
    from layerkit.build.memo import StepCache
    from tests.unit.build.fakes import CountingMemo

    memo = CountingMemo(StepCache(tmp_path / "steps"))
    ext = b"\x7fELF" + bytes(range(100))
    for name in ("a", "b"):
        root = make_tree(tmp_path / name, {"pkg/_ext.so": ext})
        os.chmod(root / "pkg/_ext.so", 0o755)
        result, _ = slim.strip_pass(
            root, Tree.scan(root), (), stripper=FakeStrip(shrink=40), memo=memo
        )
        assert (result.removed_files, result.removed_bytes) == (1, 40)
        assert (root / "pkg/_ext.so").read_bytes() == ext[:-40]
        assert (root / "pkg/_ext.so").stat().st_mode & 0o777 == 0o755  # its mode kept
    assert (memo.misses, memo.hits) == (1, 1)
    other = b"\x7fELF" + bytes(50)
    for name in ("c", "d"):  # "saved nothing" is remembered too
        root = make_tree(tmp_path / name, {"pkg/_ext.so": other})
        result, _ = slim.strip_pass(root, Tree.scan(root), (), stripper=FakeStrip(), memo=memo)
        assert result.removed_files == 0
        assert (root / "pkg/_ext.so").read_bytes() == other
    assert (memo.misses, memo.hits) == (2, 2)
